//! Cgroups and devices: WorkspaceInfo's figures, EvacuateCGroup, /dev/fuse
//! and /dev/net/tun.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::authz::{JsLifecycleRule, JsPeer};
use crate::container::{handle, Container};
use crate::task::{job, Job};

/// A container's raw CPU and memory figures, from its own cgroups.
#[napi(object)]
pub struct CgroupResources {
    /// CPU time used since the cgroup was made, nanoseconds.
    pub cpu_usage_ns: f64,
    /// CFS quota and period (µs); absent when unlimited.
    pub cpu_quota_us: Option<f64>,
    pub cpu_period_us: Option<f64>,
    pub memory_used: f64,
    /// Bytes; absent when unlimited.
    pub memory_limit: Option<f64>,
    /// Where each figure came from.
    pub sources: Vec<String>,
    /// CLOCK_BOOTTIME when read, nanoseconds.
    pub at_ns: f64,
    /// The container init's start (CLOCK_BOOTTIME), nanoseconds.
    pub started_ns: f64,
    /// Online CPUs of the node.
    pub cpus: u32,
    /// The node's memory, bytes.
    pub mem_total: f64,
}

impl From<core::cgroup::Resources> for CgroupResources {
    fn from(r: core::cgroup::Resources) -> Self {
        CgroupResources {
            cpu_usage_ns: r.cpu_usage_ns as f64,
            cpu_quota_us: r.cpu_quota.map(|q| q.0 as f64),
            cpu_period_us: r.cpu_quota.map(|q| q.1 as f64),
            memory_used: r.memory_used as f64,
            memory_limit: r.memory_limit.map(|m| m as f64),
            sources: r.sources,
            at_ns: r.at_ns as f64,
            started_ns: r.started_ns as f64,
            cpus: r.cpus,
            mem_total: r.mem_total as f64,
        }
    }
}

/// Reads the container's CPU and memory figures from its own cgroups (v1 or v2).
#[napi(ts_return_type = "Promise<CgroupResources>")]
pub fn read_cgroup_resources(
    container: &Container,
) -> Result<AsyncTask<Job<core::cgroup::Resources, CgroupResources>>> {
    let c = handle(container)?;
    Ok(job(move || core::cgroup::read_resources(&c), CgroupResources::from))
}

#[napi(object)]
pub struct EvacuateResult {
    pub unified: bool,
    pub cgroup: String,
    pub moved: u32,
    pub controllers: Vec<String>,
    pub problems: Vec<String>,
}

impl From<core::cgroup::EvacuateOutcome> for EvacuateResult {
    fn from(o: core::cgroup::EvacuateOutcome) -> Self {
        EvacuateResult {
            unified: o.unified,
            cgroup: o.cgroup,
            moved: o.moved,
            controllers: o.controllers,
            problems: o.problems,
        }
    }
}

/// EvacuateCGroup for `caller` (allowed by the lifecycle `rule`): on v2 the
/// workspace's processes move to `<cgroup>/workspace/user`; on v1 nothing.
#[napi(ts_return_type = "Promise<EvacuateResult>")]
pub fn evacuate_cgroup(
    container: &Container,
    caller: JsPeer,
    rule: JsLifecycleRule,
) -> Result<AsyncTask<Job<core::cgroup::EvacuateOutcome, EvacuateResult>>> {
    let c = handle(container)?;
    let who = core::authz::Caller::from(&caller);
    Ok(job(
        move || {
            core::authz::authorize_lifecycle_call(&c, &who, rule.into())?;
            core::cgroup::evacuate(&c)
        },
        EvacuateResult::from,
    ))
}

#[napi(object)]
pub struct DeviceNode {
    pub path: String,
    /// `created`, `present` or `refused`.
    pub state: String,
    pub detail: String,
}

#[napi(object)]
pub struct DevicesResult {
    pub devices: Vec<DeviceNode>,
    pub cgroup: String,
}

impl From<core::devices::DevicesOutcome> for DevicesResult {
    fn from(o: core::devices::DevicesOutcome) -> Self {
        DevicesResult {
            devices: o
                .devices
                .into_iter()
                .map(|d| DeviceNode { path: d.path, state: d.state, detail: d.detail })
                .collect(),
            cgroup: o.cgroup,
        }
    }
}

/// Makes /dev/fuse and /dev/net/tun in the container (and allows them in its v1 devices cgroup).
#[napi(ts_return_type = "Promise<DevicesResult>")]
pub fn make_container_devices(
    container: &Container,
) -> Result<AsyncTask<Job<core::devices::DevicesOutcome, DevicesResult>>> {
    let c = handle(container)?;
    Ok(job(move || core::devices::make_devices(&c), DevicesResult::from))
}

//! PrepareForUserNS and Teardown as one native call each (the caller
//! authorized, then the work); a rejection refused before any work carries
//! `refused: true` (see the core's `lifecycle`).

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::authz::{JsLifecycleRule, JsPeer};
use crate::cgroup::DevicesResult;
use crate::container::{handle, Container};
use crate::idmap::{mappings, JsIdMapping, JsIdPolicy};
use crate::kernel::JsPidStrategy;
use crate::shift::{FuseOptions, JsShiftMethodChoice, MarkInfo, Removal, RemoveMarkResult};
use crate::task::{lifecycle_job, LifecycleJob};

#[napi(object)]
pub struct PrepareForUserNsOptions {
    /// Who may call it (config `authz.lifecycle`).
    pub rule: JsLifecycleRule,
    /// Absolute path inside the container's root, e.g. "/.workspace/mark".
    pub mark_path: String,
    /// The workspace's shift mapping (validated against `policy`).
    pub shift: Vec<JsIdMapping>,
    pub policy: JsIdPolicy,
    pub method: JsShiftMethodChoice,
    pub fuse: FuseOptions,
    /// Make /dev/fuse and /dev/net/tun too (config `devices.create`).
    pub devices: bool,
}

#[napi(object)]
pub struct PreparedInfo {
    pub mark: MarkInfo,
    /// What was done about the device nodes, when asked for.
    pub devices: Option<DevicesResult>,
    /// Why the device nodes could not be looked at (the call still succeeded).
    pub devices_error: Option<String>,
}

impl From<core::lifecycle::Prepared> for PreparedInfo {
    fn from(p: core::lifecycle::Prepared) -> Self {
        let (devices, devices_error) = match p.devices {
            None => (None, None),
            Some(Ok(d)) => (Some(d.into()), None),
            Some(Err(e)) => (None, Some(e.message().to_string())),
        };
        PreparedInfo { mark: p.mark.into(), devices, devices_error }
    }
}

/// PrepareForUserNS for `caller`: authorized by `options.rule`, then the
/// ID-shifted mark (the container's root made shared) and, with
/// `options.devices`, /dev/fuse and /dev/net/tun. Rejects with
/// `refused: true` when the caller was refused before any work.
#[napi(ts_return_type = "Promise<PreparedInfo>")]
pub fn prepare_for_user_ns(
    container: &Container,
    caller: JsPeer,
    options: PrepareForUserNsOptions,
) -> Result<AsyncTask<LifecycleJob<core::lifecycle::Prepared, PreparedInfo>>> {
    let c = handle(container)?;
    let who = core::authz::Caller::from(&caller);
    let shift = mappings(&options.shift);
    let policy = core::idmap::IdPolicy::from(&options.policy);
    let fuse = core::shift::FuseOptions::try_from(&options.fuse);
    let (rule, mark_path, choice, devices) =
        (options.rule.into(), options.mark_path, options.method.into(), options.devices);
    Ok(lifecycle_job(
        move || {
            let fuse = fuse.map_err(core::lifecycle::LifecycleError::Refused)?;
            let req = core::lifecycle::PrepareRequest {
                rule,
                mark_path: &mark_path,
                shift: &shift,
                policy: &policy,
                choice,
                fuse: &fuse,
                devices,
            };
            core::lifecycle::prepare_for_user_ns(&c, &who, &req)
        },
        PreparedInfo::from,
    ))
}

#[napi(object)]
pub struct TeardownOptions {
    pub rule: JsLifecycleRule,
    pub mark_path: String,
    /// The recorded mark; absent: none to remove (only the caller is checked).
    pub mark: Option<MarkInfo>,
    pub shift: Vec<JsIdMapping>,
    pub fuse: FuseOptions,
    pub pid_strategy: JsPidStrategy,
}

/// Teardown for `caller`: authorized by `options.rule`, then the mark
/// removed (unmounted, its FUSE helper stopped, its user namespace
/// released). Rejects with `refused: true` when the caller was refused
/// before any work; resolves with what could not be cleaned otherwise.
#[napi(ts_return_type = "Promise<RemoveMarkResult>")]
pub fn teardown(
    container: &Container,
    caller: JsPeer,
    options: TeardownOptions,
) -> Result<AsyncTask<LifecycleJob<Removal, RemoveMarkResult>>> {
    use core::lifecycle::LifecycleError::Refused;
    let c = handle(container)?;
    let who = core::authz::Caller::from(&caller);
    let mark = options.mark.as_ref().map(core::shift::Mark::try_from).transpose();
    let shift = mappings(&options.shift);
    let fuse = core::shift::FuseOptions::try_from(&options.fuse);
    let (rule, mark_path, pid_strategy) = (options.rule.into(), options.mark_path, options.pid_strategy);
    Ok(lifecycle_job(
        move || {
            let (mark, fuse) = (mark.map_err(Refused)?, fuse.map_err(Refused)?);
            let strategy = pid_strategy.resolve().map_err(Refused)?;
            let req = core::lifecycle::TeardownRequest {
                rule,
                strategy,
                mark_path: &mark_path,
                mark: mark.as_ref(),
                shift: &shift,
                fuse: &fuse,
            };
            core::lifecycle::teardown(&c, &who, &req)
        },
        RemoveMarkResult::from,
    ))
}

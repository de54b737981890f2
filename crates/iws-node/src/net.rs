//! Gitpod's network RPCs: SetupPairVeths, MountNfs; the workspace network.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::authz::{caller, JsPeer};
use crate::container::{handle, Container};
use crate::error::settle;
use crate::kernel::{JsMountStrategy, JsPidStrategy};
use crate::mount::{made, mount_job, MountJob};
use crate::task::{job, Job};

#[napi(object)]
pub struct MountNfsOptions {
    /// The requesting process, as a PID in the container's view.
    pub pid: i64,
    /// `server:/path`.
    pub source: String,
    /// Absolute path in that process's mount namespace, inside its root.
    pub target: String,
    /// NFS options (comma-separated, checked against the allow-list).
    pub args: String,
    pub pid_strategy: JsPidStrategy,
    pub mount_strategy: JsMountStrategy,
}

/// Mounts an NFS share at `options.target`, connecting from the container's
/// network namespace (see crates/iws-core/src/nfs.rs).
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn mount_nfs(
    container: &Container,
    caller: Option<JsPeer>,
    options: MountNfsOptions,
) -> Result<AsyncTask<MountJob>> {
    let c = handle(container)?;
    let who = self::caller(caller);
    let MountNfsOptions { pid, source, target, args, pid_strategy, mount_strategy } = options;
    Ok(mount_job(None, move || {
        let (pids, assembly) = (pid_strategy.resolve()?, mount_strategy.resolve()?);
        core::nfs::mount_nfs(&c, pids, assembly, who.as_ref(), pid, &source, &target, &args).map(made)
    }))
}

#[napi(object)]
pub struct SetupPairVethsOptions {
    /// A process (container view) in the network namespace that gets the peer.
    pub pid: i64,
    /// IPv4 network of the pair, e.g. "10.0.5.0/30".
    pub workspace_cidr: String,
    pub pid_strategy: JsPidStrategy,
}

#[napi(object)]
pub struct PairVethsResult {
    pub container_if: String,
    pub peer_if: String,
    pub container_addr: String,
    pub peer_addr: String,
    pub prefix: u32,
}

impl From<core::netns::PairOutcome> for PairVethsResult {
    fn from(o: core::netns::PairOutcome) -> Self {
        PairVethsResult {
            container_if: o.container_if,
            peer_if: o.peer_if,
            container_addr: o.net.container_addr.to_string(),
            peer_addr: o.net.peer_addr.to_string(),
            prefix: o.net.prefix as u32,
        }
    }
}

/// Creates the veth pair between the container's network namespace and that
/// of `options.pid` (see crates/iws-core/src/netns.rs).
#[napi(ts_return_type = "Promise<PairVethsResult>")]
pub fn setup_pair_veths(
    container: &Container,
    caller: Option<JsPeer>,
    options: SetupPairVethsOptions,
) -> Result<AsyncTask<Job<core::netns::PairOutcome, PairVethsResult>>> {
    let c = handle(container)?;
    let who = self::caller(caller);
    let SetupPairVethsOptions { pid, workspace_cidr, pid_strategy } = options;
    Ok(job(
        move || {
            let net = core::netns::WorkspaceNet::parse(&workspace_cidr)?;
            core::netns::setup_pair_veths(&c, pid_strategy.resolve()?, who.as_ref(), pid, &net)
        },
        PairVethsResult::from,
    ))
}

/// Checks a workspace network CIDR (config `network.workspaceCidr`); throws INVALID_ARGUMENT.
#[napi]
pub fn validate_workspace_cidr(env: Env, cidr: String) -> Result<()> {
    settle(&env, core::netns::WorkspaceNet::parse(&cidr), |_| ())
}

//! Masked proc and sysfs (MountProc, MountSysfs, their Umount), the masks'
//! defaults and entry rule (the core's masks.rs, for the TypeScript config), and the
//! one mount task that MountNfs (net.rs) shares.

use std::sync::Arc;
use std::time::Duration;

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::authz::{caller, JsMountOwner, JsPeer};
use crate::container::{handle, Container};
use crate::error::settle;
use crate::kernel::{JsMountStrategy, JsPidStrategy};
use crate::task::{job, Job};

/// What a new proc or sysfs hides and makes read-only.
#[napi(object, js_name = "Masks")]
pub struct JsMasks {
    /// Entries hidden (files: /dev/null bind; directories: empty read-only tmpfs).
    pub masked: Vec<String>,
    /// Entries made read-only.
    pub read_only: Vec<String>,
}

impl From<JsMasks> for core::masks::Masks {
    fn from(m: JsMasks) -> Self {
        core::masks::Masks { masked: m.masked, read_only: m.read_only }
    }
}

impl From<core::masks::Masks> for JsMasks {
    fn from(m: core::masks::Masks) -> Self {
        JsMasks { masked: m.masked, read_only: m.read_only }
    }
}

/// Masks made once (the daemon's config `proc` and `sysfs`; the embedding
/// API's caches) and passed by reference to every MountProc and MountSysfs:
/// a call then converts no mask strings from JS. Every entry passed the
/// core's rule (`Masks::validate`) when the set was made; the core checks
/// them again per mount, off the JS thread.
#[napi]
pub struct MaskSet {
    inner: Arc<core::masks::Masks>,
}

#[napi]
impl MaskSet {
    /// A mask set of `masks`; throws (INVALID_ARGUMENT, saying which entry
    /// and why) when an entry breaks the core's mask-entry rule.
    #[napi(factory)]
    pub fn of(env: Env, masks: JsMasks) -> Result<Self> {
        let masks = core::masks::Masks::from(masks);
        settle(&env, masks.validate(), |_| MaskSet { inner: Arc::new(masks) })
    }

    /// The entries of the set (a copy).
    #[napi(getter)]
    pub fn masks(&self) -> JsMasks {
        (*self.inner).clone().into()
    }
}

/// The core's default masks (config `proc` and `sysfs`).
#[napi(object)]
pub struct MaskDefaults {
    pub proc: JsMasks,
    pub sysfs: JsMasks,
}

/// The core's default masks for proc and sysfs (`core::masks::DEFAULT_*`).
#[napi]
pub fn mask_defaults() -> MaskDefaults {
    MaskDefaults { proc: core::masks::Masks::proc_default().into(), sysfs: core::masks::Masks::sysfs_default().into() }
}

/// Throws (INVALID_ARGUMENT, saying why) when `entry` is no valid mask entry
/// (the core's rule, `core::masks::check_mask_entry`: a relative path inside
/// the filesystem, at most 256 bytes, without empty, '.' or '..' parts).
#[napi]
pub fn check_mask_entry(env: Env, entry: String) -> Result<()> {
    settle(&env, core::masks::check_mask_entry(&entry), |_| ())
}

/// A workspace's FUSE mark, for the deadline of operations that may walk
/// through it: past `deadlineMs` its FUSE connection is aborted and the call
/// fails (UNAVAILABLE) instead of blocking on a stuck server.
#[napi(object)]
pub struct FuseMark {
    pub pid: i32,
    pub staging: String,
    pub deadline_ms: u32,
}

impl From<FuseMark> for (core::shift::FuseMarkRef, Duration) {
    fn from(m: FuseMark) -> Self {
        (
            core::shift::FuseMarkRef { pid: m.pid, staging: m.staging },
            Duration::from_millis(m.deadline_ms.max(1) as u64),
        )
    }
}

#[napi(object)]
pub struct MountProcOptions {
    /// The requesting process, as a PID in the container's view.
    pub pid: i64,
    /// Absolute path in that process's mount namespace, inside its root.
    pub target: String,
    pub pid_strategy: JsPidStrategy,
    pub mount_strategy: JsMountStrategy,
    /// The workspace's FUSE mark, if it has one (see FuseMark).
    pub fuse_mark: Option<FuseMark>,
}

#[napi(object)]
pub struct MountSysfsOptions {
    pub pid: i64,
    pub target: String,
    pub read_only: bool,
    pub pid_strategy: JsPidStrategy,
    pub mount_strategy: JsMountStrategy,
    pub fuse_mark: Option<FuseMark>,
}

#[napi(object)]
pub struct UmountOptions {
    pub pid: i64,
    pub target: String,
    /// The mounts of this kind iwsd made for this workspace; only these may
    /// be unmounted, each only by whom it was made for or container root.
    pub owned: Vec<OwnedMount>,
    pub pid_strategy: JsPidStrategy,
    pub fuse_mark: Option<FuseMark>,
}

#[napi(object)]
pub struct OwnedMount {
    /// Unique mount id (decimal string).
    pub mount_id: String,
    /// Who it was made for; absent in records made before callers were
    /// recorded (then only container root may unmount it).
    pub made_for: Option<JsMountOwner>,
}

impl TryFrom<&OwnedMount> for (u64, Option<core::authz::CallerId>) {
    type Error = core::Error;

    fn try_from(m: &OwnedMount) -> core::Result<Self> {
        Ok((mount_id(&m.mount_id)?, m.made_for.as_ref().map(TryInto::try_into).transpose()?))
    }
}

/// A unique mount id from its decimal string (u64 does not fit a JS number).
pub fn mount_id(s: &str) -> core::Result<u64> {
    s.parse().map_err(|_| core::Error::invalid(format!("mount id {s:?} is not a decimal number")))
}

#[napi(object)]
pub struct MountResult {
    /// Unique mount id (decimal string; u64 does not fit a JS number).
    pub mount_id: String,
    /// Who the mount was made for (MountProc/MountSysfs; record it).
    pub made_for: Option<JsMountOwner>,
}

/// A mount made or unmounted: its id, and whom it was made for.
pub type MountOut = (u64, Option<core::authz::CallerId>);

impl From<core::mount::MountOutcome> for MountResult {
    fn from(o: core::mount::MountOutcome) -> Self {
        MountResult::from((o.mount_id, o.made_for))
    }
}

impl From<MountOut> for MountResult {
    fn from((id, made_for): MountOut) -> Self {
        MountResult { mount_id: id.to_string(), made_for: made_for.map(Into::into) }
    }
}

pub type MountJob = Job<MountOut, MountResult>;

/// Runs a mount operation `op` on the pool, under the workspace's FUSE mark
/// deadline when it has one.
pub fn mount_job(
    fuse: Option<FuseMark>,
    op: impl FnOnce() -> core::Result<MountOut> + Send + 'static,
) -> AsyncTask<MountJob> {
    let fuse: Option<(core::shift::FuseMarkRef, Duration)> = fuse.map(Into::into);
    job(
        move || match fuse {
            None => op(),
            Some((mark, deadline)) => core::shift::with_mark_deadline(deadline, Some(mark), op),
        },
        MountResult::from,
    )
}

/// A core mount outcome as a MountJob's output.
pub(crate) fn made(o: core::mount::MountOutcome) -> MountOut {
    (o.mount_id, o.made_for)
}

/// Mounts a new masked proc (masked by `masks`) for the PID namespace of
/// `options.pid` at `options.target` inside that process's root and mount
/// namespace.
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn mount_proc(
    container: &Container,
    caller: Option<JsPeer>,
    options: MountProcOptions,
    masks: &MaskSet,
) -> Result<AsyncTask<MountJob>> {
    let c = handle(container)?;
    let who = self::caller(caller);
    let MountProcOptions { pid, target, pid_strategy, mount_strategy, fuse_mark } = options;
    let masks = Arc::clone(&masks.inner);
    Ok(mount_job(fuse_mark, move || {
        let (pids, assembly) = (pid_strategy.resolve()?, mount_strategy.resolve()?);
        core::mount::mount_proc(&c, pids, assembly, who.as_ref(), pid, &target, &masks).map(made)
    }))
}

/// Mounts a new masked sysfs (masked by `masks`) of the network namespace
/// of `options.pid`.
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn mount_sysfs(
    container: &Container,
    caller: Option<JsPeer>,
    options: MountSysfsOptions,
    masks: &MaskSet,
) -> Result<AsyncTask<MountJob>> {
    let c = handle(container)?;
    let who = self::caller(caller);
    let MountSysfsOptions { pid, target, read_only, pid_strategy, mount_strategy, fuse_mark } = options;
    let masks = Arc::clone(&masks.inner);
    Ok(mount_job(fuse_mark, move || {
        let (pids, assembly) = (pid_strategy.resolve()?, mount_strategy.resolve()?);
        // The core's options own their masks: copied here, on the pool thread.
        let opts = core::mount::SysfsOptions { read_only, masks: (*masks).clone() };
        core::mount::mount_sysfs(&c, pids, assembly, who.as_ref(), pid, &target, &opts).map(made)
    }))
}

/// Unmounts the mount at `options.target` if it is one of `options.owned`.
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn umount(container: &Container, caller: Option<JsPeer>, options: UmountOptions) -> Result<AsyncTask<MountJob>> {
    let c = handle(container)?;
    let who = self::caller(caller);
    let UmountOptions { pid, target, owned, pid_strategy, fuse_mark } = options;
    Ok(mount_job(fuse_mark, move || {
        let pids = pid_strategy.resolve()?;
        let owned = owned.iter().map(TryInto::try_into).collect::<core::Result<Vec<MountOut>>>()?;
        core::mount::umount(&c, pids, who.as_ref(), pid, &target, &owned).map(|id| (id, None))
    }))
}

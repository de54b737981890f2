//! PrepareForUserNS / Teardown marks: the ID-shifted view of the container
//! root, and its FUSE helper.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::container::{handle, Container};
use crate::idmap::{mappings, JsIdMapping, JsIdPolicy};
use crate::kernel::JsPidStrategy;
use crate::mirror::mirror;
use crate::mount::mount_id;
use crate::task::{job, same, Job};

/// How a mark is shifted.
#[napi(string_enum, js_name = "ShiftMethod")]
#[derive(Clone, Copy)]
pub enum JsShiftMethod {
    /// An idmapped bind mount of the root (mount_setattr, Linux 5.12+).
    #[napi(value = "idmapped")]
    Idmapped,
    /// fuse-overlayfs with uidmapping/gidmapping, supervised by iwsd.
    #[napi(value = "fuse")]
    Fuse,
    /// A shiftfs mount (Ubuntu kernels with the shiftfs module).
    #[napi(value = "shiftfs")]
    Shiftfs,
}

mirror!(JsShiftMethod <=> core::shift::ShiftMethod { Idmapped, Fuse, Shiftfs });

/// Which method a mark is made with (config `shift.method`).
#[napi(string_enum, js_name = "ShiftMethodChoice")]
#[derive(Clone, Copy)]
pub enum JsShiftMethodChoice {
    /// idmapped when the kernel and filesystem allow it (tried for real), else fuse.
    #[napi(value = "auto")]
    Auto,
    /// Only idmapped; fails where the kernel or filesystem refuses it.
    #[napi(value = "idmapped")]
    Idmapped,
    /// Only fuse.
    #[napi(value = "fuse")]
    Fuse,
    /// Only shiftfs.
    #[napi(value = "shiftfs")]
    Shiftfs,
}

impl From<JsShiftMethodChoice> for core::shift::MethodChoice {
    fn from(m: JsShiftMethodChoice) -> Self {
        use core::shift::{MethodChoice, ShiftMethod};
        match m {
            JsShiftMethodChoice::Auto => MethodChoice::Auto,
            JsShiftMethodChoice::Idmapped => MethodChoice::Only(ShiftMethod::Idmapped),
            JsShiftMethodChoice::Fuse => MethodChoice::Only(ShiftMethod::Fuse),
            JsShiftMethodChoice::Shiftfs => MethodChoice::Only(ShiftMethod::Shiftfs),
        }
    }
}

#[napi(object)]
pub struct FuseOptions {
    /// The host's fuse-overlayfs binary (absolute path).
    pub binary: String,
    /// Host directories private to iwsd: overlay upper and work dirs, and a
    /// staging mount point in the helper's own mount namespace.
    pub upper: String,
    pub work: String,
    pub staging: String,
    /// Size in bytes of the private tmpfs holding upper and work (copy-ups).
    pub upper_bytes: i64,
}

impl TryFrom<&FuseOptions> for core::shift::FuseOptions {
    type Error = core::Error;

    fn try_from(f: &FuseOptions) -> core::Result<Self> {
        let upper_bytes = u64::try_from(f.upper_bytes).map_err(|_| {
            core::Error::invalid(format!("fuse upperBytes {} is negative; give the size in bytes", f.upper_bytes))
        })?;
        Ok(core::shift::FuseOptions {
            binary: f.binary.clone(),
            upper: f.upper.clone(),
            work: f.work.clone(),
            staging: f.staging.clone(),
            upper_bytes,
        })
    }
}

#[napi(object)]
pub struct PrepareMarkOptions {
    /// Absolute path inside the container's root, e.g. "/.workspace/mark".
    pub mark_path: String,
    /// The workspace's shift mapping (validated against `policy`).
    pub shift: Vec<JsIdMapping>,
    pub policy: JsIdPolicy,
    pub method: JsShiftMethodChoice,
    pub fuse: FuseOptions,
}

#[napi(object)]
pub struct MarkInfo {
    pub method: JsShiftMethod,
    /// Unique id of the mount at the mark path (decimal string).
    pub mount_id: String,
    /// PID of the supervised fuse-overlayfs, for "fuse".
    pub fuse_pid: Option<i32>,
}

impl From<core::shift::Mark> for MarkInfo {
    fn from(m: core::shift::Mark) -> Self {
        MarkInfo { method: m.method.into(), mount_id: m.mount_id.to_string(), fuse_pid: m.fuse_pid }
    }
}

impl TryFrom<&MarkInfo> for core::shift::Mark {
    type Error = core::Error;

    fn try_from(m: &MarkInfo) -> core::Result<Self> {
        Ok(core::shift::Mark { method: m.method.into(), mount_id: mount_id(&m.mount_id)?, fuse_pid: m.fuse_pid })
    }
}

#[napi(object)]
pub struct RemoveMarkOptions {
    pub mark_path: String,
    pub mark: MarkInfo,
    pub shift: Vec<JsIdMapping>,
    pub fuse: FuseOptions,
    pub pid_strategy: JsPidStrategy,
}

#[napi(object)]
pub struct RemoveMarkResult {
    /// True only when everything was cleaned.
    pub success: bool,
    /// What could not be cleaned, for the log.
    pub problems: Vec<String>,
}

/// What `remove_mark` returns: whether everything was cleaned, and what was not.
pub type Removal = (bool, Vec<String>);

impl From<Removal> for RemoveMarkResult {
    fn from((success, problems): Removal) -> Self {
        RemoveMarkResult { success, problems }
    }
}

/// PrepareForUserNS's kernel work: makes the container's root mount shared
/// and mounts an ID-shifted view of it at `options.markPath`.
#[napi(ts_return_type = "Promise<MarkInfo>")]
pub fn prepare_shift_mark(
    container: &Container,
    options: PrepareMarkOptions,
) -> Result<AsyncTask<Job<core::shift::Mark, MarkInfo>>> {
    let c = handle(container)?;
    let shift = mappings(&options.shift);
    let policy = core::idmap::IdPolicy::from(&options.policy);
    let fuse = core::shift::FuseOptions::try_from(&options.fuse);
    let (mark_path, choice) = (options.mark_path, options.method.into());
    Ok(job(move || core::shift::prepare_mark(&c, &mark_path, &shift, &policy, choice, &fuse?), MarkInfo::from))
}

/// Teardown's kernel work: unmounts the mark (only the mount iwsd made),
/// stops its FUSE helper, releases its cached user namespace.
#[napi(ts_return_type = "Promise<RemoveMarkResult>")]
pub fn remove_shift_mark(
    container: &Container,
    options: RemoveMarkOptions,
) -> Result<AsyncTask<Job<Removal, RemoveMarkResult>>> {
    let c = handle(container)?;
    let mark = core::shift::Mark::try_from(&options.mark);
    let shift = mappings(&options.shift);
    let fuse = core::shift::FuseOptions::try_from(&options.fuse);
    let (mark_path, pid_strategy) = (options.mark_path, options.pid_strategy);
    Ok(job(
        move || {
            let (mark, fuse) = (mark?, fuse?);
            Ok(core::shift::remove_mark(&c, pid_strategy.resolve()?, &mark_path, &mark, &shift, &fuse))
        },
        RemoveMarkResult::from,
    ))
}

/// Stops a fuse-overlayfs helper of iwsd's (also one a previous daemon
/// process started: it must be fuse-overlayfs serving `staging`).
/// Resolves false when no such helper runs.
#[napi(ts_return_type = "Promise<boolean>")]
pub fn stop_fuse_helper(pid: i32, staging: String) -> AsyncTask<Job<bool, bool>> {
    job(move || core::shift::stop_fuse(pid, &staging), same)
}

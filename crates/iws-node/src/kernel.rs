//! The kernel: which features it has, and the two strategies chosen from
//! them. The PID strategy translates container PIDs to host PIDs; the mount
//! strategy assembles masked proc and sysfs. Each is requested as `auto` or a
//! forced one and resolved by the core to the one used on this kernel.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::mirror::mirror;
use crate::task::{job, Job};

/// How container PIDs are translated (config `pidStrategy`).
#[napi(string_enum, js_name = "PidStrategy")]
#[derive(Clone, Copy)]
pub enum JsPidStrategy {
    /// ioctl when the kernel has it, else scan.
    #[napi(value = "auto")]
    Auto,
    /// NS_GET_TGID_FROM_PIDNS (Linux 6.11+).
    #[napi(value = "ioctl")]
    Ioctl,
    /// /proc/*/status NSpid.
    #[napi(value = "scan")]
    Scan,
}

mirror!(JsPidStrategy => Option<core::pidns::PidStrategy> { None: Auto; Some: Ioctl, Scan });

impl JsPidStrategy {
    /// The strategy used on this kernel (FAILED_PRECONDITION for a forced one it lacks).
    pub fn resolve(self) -> core::Result<core::pidns::PidStrategy> {
        core::pidns::choose_strategy(self.into())
    }
}

/// A PID strategy as resolved on this kernel.
#[napi(string_enum, js_name = "ResolvedPidStrategy")]
pub enum JsResolvedPidStrategy {
    #[napi(value = "ioctl")]
    Ioctl,
    #[napi(value = "scan")]
    Scan,
}

mirror!(core::pidns::PidStrategy => JsResolvedPidStrategy { Ioctl, Scan });

/// How masked proc and sysfs are assembled (config `mountStrategy`).
#[napi(string_enum, js_name = "MountStrategy")]
#[derive(Clone, Copy)]
pub enum JsMountStrategy {
    /// detached when the kernel supports it, else fallback.
    #[napi(value = "auto")]
    Auto,
    /// Assembled detached (new mount API; recent kernels).
    #[napi(value = "detached")]
    Detached,
    /// For older kernels.
    #[napi(value = "fallback")]
    Fallback,
}

mirror!(JsMountStrategy => Option<core::mount::MountStrategy> { None: Auto; Some: Detached, Fallback });

impl JsMountStrategy {
    /// The strategy used on this kernel (FAILED_PRECONDITION for a forced one it lacks).
    pub fn resolve(self) -> core::Result<core::mount::MountStrategy> {
        core::mount::choose_strategy(self.into())
    }
}

/// A mount strategy as resolved on this kernel.
#[napi(string_enum, js_name = "ResolvedMountStrategy")]
pub enum JsResolvedMountStrategy {
    #[napi(value = "detached")]
    Detached,
    #[napi(value = "fallback")]
    Fallback,
}

mirror!(core::mount::MountStrategy => JsResolvedMountStrategy { Detached, Fallback });

/// Resolves a configured PID strategy to the one that will be used on this
/// kernel; rejects (FAILED_PRECONDITION) a forced strategy the kernel lacks.
#[napi(ts_return_type = "Promise<ResolvedPidStrategy>")]
pub fn resolve_pid_strategy(
    requested: JsPidStrategy,
) -> AsyncTask<Job<core::pidns::PidStrategy, JsResolvedPidStrategy>> {
    job(move || requested.resolve(), JsResolvedPidStrategy::from)
}

/// Resolves a configured mount strategy to the one used on this kernel;
/// rejects (FAILED_PRECONDITION) a forced one the kernel lacks.
#[napi(ts_return_type = "Promise<ResolvedMountStrategy>")]
pub fn resolve_mount_strategy(
    requested: JsMountStrategy,
) -> AsyncTask<Job<core::mount::MountStrategy, JsResolvedMountStrategy>> {
    job(move || requested.resolve(), JsResolvedMountStrategy::from)
}

#[napi(object)]
pub struct KernelFeatures {
    /// NS_GET_TGID_FROM_PIDNS (Linux 6.11+).
    pub pidns_ioctl: bool,
    /// pidfd_open (Linux 5.3+).
    pub pidfd: bool,
    /// A masked proc can be assembled detached (new mount API, proc pidns
    /// option, mounts onto detached trees, unique mount ids).
    pub detached_proc: bool,
    /// Why not, when `detachedProc` is false.
    pub detached_proc_error: Option<String>,
    /// SO_PEERPIDFD (Linux 6.5+).
    pub peer_pidfd: bool,
    /// STATX_MNT_ID_UNIQUE (Linux 6.8+).
    pub mnt_id_unique: bool,
    /// shiftfs listed in /proc/filesystems.
    pub shiftfs: bool,
    /// /dev/fuse present.
    pub fuse: bool,
}

impl From<core::KernelFeatures> for KernelFeatures {
    fn from(f: core::KernelFeatures) -> Self {
        KernelFeatures {
            pidns_ioctl: f.pidns_ioctl,
            pidfd: f.pidfd,
            detached_proc: f.detached_proc.is_ok(),
            detached_proc_error: f.detached_proc.err(),
            peer_pidfd: f.peer_pidfd,
            mnt_id_unique: f.mnt_id_unique,
            shiftfs: f.shiftfs,
            fuse: f.fuse,
        }
    }
}

/// Probes the kernel features iwsd uses.
#[napi(ts_return_type = "Promise<KernelFeatures>")]
pub fn probe_kernel() -> AsyncTask<Job<core::KernelFeatures, KernelFeatures>> {
    job(|| Ok(core::probe()), KernelFeatures::from)
}

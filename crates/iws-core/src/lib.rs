//! iws-core: every kernel operation iwsd performs and every check on the
//! hostile input that drives them. No napi here; the binding is a thin layer
//! over this crate.
//!
//! Where each concern lives (one module each):
//!
//! | module | concern |
//! | --- | --- |
//! | `authz` | who inside a workspace may do what (every policy check on a caller) |
//! | `idmap`, `idmap_write` | uid/gid map types and policy; writing a map |
//! | `mount` | MountProc/MountSysfs/Umount: strategy choice, placement |
//! | `masks` | default masks, the mask-entry rule, the mask sources, masking |
//! | `mountapi` | the new mount API by fd (detached filesystems, attach, mount ids) |
//! | `resolve` | target paths: checks, `openat2` in the root (with retry), writability |
//! | `propagation` | refusing mounts that would propagate to the host or peers |
//! | `lock` | locked masks (the lock namespace) |
//! | `nsthread` | the only way onto a namespace thread (and its CPU pin) |
//! | `shift` | marks: idmapped, fuse-overlayfs and shiftfs views of the root |
//! | `lifecycle` | PrepareForUserNS and Teardown as one call each: authorize, then the work |
//! | `nfs`, `netns`, `devices`, `cgroup`, `fsops` | MountNfs, network namespaces, device nodes, cgroups, the daemon's own file work |
//! | `pidns`, `watch`, `supervise` | PID translation and pinning, exit watching, the supervised daemon |
//! | `sys` | the syscalls nix and rustix lack: the only `unsafe` |
//!
//! `unsafe` lives in `sys` alone (thin syscall wrappers, each block with a
//! SAFETY comment); everywhere else it is a compile error.

#![deny(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod authz;
pub mod cgroup;
pub mod devices;
pub mod error;
pub mod fsops;
pub mod idmap;
pub mod idmap_write;
pub mod lifecycle;
mod lock;
pub mod masks;
pub mod mount;
mod mountapi;
pub mod netns;
pub mod nfs;
pub mod nsthread;
pub mod pidns;
mod propagation;
mod resolve;
pub mod shift;
pub mod supervise;
// The one module allowed `unsafe`: syscalls and ioctls neither nix nor rustix
// wraps, each a single call.
#[allow(unsafe_code)]
mod sys;
pub mod watch;

pub use error::{Error, ErrorKind, Reason, Result};

/// Whether a root-only unit test `name` must skip (saying so): not root, and
/// IWSD_REQUIRE_ROOT=1 not set (with it, not being root fails the test).
#[cfg(test)]
pub(crate) fn skip_unless_root(name: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    assert_ne!(std::env::var("IWSD_REQUIRE_ROOT").as_deref(), Ok("1"), "{name} needs root");
    eprintln!("SKIPPED {name}: needs root");
    true
}

/// What this kernel offers, as probed (not guessed from its version).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelFeatures {
    /// `NS_GET_TGID_FROM_PIDNS` on nsfs (Linux 6.11+).
    pub pidns_ioctl: bool,
    /// `pidfd_open` (Linux 5.3+).
    pub pidfd: bool,
    /// A masked proc assembled detached for a given PID namespace: the new
    /// mount API, proc's `pidns` option, mounts onto detached trees and unique
    /// mount ids. `Err` carries what failed.
    pub detached_proc: std::result::Result<(), String>,
    /// `SO_PEERPIDFD` (Linux 6.5+): peers identified by pidfd, not PID.
    pub peer_pidfd: bool,
    /// `STATX_MNT_ID_UNIQUE` (Linux 6.8+): never-reused mount ids.
    pub mnt_id_unique: bool,
    /// shiftfs listed in /proc/filesystems.
    pub shiftfs: bool,
    /// /dev/fuse present (for fuse-overlayfs marks).
    pub fuse: bool,
}

/// Probes the kernel features iwsd uses.
pub fn probe() -> KernelFeatures {
    KernelFeatures {
        pidns_ioctl: pidns::probe_pidns_ioctl(),
        pidfd: pidns::probe_pidfd(),
        detached_proc: mount::probe_detached_proc(),
        peer_pidfd: pidns::probe_peer_pidfd(),
        mnt_id_unique: mountapi::probe_mnt_id_unique(),
        shiftfs: shift::shiftfs_available(),
        fuse: std::path::Path::new("/dev/fuse").exists(),
    }
}

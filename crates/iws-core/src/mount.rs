//! Masked proc and sysfs, assembled detached and placed inside a container.
//!
//! Threat model: the target path comes from code the workspace's user
//! controls and lives in a tree that user can change concurrently (rename,
//! symlink swaps). The mount must land on a directory inside the requesting
//! process's root, never elsewhere, and nothing may appear in the host's mount
//! table at any time. Hence (docs/DESIGN.md, "Kernel techniques"):
//!
//! * the filesystem is created detached (`fsopen`/`fsmount`), masks are
//!   attached to the detached tree (`open_tree`/`move_mount`) before anyone
//!   can see it; each mask is a clone of one of two sources made once at
//!   start (an empty tmpfs, read-only as mount and superblock, and
//!   `/dev/null`): bounded, like the user-namespace cache of marks;
//! * placement happens on a thread created for it: `unshare(CLONE_FS)`, then
//!   `setns(CLONE_NEWNS)` into the target's mount namespace, the target
//!   resolved with `openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_MAGICLINKS)` against the target's root, and
//!   `move_mount(.., T_EMPTY_PATH)` onto that resolved fd, so a later swap
//!   cannot redirect it. The thread exits afterwards; no pool thread ever
//!   changes namespace.
//!
//! Unmount is allowed only for mounts whose unique mount id the caller says
//! iwsd made (the daemon tracks them per workspace).
//!
//! The parts live beside this module: `mountapi` (the new mount API by fd),
//! [`crate::masks`], `resolve` (target resolution), `propagation`, `lock`
//! (locked masks) and [`crate::nsthread`] (the only way onto a namespace
//! thread).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::OnceLock;

use nix::sched::CloneFlags;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{fsconfig_set_fd, MountAttrFlags};

use crate::authz::{self, Caller, CallerId, PinnedCaller};
use crate::error::{Error, ErrorKind, Reason, Result};
use crate::lock::{lock_ns, lock_tree};
use crate::masks::{apply_masks, make_sources, masked};
use crate::mountapi::{attach, detached, mount_id, mounted_here, NOSUID_NODEV_NOEXEC};
use crate::nsthread::on_fresh_thread;
use crate::pidns::{Container, MountTarget, PidStrategy};
use crate::propagation::PropagationGuard;
use crate::resolve::{check_target, checked_target, resolve_target};
use crate::sys;

/// The masks MountProc and MountSysfs take (they live in [`crate::masks`]).
pub use crate::masks::Masks;

pub use crate::lock::lock_namespace_mounts;
pub use crate::mountapi::is_mounted_here;

/// How mounts are assembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountStrategy {
    /// proc for a PID namespace via `fsconfig(pidns)`, masks attached to the
    /// detached tree (recent kernels; verified on 6.18, probed at start).
    Detached,
    /// For older kernels: proc created by a helper forked into the PID
    /// namespace; masks applied in a thread-private staging mount namespace,
    /// then the masked tree cloned detached; the propagation check reads
    /// mountinfo instead of asking `statmount(2)`. Placement is the same.
    Fallback,
}

impl MountStrategy {
    pub fn name(self) -> &'static str {
        match self {
            MountStrategy::Detached => "detached",
            MountStrategy::Fallback => "fallback",
        }
    }

    pub fn parse(s: &str) -> Result<Option<MountStrategy>> {
        match s {
            "auto" => Ok(None),
            "detached" => Ok(Some(MountStrategy::Detached)),
            "fallback" => Ok(Some(MountStrategy::Fallback)),
            _ => Err(Error::invalid(format!("unknown mount strategy {s:?}; use auto, detached or fallback"))),
        }
    }
}

/// The requested strategy if this kernel supports it, else the best one.
pub fn choose_strategy(requested: Option<MountStrategy>) -> Result<MountStrategy> {
    // Probed once per process: every MountProc resolves its strategy, and the
    // probe assembles (and dissolves) a whole masked proc.
    static DETACHED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    let detached = DETACHED.get_or_init(probe_detached_proc);
    match requested {
        Some(MountStrategy::Detached) => match detached {
            Ok(()) => Ok(MountStrategy::Detached),
            Err(why) => Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("mount strategy 'detached' is not supported by this kernel ({why}); use 'fallback' or 'auto'"),
            )),
        },
        Some(s) => Ok(s),
        None if detached.is_ok() => Ok(MountStrategy::Detached),
        None => Ok(MountStrategy::Fallback),
    }
}

/// Options of a sysfs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsOptions {
    pub read_only: bool,
    pub masks: Masks,
}

impl Default for SysfsOptions {
    fn default() -> Self {
        SysfsOptions { read_only: true, masks: Masks::sysfs_default() }
    }
}

/// A mount iwsd made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountOutcome {
    /// The unique (never reused) mount id of the new mount.
    pub mount_id: u64,
    /// Who it was made for (recorded with it; see [`umount`]); `None` for
    /// the embedding program's own authority.
    pub made_for: Option<CallerId>,
}

/// Moves the detached tree `mnt`, its masks locked first, onto `target`
/// inside the checked mount namespace and root `at`, from a fresh thread.
/// Returns the new mount's id.
fn place(
    at: &MountTarget,
    who: Option<&PinnedCaller>,
    mnt: OwnedFd,
    target: &str,
    strategy: MountStrategy,
) -> Result<u64> {
    let guard = PropagationGuard::unshared(strategy)?;
    let lock = lock_ns()?;
    let id = on_fresh_thread(|t| {
        // Target first, so that a refused request costs no lock step.
        let fd = checked_target(t, at, who, &guard, target)?;
        let mnt = lock_tree(t, lock, mnt, strategy)?;
        // The resolved O_PATH fd stays valid across setns.
        t.setns(at.mntns(), CloneFlags::CLONE_NEWNS, "mnt")?;
        attach(&mnt, &fd, &format!("onto {target}"))
    })?;
    at.process().ensure_alive()?;
    Ok(id)
}

/// Checks, before anything is made, where [`place_unlocked`] would attach:
/// the target resolves inside the root, the caller may write it, and a
/// mount there would not propagate. No side effects.
pub(crate) fn precheck_target(
    at: &MountTarget,
    who: Option<&PinnedCaller>,
    target: &str,
    strategy: MountStrategy,
) -> Result<()> {
    let guard = PropagationGuard::unshared(strategy)?;
    on_fresh_thread(|t| checked_target(t, at, who, &guard, target).map(drop))
}

/// [`place`] for a tree without masks (nothing to lock: e.g. an NFS mount):
/// the same checks, then the tree attached onto the resolved target.
pub(crate) fn place_unlocked(
    at: &MountTarget,
    who: Option<&PinnedCaller>,
    mnt: OwnedFd,
    target: &str,
    strategy: MountStrategy,
) -> Result<u64> {
    let guard = PropagationGuard::unshared(strategy)?;
    let id = on_fresh_thread(|t| {
        let fd = checked_target(t, at, who, &guard, target)?;
        attach(&mnt, &fd, &format!("onto {target}"))
    })?;
    at.process().ensure_alive()?;
    Ok(id)
}

/// Mounts a new, masked proc for the PID namespace of `pid` (container view)
/// at `target` in that process's mount namespace.
pub fn mount_proc(
    container: &Container,
    strategy: PidStrategy,
    ms: MountStrategy,
    caller: Option<&Caller>,
    pid: i64,
    target: &str,
    masks: &Masks,
) -> Result<MountOutcome> {
    let (at, who, pidns) = prepared(container, strategy, caller, pid, target, masks, "ns/pid")?;
    let mnt = match ms {
        MountStrategy::Detached => detached(
            "proc",
            |fs| {
                fsconfig_set_fd(fs, "pidns", &pidns).map_err(|e| match e {
                    Errno::INVAL | Errno::OPNOTSUPP => Error::new(
                        ErrorKind::FailedPrecondition,
                        "this kernel's proc does not take a pidns option; use the fallback mount strategy",
                    ),
                    e => Error::internal("fsconfig(proc, pidns)", e),
                })
            },
            NOSUID_NODEV_NOEXEC,
        )?,
        MountStrategy::Fallback => on_fresh_thread(|t| {
            sys::proc_via_helper(t, &pidns, NOSUID_NODEV_NOEXEC)
                .map_err(|e| Error::internal("proc helper in PID namespace", e))
        })?,
    };
    masked_and_placed(&at, who.as_ref(), mnt, masks, target, ms)
}

/// Mounts a new, masked sysfs of the network namespace of `pid` at `target`.
pub fn mount_sysfs(
    container: &Container,
    strategy: PidStrategy,
    ms: MountStrategy,
    caller: Option<&Caller>,
    pid: i64,
    target: &str,
    opts: &SysfsOptions,
) -> Result<MountOutcome> {
    let (at, who, netns) = prepared(container, strategy, caller, pid, target, &opts.masks, "ns/net")?;
    let mut attrs = NOSUID_NODEV_NOEXEC;
    if opts.read_only {
        attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    // sysfs binds to the network namespace of the task that creates it.
    let mnt = on_fresh_thread(|t| {
        t.setns(netns.as_fd(), CloneFlags::CLONE_NEWNET, "net")?;
        detached("sysfs", |_| Ok(()), attrs)
    })?;
    masked_and_placed(&at, who.as_ref(), mnt, &opts.masks, target, ms)
}

/// What MountProc and MountSysfs check before they make anything: the
/// target's form, the masks, the caller's right to the process `pid`
/// ([`authorized_target`]); then that process's namespace file `ns` (open).
fn prepared(
    container: &Container,
    strategy: PidStrategy,
    caller: Option<&Caller>,
    pid: i64,
    target: &str,
    masks: &Masks,
    ns: &str,
) -> Result<(MountTarget, Option<PinnedCaller>, OwnedFd)> {
    check_target(target)?;
    masks.validate()?;
    let (at, who) = authorized_target(container, strategy, caller, pid)?;
    let nsfd = at.process().open(ns, OFlags::RDONLY)?;
    Ok((at, who, nsfd))
}

/// The masks put over the new file system `mnt`, and the result placed at `target`.
fn masked_and_placed(
    at: &MountTarget,
    who: Option<&PinnedCaller>,
    mnt: OwnedFd,
    masks: &Masks,
    target: &str,
    ms: MountStrategy,
) -> Result<MountOutcome> {
    let mnt = masked(mnt, masks, ms)?;
    Ok(MountOutcome { mount_id: place(at, who, mnt, target, ms)?, made_for: who.map(|w| w.id()) })
}

/// The checked mount target of `pid` for `caller`: the existing namespace
/// and root checks ([`Container::mount_target`]), then the caller's
/// authority over that mount namespace ([`authz::authorize_mount_ns`]).
pub(crate) fn authorized_target(
    container: &Container,
    strategy: PidStrategy,
    caller: Option<&Caller>,
    pid: i64,
) -> Result<(MountTarget, Option<PinnedCaller>)> {
    let who = caller.map(|c| PinnedCaller::pin(container, c)).transpose()?;
    let at = container.mount_target(container.resolve(pid, strategy)?)?;
    if let Some(who) = &who {
        authz::authorize_mount_ns(who, at.mntns())?;
    }
    Ok((at, who))
}

/// Unmounts the mount at `target` in `pid`'s mount namespace, for `caller`,
/// if its unique id is one of `owned` and it was made for that caller (or
/// the caller is the container's root; see [`authz::authorize_umount`]) (mounts iwsd made of this kind for this workspace).
/// NOT_FOUND when nothing is mounted there, PERMISSION_DENIED when the mount
/// there is not one of ours. Returns the id of the mount removed.
pub fn umount(
    container: &Container,
    strategy: PidStrategy,
    caller: Option<&Caller>,
    pid: i64,
    target: &str,
    owned: &[(u64, Option<CallerId>)],
) -> Result<u64> {
    check_target(target)?;
    let (at, who) = authorized_target(container, strategy, caller, pid)?;
    umount_at(&at, who.as_ref(), target, owned)
}

/// [`umount`] for the daemon itself (Teardown's removal of the mark, which
/// the daemon made): no caller to authorize.
pub(crate) fn umount_as_daemon(
    container: &Container,
    strategy: PidStrategy,
    pid: i64,
    target: &str,
    owned: &[u64],
) -> Result<u64> {
    check_target(target)?;
    let at = container.mount_target(container.resolve(pid, strategy)?)?;
    let owned: Vec<(u64, Option<CallerId>)> = owned.iter().map(|&id| (id, None)).collect();
    umount_at(&at, None, target, &owned)
}

fn umount_at(
    at: &MountTarget,
    who: Option<&PinnedCaller>,
    target: &str,
    owned: &[(u64, Option<CallerId>)],
) -> Result<u64> {
    let host_proc = rustix::fs::open("/proc", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("open(/proc)", e))?;
    on_fresh_thread(|ns| {
        ns.setns(at.mntns(), CloneFlags::CLONE_NEWNS, "mnt")?;
        let t = resolve_target(at.root(), target, ErrorKind::NotFound)?;
        let (id, is_root) = mount_id(t.as_fd())?;
        if !is_root {
            return Err(Error::because(
                ErrorKind::NotFound,
                Reason::NothingMounted,
                format!("nothing is mounted at {target:?}"),
            ));
        }
        let Some(&(_, made_for)) = owned.iter().find(|(m, _)| *m == id) else {
            return Err(Error::because(
                ErrorKind::PermissionDenied,
                Reason::NotOurMount,
                format!("the mount at {target:?} was not made by iwsd for this workspace; only those can be unmounted"),
            ));
        };
        if let Some(who) = who {
            authz::authorize_umount(who, made_for)?;
        }
        // The fd of the checked mount is not looked up by name again, so a
        // swap of the path cannot redirect the unmount. Should umount2 take
        // the top of a stack there (LOOKUP_MOUNTPOINT): if the
        // caller mounted something onto ours in between, that goes instead.
        // So ours counts as removed only once it is really gone from the
        // namespace; otherwise it stays owned (and counted) and the caller is
        // told (its own racing mount is what was unmounted).
        // The checked mount is named through its fd's magic link in the
        // daemon's procfs, not by fchdir onto it: fchdir checks permission on
        // the mount's root, which on a FUSE mount asks its server (a FUSE
        // mark whose server is stopped would block the thread forever).
        rustix::process::fchdir(&host_proc).map_err(|e| Error::internal("fchdir(/proc)", e))?;
        use std::os::fd::AsRawFd;
        rustix::mount::unmount(
            format!("thread-self/fd/{}", t.as_raw_fd()).as_str(),
            rustix::mount::UnmountFlags::DETACH,
        )
        .map_err(|e| Error::internal(&format!("umount2({target:?}, MNT_DETACH)"), e))?;
        if mounted_here(&host_proc, id)? {
            return Err(Error::because(
                ErrorKind::Unavailable,
                Reason::Raced,
                format!("something was mounted onto the mount at {target:?} during the unmount; it is still mounted, try again"),
            ));
        }
        Ok(id)
    })
}

/// Whether this kernel can do what [`mount_proc`] needs: the new mount API,
/// proc's `pidns` option, and attaching mounts to a detached tree. Probed by
/// assembling a masked proc for our own PID namespace (nothing is attached to
/// any namespace; the tree is dropped).
pub fn probe_detached_proc() -> std::result::Result<(), String> {
    let pidns = rustix::fs::open("/proc/self/ns/pid", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open(/proc/self/ns/pid): {e}"))?;
    let mnt = detached(
        "proc",
        |fs| fsconfig_set_fd(fs, "pidns", &pidns).map_err(|e| Error::internal("fsconfig(proc, pidns)", e)),
        NOSUID_NODEV_NOEXEC,
    )
    .map_err(|e| e.detail().unwrap_or(e.message()).to_string())?;
    apply_masks(&mnt, &Masks { masked: vec!["kcore".into()], read_only: vec!["sys".into()] })
        .map_err(|e| e.detail().unwrap_or(e.message()).to_string())?;
    // The sources every mask is cloned from: made here, at start, so the
    // first MountProc neither pays for them nor can fail on them.
    make_sources().map_err(|e| e.detail().unwrap_or(e.message()).to_string())?;
    mount_id(mnt.as_fd()).map_err(|e| e.message().to_string())?;
    // The lock namespace every placement goes through (see "locked masks").
    lock_ns().map_err(|e| e.detail().unwrap_or(e.message()).to_string())?;
    Ok(())
}

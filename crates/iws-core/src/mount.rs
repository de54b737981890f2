//! Masked proc and sysfs, assembled detached and placed inside a container.
//!
//! Threat model: the target path comes from code the workspace's user
//! controls and lives in a tree that user can change concurrently (rename,
//! symlink swaps). The mount must land on a directory inside the requesting
//! process's root, never elsewhere, and nothing may appear in the host's mount
//! table at any time. Hence (DESIGN.md "Kernel techniques"):
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

#![deny(unsafe_code)]

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sched::CloneFlags;
use rustix::fs::{openat2, AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_fd, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, open_tree,
    FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use crate::authz::{self, Caller, CallerId, PinnedCaller};
use crate::error::{Error, ErrorKind, Reason, Result};
pub(crate) use crate::nsthread::{on_fresh_thread, NsThread};
use crate::pidns::{Container, MountTarget, PidStrategy};
use crate::sys;

/// `STATX_MNT_ID_UNIQUE` (Linux 6.8): a 64-bit mount id never reused.
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

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

/// Which kind of filesystem a tracked mount is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Proc,
    Sysfs,
    Nfs,
}

impl MountKind {
    pub fn name(self) -> &'static str {
        match self {
            MountKind::Proc => "proc",
            MountKind::Sysfs => "sysfs",
            MountKind::Nfs => "nfs",
        }
    }
}

/// What to hide and what to make read-only in a new mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masks {
    /// Entries hidden: files by a bind of `/dev/null`, directories by an
    /// empty read-only tmpfs. Entries the kernel lacks are skipped.
    pub masked: Vec<String>,
    /// Entries (files or subtrees) made read-only.
    pub read_only: Vec<String>,
}

impl Masks {
    /// The defaults for proc (DESIGN.md / issue "Masked proc and sysfs").
    pub fn proc_default() -> Masks {
        Masks {
            masked: [
                "acpi",
                "asound",
                "interrupts",
                "kcore",
                "keys",
                "latency_stats",
                "sched_debug",
                "scsi",
                "timer_list",
                "timer_stats",
            ]
            .map(String::from)
            .to_vec(),
            read_only: ["bus", "fs", "irq", "sys", "sysrq-trigger"].map(String::from).to_vec(),
        }
    }

    /// The defaults for sysfs.
    pub fn sysfs_default() -> Masks {
        Masks { masked: ["firmware", "devices/virtual/powercap"].map(String::from).to_vec(), read_only: vec![] }
    }

    /// Every entry must be a plain relative path: no `..`, no empty parts.
    pub fn validate(&self) -> Result<()> {
        for e in self.masked.iter().chain(&self.read_only) {
            let ok = !e.is_empty()
                && e.len() <= 256
                && !e.starts_with('/')
                && !e.contains('\0')
                && e.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
            if !ok {
                return Err(Error::invalid(format!(
                    "mask entry {e:?} must be a relative path inside the filesystem without '.' or '..' parts"
                )));
            }
        }
        Ok(())
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

/// Checks a target path from a request: absolute, no `..`, no NUL, bounded.
/// Returns it unchanged. Symlinks are refused later, during resolution.
pub fn check_target(target: &str) -> Result<&str> {
    if target.is_empty() {
        return Err(Error::invalid("target is empty; give an absolute path inside the process's root"));
    }
    if !target.starts_with('/') {
        return Err(Error::invalid(format!("target {target:?} is relative; give an absolute path")));
    }
    if target.len() > 4096 || target.contains('\0') {
        return Err(Error::invalid("target is longer than 4096 bytes or contains NUL"));
    }
    if target.split('/').any(|c| c == "..") {
        return Err(Error::invalid(format!("target {target:?} contains '..'; give a path without it")));
    }
    Ok(target)
}

pub(crate) fn kernel(op: &str, e: Errno) -> Error {
    match e {
        Errno::NOSYS | Errno::OPNOTSUPP => Error::because(
            ErrorKind::FailedPrecondition,
            Reason::KernelLacks,
            format!("this kernel lacks a feature iwsd needs ({op}: {e}); see `iwsd doctor`"),
        )
        .with_errno(e),
        e => Error::internal(op, e),
    }
}

/// Resolves `target` inside `root` (which must be in the calling thread's
/// mount namespace) to an `O_PATH` fd, refusing any symlink or magic link.
fn resolve_target(root: BorrowedFd<'_>, target: &str, missing: ErrorKind) -> Result<OwnedFd> {
    let rel = target.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2(
        root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
    .map_err(|e| match e {
        Errno::LOOP => Error::invalid(format!("target {target:?} is or passes through a symlink; give the real path"))
            .with_reason(Reason::Symlink),
        Errno::NOTDIR => Error::invalid(format!("target {target:?} is not a directory (or a part of it is not)"))
            .with_reason(Reason::NotADirectory),
        Errno::NOENT => Error::because(
            missing,
            Reason::Missing,
            format!("target {target:?} does not exist in the process's mount namespace"),
        ),
        Errno::XDEV => {
            Error::invalid(format!("target {target:?} escapes the process's root")).with_reason(Reason::EscapesRoot)
        }
        Errno::ACCESS | Errno::PERM => {
            Error::new(ErrorKind::PermissionDenied, format!("target {target:?} is not accessible")).with_errno(e)
        }
        e => Error::internal(&format!("openat2({target:?}, RESOLVE_IN_ROOT)"), e),
    })
}

pub(crate) fn mount_id(fd: BorrowedFd<'_>) -> Result<(u64, bool)> {
    // AT_STATX_DONT_SYNC: the mount id and MOUNT_ROOT come from the VFS, so
    // no attribute refresh is needed, and a FUSE mount (a mark whose server
    // is stopped or gone) is not asked for one, which could block forever.
    let st = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC,
        StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE),
    )
    .map_err(|e| kernel("statx(STATX_MNT_ID_UNIQUE)", e))?;
    if st.stx_mask & STATX_MNT_ID_UNIQUE == 0 {
        // Before Linux 6.8: the classic mount id, which the kernel may reuse
        // after an unmount (documented in the README's kernel table).
        if st.stx_mask & StatxFlags::MNT_ID.bits() == 0 {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "this kernel does not report mount ids (statx, Linux 5.8+)",
            ));
        }
    }
    Ok((st.stx_mnt_id, st.stx_attributes.contains(rustix::fs::StatxAttributes::MOUNT_ROOT)))
}

pub(crate) fn detached(
    fs: &str,
    configure: impl FnOnce(&OwnedFd) -> Result<()>,
    attrs: MountAttrFlags,
) -> Result<OwnedFd> {
    let fsfd = fsopen(fs, FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| kernel(&format!("fsopen({fs})"), e))?;
    configure(&fsfd)?;
    fsconfig_create(&fsfd).map_err(|e| kernel(&format!("fsconfig({fs}, CMD_CREATE)"), e))?;
    fsmount(&fsfd, FsMountFlags::FSMOUNT_CLOEXEC, attrs).map_err(|e| kernel(&format!("fsmount({fs})"), e))
}

const NOSUID_NODEV_NOEXEC: MountAttrFlags =
    MountAttrFlags::MOUNT_ATTR_NOSUID.union(MountAttrFlags::MOUNT_ATTR_NODEV).union(MountAttrFlags::MOUNT_ATTR_NOEXEC);

/// A source every mask of one kind is cloned from, made once per process
/// (by the kernel probe at start): a mask is then one `open_tree(CLONE)`
/// instead of a new filesystem each time.
struct MaskSource {
    fd: Mutex<Option<OwnedFd>>,
    make: fn() -> Result<OwnedFd>,
}

impl MaskSource {
    const fn new(make: fn() -> Result<OwnedFd>) -> MaskSource {
        MaskSource { fd: Mutex::new(None), make }
    }

    /// A new detached clone of the source (made first if need be).
    fn cover(&self) -> Result<OwnedFd> {
        let mut g = self.fd.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some((self.make)()?);
        }
        let src = g.as_ref().expect("just set");
        open_tree(
            src,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| kernel("open_tree(mask source, CLONE)", e))
    }
}

static EMPTY_DIR: MaskSource = MaskSource::new(empty_dir);
static DEV_NULL: MaskSource = MaskSource::new(dev_null);

/// An empty tmpfs, read-only both as a mount and as a superblock (so no
/// container can remount it writable and pass data through the one instance
/// every directory mask shares), detached.
fn empty_dir() -> Result<OwnedFd> {
    detached(
        "tmpfs",
        |fs| {
            fsconfig_set_string(fs, "mode", "0555").map_err(|e| kernel("fsconfig(tmpfs mode)", e))?;
            fsconfig_set_string(fs, "size", "4k").map_err(|e| kernel("fsconfig(tmpfs size)", e))?;
            fsconfig_set_string(fs, "nr_inodes", "1").map_err(|e| kernel("fsconfig(tmpfs nr_inodes)", e))?;
            fsconfig_set_flag(fs, "ro").map_err(|e| kernel("fsconfig(tmpfs ro)", e))
        },
        NOSUID_NODEV_NOEXEC | MountAttrFlags::MOUNT_ATTR_RDONLY,
    )
}

/// The daemon's `/dev/null`, detached.
///
/// Made private at once: a clone of a shared mount joins its peer group, and
/// under systemd the host's `/dev` is shared, so every file mask would be a
/// peer of it and a mount on top of a mask (locking forbids unmounting, not
/// mounting on top) would propagate onto the host's `/dev/null`.
fn dev_null() -> Result<OwnedFd> {
    let fd = open_tree(CWD, "/dev/null", OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
        .map_err(|e| kernel("open_tree(/dev/null, CLONE)", e))?;
    sys::mount_make_rprivate(&fd).map_err(|e| Error::internal("mount_setattr(/dev/null clone, MS_PRIVATE)", e))?;
    Ok(fd)
}

/// Attaches masks to the detached tree `mnt`.
fn apply_masks(mnt: &OwnedFd, masks: &Masks) -> Result<()> {
    for name in &masks.masked {
        let st = match rustix::fs::statx(mnt, name.as_str(), AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue, // the kernel lacks this entry
            Err(e) => return Err(Error::internal(&format!("statx(mask {name})"), e)),
        };
        let cover = if FileType::from_raw_mode(st.stx_mode as u32) == FileType::Directory {
            EMPTY_DIR.cover()?
        } else {
            DEV_NULL.cover()?
        };
        move_mount(&cover, "", mnt, name.as_str(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|e| kernel(&format!("move_mount(mask onto detached {name})"), e))?;
    }
    for name in &masks.read_only {
        let sub = match open_tree(
            mnt,
            name.as_str(),
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE,
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(kernel(&format!("open_tree(detached {name}, CLONE)"), e)),
        };
        sys::mount_setattr_fd(&sub, sys::MOUNT_ATTR_RDONLY, true)
            .map_err(|e| Error::internal(&format!("mount_setattr({name}, RDONLY)"), e))?;
        move_mount(&sub, "", mnt, name.as_str(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|e| kernel(&format!("move_mount(read-only {name} onto detached tree)"), e))?;
    }
    Ok(())
}

/// The fallback for [`apply_masks`] on kernels that cannot attach mounts to a
/// detached tree: in a mount namespace private to a throwaway thread (made
/// `rprivate` first, so nothing propagates anywhere), `mnt` is attached under
/// a private tmpfs, masked by path, and cloned (recursively) into a new
/// detached tree, which is returned. The private namespace dies with the thread.
fn apply_masks_staged(mnt: OwnedFd, masks: &Masks) -> Result<OwnedFd> {
    use nix::mount::{mount, MsFlags};
    on_fresh_thread(move |t| {
        let base = private_staging(t)?;
        let dir = format!("{base}/m");
        std::fs::create_dir(&dir).map_err(|e| Error::internal("mkdir(staging)", e))?;
        move_mount(&mnt, "", CWD, dir.as_str(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|e| kernel("move_mount(into staging)", e))?;
        for name in &masks.masked {
            let p = format!("{dir}/{name}");
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if meta.is_dir() {
                mount(
                    Some("none"),
                    p.as_str(),
                    Some("tmpfs"),
                    MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                    Some("size=4k,nr_inodes=1,mode=0555"),
                )
            } else {
                mount(Some("/dev/null"), p.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
            }
            .map_err(|e| Error::internal(&format!("mount(mask {name}) in staging"), e))?;
        }
        for name in &masks.read_only {
            let p = format!("{dir}/{name}");
            if std::fs::symlink_metadata(&p).is_err() {
                continue;
            }
            mount(Some(p.as_str()), p.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .and_then(|_| {
                    mount(
                        None::<&str>,
                        p.as_str(),
                        None::<&str>,
                        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                        None::<&str>,
                    )
                })
                .map_err(|e| Error::internal(&format!("mount(read-only {name}) in staging"), e))?;
        }
        open_tree(
            CWD,
            dir.as_str(),
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE,
        )
        .map_err(|e| kernel("open_tree(staging, CLONE|RECURSIVE)", e))
    })
}

/// A directory of a private tmpfs in a mount namespace private to the
/// calling (fresh) thread, made `rprivate` first so nothing propagates to or
/// from it. The namespace dies with the thread.
fn private_staging(t: &NsThread) -> Result<&'static str> {
    use nix::mount::{mount, MsFlags};
    t.unshare(CloneFlags::CLONE_NEWNS)?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| Error::internal("mount(/, MS_REC|MS_PRIVATE) in staging ns", e))?;
    let base = staging_dir()?;
    mount(Some("none"), base, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("size=64k,mode=0700"))
        .map_err(|e| Error::internal("mount(staging tmpfs)", e))?;
    Ok(base)
}

/// An existing directory of the daemon's mount namespace that a private
/// namespace may cover with a tmpfs of its own.
fn staging_dir() -> Result<&'static str> {
    ["/tmp", "/mnt", "/run", "/dev"]
        .into_iter()
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
        .ok_or_else(|| Error::internal("staging", "no directory to stage under"))
}

fn masked(mnt: OwnedFd, masks: &Masks, strategy: MountStrategy) -> Result<OwnedFd> {
    match strategy {
        MountStrategy::Detached => apply_masks(&mnt, masks).map(|_| mnt),
        MountStrategy::Fallback => apply_masks_staged(mnt, masks),
    }
}

/// The peer group of mount `id` in a mountinfo text: `Some(None)` if that
/// mount is not shared, `None` if it is not listed.
fn peer_group(mountinfo: &str, id: u64) -> Option<Option<u64>> {
    mountinfo.lines().find_map(|l| {
        let mut f = l.split(' ');
        if f.next()?.parse::<u64>().ok()? != id {
            return None;
        }
        let mut tags = l.split(' ').skip(6).take_while(|x| *x != "-");
        Some(tags.find_map(|t| t.strip_prefix("shared:")?.parse::<u64>().ok()))
    })
}

/// Whether attaching a mount under a given mount would propagate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    /// Nothing reaches the daemon's namespace.
    Contained,
    /// It would reach the daemon's namespace through this peer group.
    Leaks(u64),
    /// The mount is not in the container's mountinfo (fail closed).
    Unknown,
}

/// Whether attaching under a mount in peer group `group` (`Some(None)`: not
/// shared; `None`: the mount was not found) would propagate into the daemon's
/// namespace, whose mountinfo `daemon` gives (read only for a shared mount).
/// Propagation reaches every peer of the group and every mount that is a
/// slave of it, so both `shared:N` and `master:N` there count.
fn judge(group: Option<Option<u64>>, daemon: impl FnOnce() -> Result<String>) -> Result<Propagation> {
    let Some(group) = group else { return Ok(Propagation::Unknown) };
    let Some(group) = group else { return Ok(Propagation::Contained) };
    let (peer, slave) = (format!("shared:{group}"), format!("master:{group}"));
    let reaches =
        daemon()?.lines().any(|l| l.split(' ').skip(6).take_while(|x| *x != "-").any(|t| t == peer || t == slave));
    Ok(if reaches { Propagation::Leaks(group) } else { Propagation::Contained })
}

fn read_to_string(fd: OwnedFd, what: &str) -> Result<String> {
    let mut s = String::with_capacity(16 * 1024);
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).map_err(|e| Error::internal(what, e))?;
    Ok(s)
}

/// Whether `statmount(2)` reports mount propagation here (Linux 6.8+), probed once.
fn statmount_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .ok()
            .and_then(|fd| {
                rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE)).ok()
            })
            .filter(|st| st.stx_mask & STATX_MNT_ID_UNIQUE != 0)
            .is_some_and(|st| sys::statmount_propagation(st.stx_mnt_id).is_ok())
    })
}

/// Refuses targets whose mount would propagate a new mount into the daemon's
/// mount namespace. Made on the calling thread, used on the worker thread
/// that entered the target's namespace.
pub(crate) struct PropagationGuard {
    /// The host's procfs, to read mountinfo from inside the target's namespace.
    pub(crate) host_proc: OwnedFd,
    /// The calling thread's (the daemon's) mountinfo, opened there (which
    /// binds it to that namespace) and read only if needed.
    ours: OwnedFd,
    /// Ask `statmount(2)` about the one mount instead of reading mountinfo.
    statmount: bool,
    /// Also refuse a target mount shared only inside the workspace (for
    /// MountProc/MountSysfs; the mark, made once, may go onto a shared root).
    refuse_peers: bool,
}

impl PropagationGuard {
    /// `strategy` Fallback keeps to the mountinfo technique of older kernels.
    pub(crate) fn new(strategy: MountStrategy) -> Result<PropagationGuard> {
        let host_proc = rustix::fs::open("/proc", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::internal("open(/proc)", e))?;
        let ours =
            rustix::fs::openat(&host_proc, "thread-self/mountinfo", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::internal("open(/proc/thread-self/mountinfo)", e))?;
        Ok(PropagationGuard {
            host_proc,
            ours,
            statmount: strategy == MountStrategy::Detached && statmount_works(),
            refuse_peers: false,
        })
    }

    /// [`PropagationGuard::new`] that also refuses a target mount with any
    /// peer group (see `Reason::PropagatesToPeers`).
    pub(crate) fn unshared(strategy: MountStrategy) -> Result<PropagationGuard> {
        Ok(PropagationGuard { refuse_peers: true, ..PropagationGuard::new(strategy)? })
    }

    /// The daemon's mount table.
    fn daemon_mountinfo(&self) -> Result<String> {
        let fd = self.ours.try_clone().map_err(|e| Error::internal("dup(mountinfo)", e))?;
        read_to_string(fd, "read(daemon mountinfo)")
    }

    /// On a worker thread inside the target's namespace: refuses a target
    /// whose mount would propagate a new mount into the daemon's namespace.
    /// The daemon's mount table is read only when the target's mount is shared.
    pub(crate) fn check(&self, t: BorrowedFd<'_>, target: &str) -> Result<()> {
        let group = if self.statmount {
            let (id, _) = mount_id(t)?;
            let p = sys::statmount_propagation(id).map_err(|e| Error::internal("statmount(STATMOUNT_MNT_BASIC)", e))?;
            Some((p.flags & libc::MS_SHARED != 0).then_some(p.peer_group))
        } else {
            let st = rustix::fs::statx(t, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)
                .map_err(|e| kernel("statx(STATX_MNT_ID)", e))?;
            let theirs = rustix::fs::openat(
                &self.host_proc,
                "thread-self/mountinfo",
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::internal("open(/proc/thread-self/mountinfo) in target ns", e))
            .and_then(|fd| read_to_string(fd, "read(mountinfo in target ns)"))?;
            peer_group(&theirs, st.stx_mnt_id)
        };
        let verdict = judge(group, || self.daemon_mountinfo())?;
        match verdict {
            // Shared inside the workspace only: a mount there would still be
            // copied into every namespace of the peer group (and each slave
            // of it), uncounted by the workspace's mount limit.
            Propagation::Contained => match group {
                Some(Some(group)) if self.refuse_peers => Err(Error::because(
                    ErrorKind::FailedPrecondition,
                    Reason::PropagatesToPeers,
                    format!(
                        "the mount holding {target:?} is shared (peer group {group}): a mount there would be copied into every mount namespace of that group, which the workspace's mount limit cannot count. Mount onto a private or slave mount (e.g. in a namespace of its own made with `unshare -m`)"
                    ),
                )),
                _ => Ok(()),
            },
            Propagation::Leaks(group) => Err(Error::because(
                ErrorKind::FailedPrecondition,
                Reason::SharedPropagation,
                format!(
                    "the mount holding {target:?} shares propagation (peer group {group}) with the host; a mount there would appear on the host. Give the container private or slave mount propagation"
                ),
            )),
            Propagation::Unknown => Err(Error::internal("mountinfo", format!("the mount of {target:?} is not listed"))),
        }
    }
}

/// Attaches the detached tree `tree` onto the resolved directory `onto`
/// (both by fd, so nothing is looked up by name again). Returns the unique
/// id of the new mount. `what` names the step in errors.
pub(crate) fn attach(tree: &OwnedFd, onto: &OwnedFd, what: &str) -> Result<u64> {
    move_mount(tree, "", onto, "", MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH)
        .map_err(|e| kernel(&format!("move_mount({what})"), e))?;
    Ok(mount_id(tree.as_fd())?.0)
}

/// Refuses a target directory (resolved `fd`) the caller may not write (see
/// [`PinnedCaller::may_write`]): ownership and mode through the mount it is
/// reached by, and whether it carries a POSIX access ACL.
fn check_writable(host_proc: &OwnedFd, who: &PinnedCaller, fd: BorrowedFd<'_>, target: &str) -> Result<()> {
    let st = rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::UID | StatxFlags::GID | StatxFlags::MODE)
        .map_err(|e| kernel("statx(target)", e))?;
    // An O_PATH fd has no xattrs: reopen it for reading through the daemon's
    // procfs (never the target namespace's /proc, which the workspace controls).
    use std::os::fd::AsRawFd;
    let acl = match rustix::fs::openat(
        host_proc,
        format!("thread-self/fd/{}", fd.as_raw_fd()).as_str(),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(dir) => match rustix::fs::fgetxattr(&dir, "system.posix_acl_access", &mut [0u8; 0]) {
            Ok(_) => true,
            Err(Errno::NODATA) | Err(Errno::OPNOTSUPP) => false,
            Err(e) => return Err(Error::internal("fgetxattr(target, system.posix_acl_access)", e)),
        },
        Err(e) => return Err(Error::internal("open(target, O_RDONLY)", e)),
    };
    if who.may_write(st.stx_uid, st.stx_gid, st.stx_mode as u32 & 0o7777, acl) {
        return Ok(());
    }
    Err(Error::because(
        ErrorKind::PermissionDenied,
        Reason::TargetNotWritable,
        format!("the caller may not write {target:?}; mount only onto a directory it may write"),
    ))
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

/// On thread `t`: enters the checked mount namespace of `at` and resolves
/// `target` inside its root; refuses a directory the caller may not write and
/// one where a mount would propagate back into the daemon's namespace. The
/// O_PATH fd it returns stays valid across later setns calls.
fn checked_target(
    t: &NsThread,
    at: &MountTarget,
    who: Option<&PinnedCaller>,
    guard: &PropagationGuard,
    target: &str,
) -> Result<OwnedFd> {
    t.setns(at.mntns(), CloneFlags::CLONE_NEWNS, "mnt")?;
    let fd = resolve_target(at.root(), target, ErrorKind::InvalidArgument)?;
    if let Some(who) = who {
        check_writable(&guard.host_proc, who, fd.as_fd(), target)?;
    }
    guard.check(fd.as_fd(), target)?;
    Ok(fd)
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

// ---- locked masks ------------------------------------------------------------
//
// Ring root owns its mount namespace: it may unmount or remount whatever is
// mounted there unless the kernel has *locked* it. The kernel locks
// (MNT_LOCKED on every mount of a tree, MNT_LOCK_READONLY/NOSUID/NODEV/
// NOEXEC/ATIME on the flags each has) only the mounts that reach a mount
// namespace owned by a less privileged user namespace by namespace copy or by
// propagation (`lock_mnt_tree`, called where the propagated copy's parent
// lies in a namespace whose owner differs from the mounting task's), never by
// `move_mount`. A recursive clone of a locked tree keeps its submounts
// locked, and only its root unlocked (`__do_loopback`). Hence, for every
// proc and sysfs iwsd places:
//
// 1. a carrier P (a clone of the empty read-only tmpfs) is made shared, and
//    R, a clone of P, is its peer;
// 2. R is attached in the *lock namespace*, a mount namespace owned by a user
//    namespace of iwsd's own (made once; nothing else lives there);
// 3. back in the daemon's namespace (owned by the initial user namespace),
//    the masked tree is attached onto P: the kernel propagates a copy onto
//    R, across user namespaces, and locks it;
// 4. in the lock namespace, that copy is cloned recursively (root unlocked,
//    every mask and read-only part locked), then R is detached and P dropped;
// 5. the clone is placed. Ring root can then unmount the whole proc (which
//    reveals nothing) but no mask, and can make no locked flag writable.
//
// Verified on Linux 6.18 by the root tests (mount_root.rs, locked masks) and
// the ava attack suite. The fallback strategy does the same with P attached
// in a thread-private staging namespace instead of detached.

/// The lock namespace (see above).
struct LockNs {
    /// Its `ns/mnt`.
    mntns: OwnedFd,
    /// The daemon's own mount namespace, to step back into.
    home: OwnedFd,
    /// The root of iwsd's tmpfs in it, under which carriers are attached.
    base: OwnedFd,
}

static LOCK_NS: OnceLock<std::result::Result<LockNs, Error>> = OnceLock::new();
static CARRIERS: AtomicU64 = AtomicU64::new(0);

/// The lock namespace, made on first use (by the kernel probe at start).
/// Must be called from a thread in the daemon's own mount namespace.
fn lock_ns() -> Result<&'static LockNs> {
    LOCK_NS.get_or_init(make_lock_ns).as_ref().map_err(Clone::clone)
}

fn make_lock_ns() -> Result<LockNs> {
    let home = rustix::fs::open("/proc/thread-self/ns/mnt", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("open(/proc/thread-self/ns/mnt)", e))?;
    let tree = detached(
        "tmpfs",
        |fs| {
            fsconfig_set_string(fs, "mode", "0700").map_err(|e| kernel("fsconfig(tmpfs mode)", e))?;
            fsconfig_set_string(fs, "size", "4k").map_err(|e| kernel("fsconfig(tmpfs size)", e))?;
            fsconfig_set_string(fs, "nr_inodes", "4096").map_err(|e| kernel("fsconfig(tmpfs nr_inodes)", e))
        },
        NOSUID_NODEV_NOEXEC,
    )?;
    let dir = staging_dir()?;
    let cdir = std::ffi::CString::new(dir).map_err(|e| Error::internal("staging dir", e.to_string()))?;
    let (child, hold) =
        sys::spawn_lock_ns_child(tree.as_fd(), &cdir).map_err(|e| Error::internal("fork(lock namespace child)", e))?;
    let mntns = rustix::fs::open(
        format!("/proc/{}/ns/mnt", child.as_raw()).as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::internal("open(ns/mnt of lock namespace child)", e));
    drop(hold);
    let _ = nix::sys::wait::waitpid(child, None);
    let mntns = mntns?;
    let base = on_fresh_thread(|t| {
        t.setns(mntns.as_fd(), CloneFlags::CLONE_NEWNS, "lock ns")?;
        rustix::fs::open("/", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::internal("open(lock namespace base)", e))
    })?;
    Ok(LockNs { mntns, home, base })
}

/// How many mounts the lock namespace holds (1 when idle: its own tmpfs).
/// For tests and diagnostics; makes the lock namespace if need be.
pub fn lock_namespace_mounts() -> Result<usize> {
    let l = lock_ns()?;
    let proc = rustix::fs::open("/proc", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("open(/proc)", e))?;
    on_fresh_thread(|t| {
        t.setns(l.mntns.as_fd(), CloneFlags::CLONE_NEWNS, "lock ns")?;
        let fd = rustix::fs::openat(&proc, "thread-self/mountinfo", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::internal("open(lock ns mountinfo)", e))?;
        Ok(read_to_string(fd, "read(lock ns mountinfo)")?.lines().count())
    })
}

/// Steps 1-4 above: a copy of the detached tree `tree` whose submounts are
/// locked. Leaves the calling thread in the lock namespace.
fn lock_tree(t: &NsThread, l: &LockNs, tree: OwnedFd, strategy: MountStrategy) -> Result<OwnedFd> {
    let clone = |fd: &OwnedFd, what: &str| {
        open_tree(
            fd,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| kernel(&format!("open_tree({what}, CLONE)"), e))
    };
    // Where the tree is attached onto P: the daemon's namespace (P detached)
    // or, for the fallback, a staging namespace of this thread's (P attached).
    let (p, home) = match strategy {
        MountStrategy::Detached => {
            (EMPTY_DIR.cover()?, l.home.try_clone().map_err(|e| Error::internal("dup(mnt ns)", e))?)
        }
        MountStrategy::Fallback => {
            // A staging copy of the daemon's namespace (this thread may have
            // entered the target's already).
            t.setns(l.home.as_fd(), CloneFlags::CLONE_NEWNS, "home")?;
            let base = private_staging(t)?;
            let p = detached("tmpfs", |_| Ok(()), NOSUID_NODEV_NOEXEC | MountAttrFlags::MOUNT_ATTR_RDONLY)?;
            move_mount(&p, "", CWD, base, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
                .map_err(|e| kernel("move_mount(carrier into staging)", e))?;
            let home = rustix::fs::open("/proc/thread-self/ns/mnt", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::internal("open(staging ns/mnt)", e))?;
            (p, home)
        }
    };
    sys::mount_make_shared(&p).map_err(|e| match Errno::from_io_error(&e) {
        Some(errno) => kernel("mount_setattr(carrier, MS_SHARED)", errno),
        None => Error::internal("mount_setattr(carrier, MS_SHARED)", e),
    })?;
    let r = clone(&p, "carrier")?;
    let name = format!("c{}", CARRIERS.fetch_add(1, Ordering::Relaxed));
    rustix::fs::mkdirat(&l.base, name.as_str(), Mode::from_raw_mode(0o700))
        .map_err(|e| Error::internal("mkdir(carrier dir in lock ns)", e))?;
    t.setns(l.mntns.as_fd(), CloneFlags::CLONE_NEWNS, "lock ns")?;
    let locked = move_mount(&r, "", &l.base, name.as_str(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|e| kernel("move_mount(carrier peer into lock ns)", e))
        .and_then(|_| {
            t.setns(home.as_fd(), CloneFlags::CLONE_NEWNS, "home")?;
            // The propagation that locks: onto P, copied onto R.
            move_mount(
                &tree,
                "",
                &p,
                "",
                MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
            )
            .map_err(|e| kernel("move_mount(tree onto carrier)", e))?;
            t.setns(l.mntns.as_fd(), CloneFlags::CLONE_NEWNS, "lock ns")?;
            open_tree(
                &l.base,
                name.as_str(),
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_RECURSIVE,
            )
            .map_err(|e| kernel("open_tree(locked copy, CLONE|RECURSIVE)", e))
        });
    // R and the locked copy on it out of the lock namespace, whatever
    // happened. umount2 follows the mounts stacked on the path it is given
    // (LOOKUP_MOUNTPOINT), so it takes the top first: the copy, then R.
    let drop = || {
        t.setns(l.mntns.as_fd(), CloneFlags::CLONE_NEWNS, "lock ns")?;
        rustix::process::fchdir(&l.base).map_err(|e| Error::internal("fchdir(lock ns base)", e))?;
        for _ in 0..3 {
            match rustix::mount::unmount(
                name.as_str(),
                rustix::mount::UnmountFlags::DETACH | rustix::mount::UnmountFlags::NOFOLLOW,
            ) {
                Ok(()) => {}
                Err(Errno::INVAL) => break, // nothing mounted there any more
                Err(e) => return Err(Error::internal("umount2(carrier in lock ns, MNT_DETACH)", e)),
            }
        }
        rustix::fs::unlinkat(&l.base, name.as_str(), AtFlags::REMOVEDIR)
            .map_err(|e| Error::internal("rmdir(carrier dir in lock ns)", e))
    };
    let dropped = drop();
    let locked = locked?;
    dropped?;
    // Placed private: it joins no peer group of the carrier's, nor (through a
    // mask) of anything the masks were cloned from.
    sys::mount_make_rprivate(&locked)
        .map_err(|e| Error::internal("mount_setattr(locked tree, AT_RECURSIVE, MS_PRIVATE)", e))?;
    Ok(locked)
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
    check_target(target)?;
    masks.validate()?;
    let (at, who) = authorized_target(container, strategy, caller, pid)?;
    let pidns = at.process().open("ns/pid", OFlags::RDONLY)?;
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
    let mnt = masked(mnt, masks, ms)?;
    Ok(MountOutcome { mount_id: place(&at, who.as_ref(), mnt, target, ms)?, made_for: who.as_ref().map(|w| w.id()) })
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
    check_target(target)?;
    opts.masks.validate()?;
    let (at, who) = authorized_target(container, strategy, caller, pid)?;
    let netns = at.process().open("ns/net", OFlags::RDONLY)?;
    let mut attrs = NOSUID_NODEV_NOEXEC;
    if opts.read_only {
        attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
    }
    // sysfs binds to the network namespace of the task that creates it.
    let mnt = on_fresh_thread(|t| {
        t.setns(netns.as_fd(), CloneFlags::CLONE_NEWNET, "net")?;
        detached("sysfs", |_| Ok(()), attrs)
    })?;
    let mnt = masked(mnt, &opts.masks, ms)?;
    Ok(MountOutcome { mount_id: place(&at, who.as_ref(), mnt, target, ms)?, made_for: who.as_ref().map(|w| w.id()) })
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

/// Whether the mount with id `id` is in the calling thread's mount namespace
/// (for tests; see `umount`).
pub fn is_mounted_here(id: u64) -> Result<bool> {
    let host_proc = rustix::fs::open("/proc", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("open(/proc)", e))?;
    mounted_here(&host_proc, id)
}

/// Whether the mount with id `id` (as [`mount_id`] reports it) is in the
/// calling thread's mount namespace: `statmount(2)` where it works, else the
/// thread's mountinfo (read through the daemon's procfs, `host_proc`).
fn mounted_here(host_proc: &OwnedFd, id: u64) -> Result<bool> {
    if statmount_works() {
        return match sys::statmount_propagation(id) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::internal("statmount(STATMOUNT_MNT_BASIC)", e)),
        };
    }
    let fd = rustix::fs::openat(host_proc, "thread-self/mountinfo", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("open(/proc/thread-self/mountinfo) in target ns", e))?;
    let table = read_to_string(fd, "read(mountinfo in target ns)")?;
    Ok(table.lines().any(|l| l.split(' ').next().and_then(|f| f.parse::<u64>().ok()) == Some(id)))
}

/// Whether statx reports unique (never reused) mount ids.
pub fn probe_mnt_id_unique() -> bool {
    rustix::fs::statx(CWD, "/", AtFlags::empty(), StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE))
        .is_ok_and(|st| st.stx_mask & STATX_MNT_ID_UNIQUE != 0)
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
    for source in [&EMPTY_DIR, &DEV_NULL] {
        source.cover().map_err(|e| e.detail().unwrap_or(e.message()).to_string())?;
    }
    mount_id(mnt.as_fd()).map_err(|e| e.message().to_string())?;
    // The lock namespace every placement goes through (see "locked masks").
    lock_ns().map_err(|e| e.detail().unwrap_or(e.message()).to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_namespace_holds_nothing_but_its_own_tmpfs() {
        if !rustix::process::geteuid().is_root() {
            assert_ne!(std::env::var("IWSD_REQUIRE_ROOT").as_deref(), Ok("1"), "needs root");
            eprintln!("SKIPPED the_lock_namespace_holds_nothing_but_its_own_tmpfs: needs root");
            return;
        }
        let l = lock_ns().unwrap();
        let proc =
            rustix::fs::open("/proc", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let table = on_fresh_thread(|t| {
            t.setns(l.mntns.as_fd(), CloneFlags::CLONE_NEWNS, "lock ns")?;
            let fd =
                rustix::fs::openat(&proc, "thread-self/mountinfo", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                    .map_err(|e| Error::internal("open mountinfo", e))?;
            read_to_string(fd, "read mountinfo")
        })
        .unwrap();
        // No copy of a host mount: it would keep the host's devices busy.
        assert_eq!(table.lines().count(), 1, "{table}");
        assert!(table.contains(" - tmpfs "), "{table}");
    }

    #[test]
    fn targets_must_be_absolute_without_dotdot() {
        assert!(check_target("/proc").is_ok());
        assert!(check_target("/").is_ok());
        assert!(check_target("/a/./b").is_ok());
        for bad in ["", "proc", "./proc", "/a/../b", "/..", "/a/..", "/a\0b"] {
            let e = check_target(bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
        assert!(check_target(&format!("/{}", "a".repeat(5000))).is_err());
    }

    fn propagation(container: &str, id: u64, daemon: &str) -> Propagation {
        judge(peer_group(container, id), || Ok(daemon.to_string())).unwrap()
    }

    #[test]
    fn propagation_into_the_daemon_namespace_is_detected() {
        let container = "\
100 90 0:30 / / rw,relatime shared:7 - ext4 /dev/x rw
101 100 0:31 / /work rw master:3 - tmpfs t rw
102 100 0:32 / /own rw shared:9 master:3 - tmpfs t rw
103 100 0:33 / /priv rw - tmpfs t rw
";
        let daemon_peer = "1 0 0:30 / / rw shared:7 - ext4 /dev/x rw\n";
        let daemon_slave = "1 0 0:30 / / rw master:9 - ext4 /dev/x rw\n";
        let daemon_none = "1 0 0:30 / / rw shared:3 - ext4 /dev/x rw\n";
        assert_eq!(propagation(container, 100, daemon_peer), Propagation::Leaks(7));
        assert_eq!(propagation(container, 100, daemon_none), Propagation::Contained);
        // Slave mounts receive, they do not send: attaching under 101 is safe.
        assert_eq!(propagation(container, 101, daemon_none), Propagation::Contained);
        // A shared group whose slave lives in the daemon's namespace leaks.
        assert_eq!(propagation(container, 102, daemon_slave), Propagation::Leaks(9));
        assert_eq!(propagation(container, 103, daemon_peer), Propagation::Contained);
        assert_eq!(propagation(container, 999, daemon_peer), Propagation::Unknown);
    }

    #[test]
    fn mask_entries_are_plain_relative_paths() {
        assert!(Masks::proc_default().validate().is_ok());
        assert!(Masks::sysfs_default().validate().is_ok());
        for bad in ["", "/kcore", "../x", "a/../b", "a//b", "./x"] {
            let m = Masks { masked: vec![bad.into()], read_only: vec![] };
            assert!(m.validate().is_err(), "{bad:?}");
        }
    }
}

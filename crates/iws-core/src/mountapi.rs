//! The new mount API, by fd: filesystems made detached, trees attached onto
//! resolved fds, mount ids, whether a mount is still in a namespace, and the
//! kernel's refusals of these calls turned into errors.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::OnceLock;

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags,
};

use crate::error::{Error, ErrorKind, Reason, Result};
use crate::sys;

/// `STATX_MNT_ID_UNIQUE` (Linux 6.8): a 64-bit mount id never reused.
const STATX_MNT_ID_UNIQUE: u32 = 0x4000;

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
        // after an unmount (docs/kernel-features.md).
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

pub(crate) const NOSUID_NODEV_NOEXEC: MountAttrFlags =
    MountAttrFlags::MOUNT_ATTR_NOSUID.union(MountAttrFlags::MOUNT_ATTR_NODEV).union(MountAttrFlags::MOUNT_ATTR_NOEXEC);

/// Attaches the detached tree `tree` onto the resolved directory `onto`
/// (both by fd, so nothing is looked up by name again). Returns the unique
/// id of the new mount. `what` names the step in errors.
pub(crate) fn attach(tree: &OwnedFd, onto: &OwnedFd, what: &str) -> Result<u64> {
    move_mount(tree, "", onto, "", MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH)
        .map_err(|e| kernel(&format!("move_mount({what})"), e))?;
    Ok(mount_id(tree.as_fd())?.0)
}

/// The mount table of the calling thread's mount namespace, read through the
/// daemon's procfs `host_proc` (never the namespace's own /proc, which the
/// workspace controls).
pub(crate) fn thread_mountinfo(host_proc: &OwnedFd) -> Result<String> {
    let fd = rustix::fs::openat(host_proc, "thread-self/mountinfo", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("open(/proc/thread-self/mountinfo)", e))?;
    read_to_string(fd, "read(/proc/thread-self/mountinfo)")
}

pub(crate) fn read_to_string(fd: OwnedFd, what: &str) -> Result<String> {
    let mut s = String::with_capacity(16 * 1024);
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).map_err(|e| Error::internal(what, e))?;
    Ok(s)
}

/// Whether `statmount(2)` reports mount propagation here (Linux 6.8+), probed once.
pub(crate) fn statmount_works() -> bool {
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
pub(crate) fn mounted_here(host_proc: &OwnedFd, id: u64) -> Result<bool> {
    if statmount_works() {
        return match sys::statmount_propagation(id) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(Error::internal("statmount(STATMOUNT_MNT_BASIC)", e)),
        };
    }
    let table = thread_mountinfo(host_proc)?;
    Ok(table.lines().any(|l| l.split(' ').next().and_then(|f| f.parse::<u64>().ok()) == Some(id)))
}

/// Whether statx reports unique (never reused) mount ids.
pub fn probe_mnt_id_unique() -> bool {
    rustix::fs::statx(CWD, "/", AtFlags::empty(), StatxFlags::from_bits_retain(STATX_MNT_ID_UNIQUE))
        .is_ok_and(|st| st.stx_mask & STATX_MNT_ID_UNIQUE != 0)
}

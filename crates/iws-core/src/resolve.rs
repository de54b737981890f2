//! Where a mount may land: a target path from a request checked, resolved
//! inside the requesting process's root with `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` to an `O_PATH` fd (so a later
//! swap of the path cannot redirect the mount), and refused when the caller
//! may not write it or a mount there would propagate.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::sched::CloneFlags;
use rustix::fs::{openat2, AtFlags, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;

use crate::authz::PinnedCaller;
use crate::error::{Error, ErrorKind, Reason, Result};
use crate::mountapi::kernel;
use crate::nsthread::NsThread;
use crate::pidns::MountTarget;
use crate::propagation::PropagationGuard;

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

/// Resolves `target` inside `root` (which must be in the calling thread's
/// mount namespace) to an `O_PATH` fd, refusing any symlink or magic link.
pub(crate) fn resolve_target(root: BorrowedFd<'_>, target: &str, missing: ErrorKind) -> Result<OwnedFd> {
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

/// On thread `t`: enters the checked mount namespace of `at` and resolves
/// `target` inside its root; refuses a directory the caller may not write and
/// one where a mount would propagate back into the daemon's namespace. The
/// O_PATH fd it returns stays valid across later setns calls.
pub(crate) fn checked_target(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}

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

/// Retries of a scoped lookup before its error is returned (as runc's
/// resolver, filepath-securejoin, bounds them: enough for spurious races, and
/// an attacker who keeps racing gets the error instead of a spinning thread).
const SCOPED_LOOKUP_RETRIES: u32 = 128;

/// `openat2` for a scoped lookup (`RESOLVE_IN_ROOT` or `RESOLVE_BENEATH`),
/// retried on the kernel's spurious refusals (see [`retry_scoped`]). Every
/// `openat2` of the crate goes through here.
pub(crate) fn openat2_scoped(
    dir: impl AsFd,
    path: &str,
    flags: OFlags,
    mode: Mode,
    resolve: ResolveFlags,
) -> rustix::io::Result<OwnedFd> {
    let dir = dir.as_fd();
    retry_scoped(resolve, || openat2(dir, path, flags, mode, resolve))
}

/// Runs `lookup` (an `openat2` with `resolve`) again, at most
/// [`SCOPED_LOOKUP_RETRIES`] times, while it fails the way a scoped lookup
/// fails when a rename or mount anywhere on the system races its walk of
/// `..`: EAGAIN, or EXDEV from the kernel's final check that the result lies
/// in the root (unless `RESOLVE_NO_XDEV` makes EXDEV a real answer). Any
/// other result, and the last failure, are returned as they are.
fn retry_scoped<T>(resolve: ResolveFlags, mut lookup: impl FnMut() -> rustix::io::Result<T>) -> rustix::io::Result<T> {
    let scoped = resolve.intersects(ResolveFlags::IN_ROOT | ResolveFlags::BENEATH);
    let xdev_races = scoped && !resolve.contains(ResolveFlags::NO_XDEV);
    let mut retries = 0;
    loop {
        match lookup() {
            Err(Errno::AGAIN) if scoped && retries < SCOPED_LOOKUP_RETRIES => {}
            Err(Errno::XDEV) if xdev_races && retries < SCOPED_LOOKUP_RETRIES => {}
            r => return r,
        }
        retries += 1;
    }
}

/// Resolves `target` inside `root` (which must be in the calling thread's
/// mount namespace) to an `O_PATH` fd, refusing any symlink or magic link.
pub(crate) fn resolve_target(root: BorrowedFd<'_>, target: &str, missing: ErrorKind) -> Result<OwnedFd> {
    let rel = target.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    openat2_scoped(
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
        Errno::AGAIN => Error::because(
            ErrorKind::Unavailable,
            Reason::Raced,
            format!(
                "target {target:?} kept changing while it was resolved (renames or mounts raced the lookup); try again"
            ),
        )
        .with_errno(e),
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
        check_writable(guard.host_proc(), who, fd.as_fd(), target)?;
    }
    guard.check(fd.as_fd(), target)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_lookups_retry_spurious_eagain_and_exdev_a_bounded_number_of_times() {
        let scoped = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS;
        // Fails `n` times with `e`, then succeeds; counts the calls.
        let flaky = |n: u32, e: Errno| {
            let mut calls = 0u32;
            let r = retry_scoped(scoped, || {
                calls += 1;
                if calls <= n {
                    Err(e)
                } else {
                    Ok(calls)
                }
            });
            (r, calls)
        };
        assert_eq!(flaky(0, Errno::AGAIN), (Ok(1), 1));
        assert_eq!(flaky(3, Errno::AGAIN), (Ok(4), 4));
        assert_eq!(flaky(5, Errno::XDEV), (Ok(6), 6));
        assert_eq!(
            flaky(SCOPED_LOOKUP_RETRIES, Errno::AGAIN),
            (Ok(SCOPED_LOOKUP_RETRIES + 1), SCOPED_LOOKUP_RETRIES + 1)
        );
        // A lookup that keeps racing fails after the bound, with its error.
        assert_eq!(flaky(u32::MAX, Errno::AGAIN), (Err(Errno::AGAIN), SCOPED_LOOKUP_RETRIES + 1));
        assert_eq!(flaky(u32::MAX, Errno::XDEV), (Err(Errno::XDEV), SCOPED_LOOKUP_RETRIES + 1));
        // Real answers are not retried.
        for e in [Errno::NOENT, Errno::LOOP, Errno::NOTDIR, Errno::ACCESS] {
            assert_eq!(flaky(u32::MAX, e), (Err(e), 1), "{e:?}");
        }
        // Unscoped lookups are not retried; with RESOLVE_NO_XDEV EXDEV is an answer.
        let once = |resolve: ResolveFlags, e: Errno| {
            let mut calls = 0;
            let r: rustix::io::Result<()> = retry_scoped(resolve, || {
                calls += 1;
                Err(e)
            });
            (r, calls)
        };
        assert_eq!(once(ResolveFlags::NO_SYMLINKS, Errno::AGAIN), (Err(Errno::AGAIN), 1));
        assert_eq!(once(ResolveFlags::BENEATH | ResolveFlags::NO_XDEV, Errno::XDEV), (Err(Errno::XDEV), 1));
        assert_eq!(
            once(ResolveFlags::BENEATH | ResolveFlags::NO_XDEV, Errno::AGAIN),
            (Err(Errno::AGAIN), SCOPED_LOOKUP_RETRIES + 1)
        );
    }

    #[test]
    fn scoped_openat2_resolves_for_real() {
        let dir = std::env::temp_dir().join(format!("iws-resolve-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        let root = rustix::fs::open(&dir, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_SYMLINKS;
        let r = openat2_scoped(&root, "a/b", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), how);
        let missing = openat2_scoped(&root, "a/c", OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), how).map(drop);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(missing, Err(Errno::NOENT));
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
}

//! Locked masks.
//!
//! Ring root owns its mount namespace: it may unmount or remount whatever is
//! mounted there unless the kernel has *locked* it. The kernel locks
//! (MNT_LOCKED on every mount of a tree, MNT_LOCK_READONLY/NOSUID/NODEV/
//! NOEXEC/ATIME on the flags each has) only the mounts that reach a mount
//! namespace owned by a less privileged user namespace by namespace copy or by
//! propagation (`lock_mnt_tree`, called where the propagated copy's parent
//! lies in a namespace whose owner differs from the mounting task's), never by
//! `move_mount`. A recursive clone of a locked tree keeps its submounts
//! locked, and only its root unlocked (`__do_loopback`). Hence, for every
//! proc and sysfs iwsd places:
//!
//! 1. a carrier P (a clone of the empty read-only tmpfs) is made shared, and
//!    R, a clone of P, is its peer;
//! 2. R is attached in the *lock namespace*, a mount namespace owned by a user
//!    namespace of iwsd's own (made once; nothing else lives there);
//! 3. back in the daemon's namespace (owned by the initial user namespace),
//!    the masked tree is attached onto P: the kernel propagates a copy onto
//!    R, across user namespaces, and locks it;
//! 4. in the lock namespace, that copy is cloned recursively (root unlocked,
//!    every mask and read-only part locked), then R is detached and P dropped;
//! 5. the clone is placed. Ring root can then unmount the whole proc (which
//!    reveals nothing) but no mask, and can make no locked flag writable.
//!
//! Verified on Linux 6.18 by the root tests (mount_root.rs, locked masks) and
//! the ava attack suite. The fallback strategy does the same with P attached
//! in a thread-private staging namespace instead of detached.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use nix::sched::CloneFlags;
use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{fsconfig_set_string, move_mount, open_tree, MountAttrFlags, MoveMountFlags, OpenTreeFlags};

use crate::error::{Error, Result};
use crate::masks::empty_dir_mask;
use crate::mount::MountStrategy;
use crate::mountapi::{detached, kernel, thread_mountinfo, NOSUID_NODEV_NOEXEC};
use crate::nsthread::{on_fresh_thread, private_staging, staging_dir, NsThread};
use crate::sys;

/// The lock namespace (see above).
pub(crate) struct LockNs {
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
pub(crate) fn lock_ns() -> Result<&'static LockNs> {
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
    let child =
        sys::spawn_lock_ns_child(tree.as_fd(), &cdir).map_err(|e| Error::internal("clone(lock namespace child)", e))?;
    let mntns = rustix::fs::open(
        format!("/proc/{}/ns/mnt", child.pid().as_raw()).as_str(),
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Error::internal("open(ns/mnt of lock namespace child)", e));
    child.finish();
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
        Ok(thread_mountinfo(&proc)?.lines().count())
    })
}

/// Steps 1-4 above: a copy of the detached tree `tree` whose submounts are
/// locked. Leaves the calling thread in the lock namespace.
pub(crate) fn lock_tree(t: &NsThread, l: &LockNs, tree: OwnedFd, strategy: MountStrategy) -> Result<OwnedFd> {
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
            (empty_dir_mask()?, l.home.try_clone().map_err(|e| Error::internal("dup(mnt ns)", e))?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_namespace_holds_nothing_but_its_own_tmpfs() {
        if crate::skip_unless_root("the_lock_namespace_holds_nothing_but_its_own_tmpfs") {
            return;
        }
        let l = lock_ns().unwrap();
        let proc =
            rustix::fs::open("/proc", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let table = on_fresh_thread(|t| {
            t.setns(l.mntns.as_fd(), CloneFlags::CLONE_NEWNS, "lock ns")?;
            thread_mountinfo(&proc)
        })
        .unwrap();
        // No copy of a host mount: it would keep the host's devices busy.
        assert_eq!(table.lines().count(), 1, "{table}");
        assert!(table.contains(" - tmpfs "), "{table}");
    }
}

//! What a masked proc or sysfs hides: the masks (defaults and the rule every
//! entry follows), the two sources every mask is cloned from (an empty
//! read-only tmpfs and `/dev/null`, made once at start: bounded, like the
//! user-namespace cache of marks), and attaching them to a detached tree
//! (or, on older kernels, in a thread-private staging namespace).

use std::os::fd::OwnedFd;
use std::sync::Mutex;

use rustix::fs::{AtFlags, FileType, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_set_flag, fsconfig_set_string, move_mount, open_tree, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use crate::error::{Error, Result};
use crate::mount::MountStrategy;
use crate::mountapi::{detached, kernel, NOSUID_NODEV_NOEXEC};
use crate::nsthread::{on_fresh_thread, private_staging};
use crate::sys;

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

/// A source every mask of one kind is cloned from, made once per process
/// (by the kernel probe at start): a mask is then one `open_tree(CLONE)`
/// instead of a new filesystem each time.
pub(crate) struct MaskSource {
    fd: Mutex<Option<OwnedFd>>,
    make: fn() -> Result<OwnedFd>,
}

impl MaskSource {
    const fn new(make: fn() -> Result<OwnedFd>) -> MaskSource {
        MaskSource { fd: Mutex::new(None), make }
    }

    /// A new detached clone of the source (made first if need be).
    pub(crate) fn cover(&self) -> Result<OwnedFd> {
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

pub(crate) static EMPTY_DIR: MaskSource = MaskSource::new(empty_dir);
pub(crate) static DEV_NULL: MaskSource = MaskSource::new(dev_null);

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
pub(crate) fn apply_masks(mnt: &OwnedFd, masks: &Masks) -> Result<()> {
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
pub(crate) fn apply_masks_staged(mnt: OwnedFd, masks: &Masks) -> Result<OwnedFd> {
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

pub(crate) fn masked(mnt: OwnedFd, masks: &Masks, strategy: MountStrategy) -> Result<OwnedFd> {
    match strategy {
        MountStrategy::Detached => apply_masks(&mnt, masks).map(|_| mnt),
        MountStrategy::Fallback => apply_masks_staged(mnt, masks),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

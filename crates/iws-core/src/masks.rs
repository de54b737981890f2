//! What a masked proc or sysfs hides: the masks (defaults and the rule every
//! entry follows), the two sources every mask is cloned from (an empty
//! read-only tmpfs and `/dev/null`, made once at start: bounded, like the
//! user-namespace cache of marks), and attaching them to a detached tree
//! (or, on older kernels, in a thread-private staging namespace).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Mutex;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_set_flag, fsconfig_set_string, move_mount, open_tree, MountAttrFlags, MoveMountFlags, OpenTreeFlags,
};

use crate::error::{Error, ErrorKind, Result};
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

/// proc entries hidden by default (directories by an empty read-only tmpfs,
/// files by `/dev/null`): what leaks the host's hardware, keys and timers.
/// The one list; the binding exposes it to the TypeScript config schema.
pub const DEFAULT_PROC_MASKED: &[&str] = &[
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
];

/// proc entries made read-only by default (kernel tunables and triggers).
pub const DEFAULT_PROC_READONLY: &[&str] = &["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// sysfs entries hidden by default (a sysfs mount is also read-only by
/// default, see `SysfsOptions`).
pub const DEFAULT_SYSFS_MASKED: &[&str] = &["firmware", "devices/virtual/powercap"];

/// Longest mask entry accepted, in bytes.
pub const MAX_MASK_ENTRY_BYTES: usize = 256;

/// The rule every mask entry follows: a plain relative path inside the
/// filesystem (no leading `/`, no empty, `.` or `..` part, no NUL), at most
/// [`MAX_MASK_ENTRY_BYTES`] long. The one check; the TypeScript config
/// validates entries by calling it through the binding.
pub fn check_mask_entry(entry: &str) -> Result<()> {
    if entry.len() > MAX_MASK_ENTRY_BYTES {
        return Err(Error::invalid(format!(
            "mask entry {:?}... is {} bytes long; give at most {MAX_MASK_ENTRY_BYTES}",
            entry.chars().take(32).collect::<String>(),
            entry.len()
        )));
    }
    let ok = !entry.is_empty()
        && !entry.starts_with('/')
        && !entry.contains('\0')
        && entry.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if !ok {
        return Err(Error::invalid(format!(
            "mask entry {entry:?} must be a relative path inside the filesystem without empty, '.' or '..' parts"
        )));
    }
    Ok(())
}

fn owned(entries: &[&str]) -> Vec<String> {
    entries.iter().map(|e| e.to_string()).collect()
}

impl Masks {
    /// The defaults for proc: [`DEFAULT_PROC_MASKED`], [`DEFAULT_PROC_READONLY`].
    pub fn proc_default() -> Masks {
        Masks { masked: owned(DEFAULT_PROC_MASKED), read_only: owned(DEFAULT_PROC_READONLY) }
    }

    /// The defaults for sysfs: [`DEFAULT_SYSFS_MASKED`].
    pub fn sysfs_default() -> Masks {
        Masks { masked: owned(DEFAULT_SYSFS_MASKED), read_only: vec![] }
    }

    /// Every entry must pass [`check_mask_entry`].
    pub fn validate(&self) -> Result<()> {
        self.masked.iter().chain(&self.read_only).try_for_each(|e| check_mask_entry(e))
    }
}

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

/// A new clone of the empty read-only tmpfs (a directory mask, or a carrier
/// for locking).
pub(crate) fn empty_dir_mask() -> Result<OwnedFd> {
    EMPTY_DIR.cover()
}

/// Makes both mask sources now (the kernel probe at start), so the first
/// mount neither pays for them nor can fail on them.
pub(crate) fn make_sources() -> Result<()> {
    for source in [&EMPTY_DIR, &DEV_NULL] {
        source.cover()?;
    }
    Ok(())
}

/// An empty tmpfs, read-only both as a mount and as a superblock (so no
/// container can remount it writable and pass data through the one instance
/// every directory mask shares), detached.
fn empty_dir() -> Result<OwnedFd> {
    with_inode_fallback(|nr_inodes| {
        detached(
            "tmpfs",
            |fs| {
                fsconfig_set_string(fs, "mode", "0555").map_err(|e| kernel("fsconfig(tmpfs mode)", e))?;
                fsconfig_set_string(fs, "size", "4k").map_err(|e| kernel("fsconfig(tmpfs size)", e))?;
                fsconfig_set_string(fs, "nr_inodes", nr_inodes).map_err(|e| kernel("fsconfig(tmpfs nr_inodes)", e))?;
                fsconfig_set_flag(fs, "ro").map_err(|e| kernel("fsconfig(tmpfs ro)", e))
            },
            NOSUID_NODEV_NOEXEC | MountAttrFlags::MOUNT_ATTR_RDONLY,
        )
    })
}

/// The `mount(2)` options of an empty directory mask (the staged fallback's
/// [`empty_dir`]) with `nr_inodes` inodes.
fn empty_dir_options(nr_inodes: &str) -> String {
    format!("size=4k,nr_inodes={nr_inodes},mode=0555")
}

/// Makes an empty tmpfs with `make(nr_inodes)`: one inode (its root, so not
/// even a mount on top of a mask can create anything in it), or two where the
/// kernel refuses one with EINVAL, as older kernels do (runc retries the
/// same way).
fn with_inode_fallback<T>(mut make: impl FnMut(&str) -> Result<T>) -> Result<T> {
    match make("1") {
        Err(e) if e.errno() == Some(libc::EINVAL) => make("2"),
        r => r,
    }
}

/// The daemon's `/dev/null`, detached.
///
/// Made private at once: a clone of a shared mount joins its peer group, and
/// under systemd the host's `/dev` is shared, so every file mask would be a
/// peer of it and a mount on top of a mask (locking forbids unmounting, not
/// mounting on top) would propagate onto the host's `/dev/null`.
fn dev_null() -> Result<OwnedFd> {
    file_mask_source("/dev/null")
}

/// A private detached clone of `path`, refused unless it is the null device
/// (checked on the clone itself, so a swap of the path cannot pass the check).
fn file_mask_source(path: &str) -> Result<OwnedFd> {
    let fd = open_tree(CWD, path, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
        .map_err(|e| kernel(&format!("open_tree({path}, CLONE)"), e))?;
    check_dev_null(fd.as_fd(), path)?;
    sys::mount_make_rprivate(&fd).map_err(|e| Error::internal("mount_setattr(/dev/null clone, MS_PRIVATE)", e))?;
    Ok(fd)
}

/// Refuses `fd` (opened as `path`) unless it is the null device, char 1:3.
/// File masks are binds of it: anything else (a regular file, another
/// device, planted where `/dev/null` should be) would show its content, or
/// take writes, through every masked entry. runc checks the same before it
/// masks paths (CVE-2025-31133).
fn check_dev_null(fd: BorrowedFd<'_>, path: &str) -> Result<()> {
    let st = rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::BASIC_STATS)
        .map_err(|e| kernel(&format!("statx({path})"), e))?;
    let kind = FileType::from_raw_mode(st.stx_mode as u32);
    if kind == FileType::CharacterDevice && (st.stx_rdev_major, st.stx_rdev_minor) == (1, 3) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::FailedPrecondition,
        format!(
            "{path} is not the null device (char 1:3) but a {kind:?} {}:{}; iwsd masks files with it, so restore it on the host (`mknod -m 666 /dev/null c 1 3`)",
            st.stx_rdev_major, st.stx_rdev_minor
        ),
    ))
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
fn apply_masks_staged(mnt: OwnedFd, masks: &Masks) -> Result<OwnedFd> {
    use nix::mount::{mount, MsFlags};
    on_fresh_thread(move |t| {
        let base = private_staging(t)?;
        let dir = format!("{base}/m");
        std::fs::create_dir(&dir).map_err(|e| Error::internal("mkdir(staging)", e))?;
        move_mount(&mnt, "", CWD, dir.as_str(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
            .map_err(|e| kernel("move_mount(into staging)", e))?;
        let null = rustix::fs::open("/dev/null", OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::internal("open(/dev/null)", e))?;
        check_dev_null(null.as_fd(), "/dev/null")?;
        let null_path = format!("/proc/thread-self/fd/{}", null.as_raw_fd());
        for name in &masks.masked {
            let p = format!("{dir}/{name}");
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if meta.is_dir() {
                with_inode_fallback(|nr_inodes| {
                    mount(
                        Some("none"),
                        p.as_str(),
                        Some("tmpfs"),
                        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                        Some(empty_dir_options(nr_inodes).as_str()),
                    )
                    .map_err(|e| Error::internal(&format!("mount(mask {name}) in staging"), e))
                })
            } else {
                // Bound from the checked fd, not by name again.
                mount(Some(null_path.as_str()), p.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| Error::internal(&format!("mount(mask {name}) in staging"), e))
            }?;
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
    fn the_null_device_alone_is_a_file_mask_source() {
        let open = |p: &str| rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap();
        check_dev_null(open("/dev/null").as_fd(), "/dev/null").unwrap();
        let e = check_dev_null(open("/dev/zero").as_fd(), "/dev/zero").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert!(e.message().contains("not the null device"), "{}", e.message());
        let file = std::env::temp_dir().join(format!("iws-not-null-{}", std::process::id()));
        std::fs::write(&file, "secret").unwrap();
        let r = check_dev_null(open(file.to_str().unwrap()).as_fd(), "fake");
        let dir = check_dev_null(open("/").as_fd(), "/");
        std::fs::remove_file(&file).unwrap();
        assert_eq!(r.unwrap_err().kind(), ErrorKind::FailedPrecondition);
        assert_eq!(dir.unwrap_err().kind(), ErrorKind::FailedPrecondition);
    }

    #[test]
    fn a_planted_dev_null_is_refused_as_mask_source() {
        if crate::skip_unless_root("a_planted_dev_null_is_refused_as_mask_source") {
            return;
        }
        // A regular file where the null device should be: cloning it works
        // (open_tree takes any file), the check on the clone refuses it.
        let file = std::env::temp_dir().join(format!("iws-planted-null-{}", std::process::id()));
        std::fs::write(&file, "host secret").unwrap();
        let r = file_mask_source(file.to_str().unwrap()).map(drop);
        std::fs::remove_file(&file).unwrap();
        let e = r.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e:?}");
        assert!(file_mask_source("/dev/zero").is_err());
        file_mask_source("/dev/null").unwrap();
    }

    #[test]
    fn an_empty_dir_falls_back_to_two_inodes_only_on_einval() {
        let einval = || Error::internal("fsconfig(tmpfs nr_inodes)", rustix::io::Errno::INVAL);
        let mut tried = vec![];
        let r = with_inode_fallback(|n| {
            tried.push(n.to_string());
            if n == "1" {
                Err(einval())
            } else {
                Ok(n.to_string())
            }
        });
        assert_eq!((r.unwrap(), tried), ("2".to_string(), vec!["1".to_string(), "2".to_string()]));
        let mut tried = vec![];
        let r = with_inode_fallback(|n| {
            tried.push(n.to_string());
            Ok(n.to_string())
        });
        assert_eq!((r.unwrap(), tried), ("1".to_string(), vec!["1".to_string()]));
        // Other errors are not retried, nor is EINVAL for two inodes.
        let mut calls = 0;
        let r: Result<()> = with_inode_fallback(|_| {
            calls += 1;
            Err(Error::internal("fsopen(tmpfs)", rustix::io::Errno::NOMEM))
        });
        assert_eq!((r.unwrap_err().errno(), calls), (Some(libc::ENOMEM), 1));
        let mut calls = 0;
        let r: Result<()> = with_inode_fallback(|_| {
            calls += 1;
            Err(einval())
        });
        assert_eq!((r.unwrap_err().errno(), calls), (Some(libc::EINVAL), 2));
        assert_eq!(empty_dir_options("2"), "size=4k,nr_inodes=2,mode=0555");
    }

    #[test]
    fn mask_entries_are_plain_relative_paths() {
        assert!(Masks::proc_default().validate().is_ok());
        assert!(Masks::sysfs_default().validate().is_ok());
        let long = "a".repeat(MAX_MASK_ENTRY_BYTES + 1);
        for bad in ["", "/kcore", "../x", "a/../b", "a//b", "./x", "x/", "a/.", "a\0b", long.as_str()] {
            let e = check_mask_entry(bad).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::InvalidArgument, "{bad:?}");
            let m = Masks { masked: vec![bad.into()], read_only: vec![] };
            assert!(m.validate().is_err(), "{bad:?}");
            let m = Masks { masked: vec![], read_only: vec![bad.into()] };
            assert!(m.validate().is_err(), "{bad:?}");
        }
        for good in
            ["kcore", "devices/virtual/powercap", "sysrq-trigger", "a..b", ".hidden", &"a".repeat(MAX_MASK_ENTRY_BYTES)]
        {
            assert!(check_mask_entry(good).is_ok(), "{good:?}");
        }
    }
}

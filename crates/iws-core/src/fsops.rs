//! The daemon's own filesystem work on trees a workspace can reach: the
//! workspace directory (bind-mounted at `/.workspace`, so container root can
//! rename, replace and create entries in it while the daemon works) and the
//! FUSE mark's directories (copy-ups land there).
//!
//! Nothing here follows a name the workspace can change: every step works on
//! a directory fd, opens children with `O_NOFOLLOW | O_DIRECTORY`, unlinks
//! relative to the fd it read the name from, and never crosses into another
//! mount (a mount point found inside is left alone and reported). Walks are
//! bounded in depth, entries and passes, so a hostile tree that keeps
//! changing under the walk makes it stop with a report, not loop.
//!
//! The workspace directory and its `mark/` are made immutable
//! (`FS_IMMUTABLE_FL`): without `CAP_LINUX_IMMUTABLE` (runc does not grant
//! it) container root can then neither create, rename nor delete entries
//! there, even through a read-write bind. The socket is put in place by a
//! rename from a daemon-only directory; the flag is cleared only for that
//! rename, and whatever appeared meanwhile is pruned.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{
    mkdirat, openat, renameat, statx, unlinkat, AtFlags, Dir, FileType, IFlags, Mode, OFlags, StatxFlags, CWD,
};
use rustix::io::Errno;

use crate::error::{Error, ErrorKind, Reason, Result};

/// How deep a removal descends before it gives up on a subtree.
pub const MAX_DEPTH: usize = 64;
/// How many directory entries one removal looks at, in all, at most.
pub const MAX_ENTRIES: u64 = 1_000_000;
/// How often a directory is re-read when entries keep appearing in it.
const MAX_PASSES: usize = 4;
/// How often the workspace directory is sealed again when entries appeared
/// in the window in which its flag was cleared.
const MAX_SEAL_ROUNDS: usize = 8;

/// The workspace directory's own entries that the daemon keeps.
pub const SOCKET_NAME: &str = "daemon.sock";

/// What a removal did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveOutcome {
    /// The tree is gone (or was never there).
    pub removed: bool,
    /// Entries looked at.
    pub entries: u64,
    /// What was left and why (for the operator's log), e.g. a mount point.
    pub problems: Vec<String>,
}

/// What preparing or sealing a workspace directory did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealOutcome {
    /// The filesystem supports `FS_IMMUTABLE_FL` and the directory (and its
    /// mark directory) carry it now.
    pub immutable: bool,
    /// Foreign entries removed (names, escaped).
    pub pruned: Vec<String>,
    /// What could not be removed, for the log.
    pub problems: Vec<String>,
}

fn fs_err(op: &str, e: Errno) -> Error {
    Error::internal(op, e)
}

/// A single path component: no `/`, not empty, `.` or `..`.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::invalid(format!("{name:?} is not a single file name")));
    }
    Ok(())
}

/// Opens a daemon-owned directory by path (never one a workspace can reach:
/// the state directory and its daemon-only children).
fn open_daemon_dir(path: &str) -> Result<OwnedFd> {
    if !path.starts_with('/') {
        return Err(Error::invalid(format!("{path:?} is not an absolute path")));
    }
    openat(CWD, path, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| fs_err(&format!("open({path})"), e))
}

/// Opens the directory `name` in `dir` without following a symlink.
fn open_child_dir(dir: BorrowedFd<'_>, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
}

/// The mount id of what `fd` refers to (unique id where the kernel has one).
fn mnt_of(fd: BorrowedFd<'_>) -> Result<u64> {
    crate::mountapi::mount_id(fd).map(|(id, _)| id)
}

/// Clears `FS_IMMUTABLE_FL` / `FS_APPEND_FL` on `fd` if set. Ok(false) when
/// the filesystem has no such flags.
fn clear_flags(fd: BorrowedFd<'_>) -> std::result::Result<bool, Errno> {
    match rustix::fs::ioctl_getflags(fd) {
        Ok(f) => {
            let locked = IFlags::IMMUTABLE | IFlags::APPEND;
            if f.intersects(locked) {
                rustix::fs::ioctl_setflags(fd, f - locked)?;
            }
            Ok(true)
        }
        Err(e) if unsupported(e) => Ok(false),
        Err(e) => Err(e),
    }
}

fn unsupported(e: Errno) -> bool {
    matches!(e, Errno::NOTTY | Errno::OPNOTSUPP | Errno::INVAL | Errno::NOSYS)
}

/// Sets (or clears) `FS_IMMUTABLE_FL` on the directory `fd`. Ok(false) when
/// the filesystem does not support it.
pub fn set_immutable(fd: BorrowedFd<'_>, on: bool) -> Result<bool> {
    let f = match rustix::fs::ioctl_getflags(fd) {
        Ok(f) => f,
        Err(e) if unsupported(e) => return Ok(false),
        Err(e) => return Err(fs_err("ioctl(FS_IOC_GETFLAGS)", e)),
    };
    let want = if on { f | IFlags::IMMUTABLE } else { f - IFlags::IMMUTABLE };
    if want != f {
        match rustix::fs::ioctl_setflags(fd, want) {
            Ok(()) => {}
            Err(e) if unsupported(e) => return Ok(false),
            Err(e) => return Err(fs_err("ioctl(FS_IOC_SETFLAGS, FS_IMMUTABLE_FL)", e)),
        }
    }
    Ok(true)
}

/// Names (escaped) for the log: workspace-chosen bytes never reach it raw.
fn shown(rel: &str, name: &OsStr) -> String {
    let n = name.as_bytes().escape_ascii().to_string();
    if rel.is_empty() {
        n
    } else {
        format!("{rel}/{n}")
    }
}

struct Walk {
    mnt: u64,
    entries: u64,
    problems: Vec<String>,
}

impl Walk {
    fn budget(&mut self) -> bool {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            if self.entries == MAX_ENTRIES + 1 {
                self.problems.push(format!("more than {MAX_ENTRIES} entries; removal stopped"));
            }
            return false;
        }
        true
    }

    /// The names in `dir` (without `.` and `..`), at most what the budget allows.
    fn names(&mut self, dir: BorrowedFd<'_>) -> std::result::Result<Vec<std::ffi::OsString>, Errno> {
        let mut out = Vec::new();
        for e in Dir::read_from(dir)? {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n == b"." || n == b".." {
                continue;
            }
            out.push(OsStr::from_bytes(n).to_os_string());
            if out.len() as u64 + self.entries > MAX_ENTRIES {
                break;
            }
        }
        Ok(out)
    }

    /// Removes the entry `name` of `dir`, whatever it is, without following
    /// it. Ok(true) when it is gone.
    fn remove_entry(&mut self, dir: BorrowedFd<'_>, name: &OsStr, rel: &str, depth: usize) -> bool {
        if !self.budget() {
            return false;
        }
        // A directory of ours may be immutable, and unlink then says EPERM,
        // not EISDIR: look first (what is seen may change; every step below
        // copes with a different type than expected).
        let is_dir = match statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
            Ok(st) => FileType::from_raw_mode(st.stx_mode as _) == FileType::Directory,
            Err(Errno::NOENT) => return true,
            Err(e) => {
                self.problems.push(format!("{}: statx: {e}", shown(rel, name)));
                return false;
            }
        };
        if !is_dir {
            match unlinkat(dir, name, AtFlags::empty()) {
                Ok(()) | Err(Errno::NOENT) => return true,
                Err(Errno::ISDIR) => {}
                Err(e) => {
                    self.problems.push(format!("{}: unlink: {e}", shown(rel, name)));
                    return false;
                }
            }
        }
        // A directory (at the time of the unlink; it may be a symlink now).
        let child = match open_child_dir(dir, name) {
            Ok(fd) => fd,
            // Replaced meanwhile: the caller's next pass sees what is there.
            Err(Errno::LOOP | Errno::NOTDIR | Errno::NOENT) => return false,
            Err(e) => {
                self.problems.push(format!("{}: open: {e}", shown(rel, name)));
                return false;
            }
        };
        match mnt_of(child.as_fd()) {
            Ok(m) if m == self.mnt => {}
            Ok(_) => {
                self.problems.push(format!("{}: a mount point; left alone", shown(rel, name)));
                return false;
            }
            Err(e) => {
                self.problems.push(format!("{}: {}", shown(rel, name), e.detail().unwrap_or(e.message())));
                return false;
            }
        }
        if depth >= MAX_DEPTH {
            self.problems.push(format!("{}: deeper than {MAX_DEPTH} levels; left alone", shown(rel, name)));
            return false;
        }
        if let Err(e) = clear_flags(child.as_fd()) {
            self.problems.push(format!("{}: clearing flags: {e}", shown(rel, name)));
        }
        let sub = shown(rel, name);
        if !self.empty(child.as_fd(), &sub, depth + 1) {
            return false;
        }
        drop(child);
        match unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => true,
            // Refilled or replaced meanwhile: the caller's next pass.
            Err(Errno::NOTEMPTY | Errno::EXIST | Errno::NOTDIR) => false,
            Err(e) => {
                self.problems.push(format!("{sub}: rmdir: {e}"));
                false
            }
        }
    }

    /// Removes everything in `dir`. True when it was seen empty.
    fn empty(&mut self, dir: BorrowedFd<'_>, rel: &str, depth: usize) -> bool {
        self.empty_except(dir, rel, depth, &|_, _| false)
    }

    /// Removes every entry of `dir` that `keep(dir, name)` does not keep.
    /// True when only kept entries were seen in a last read.
    fn empty_except(
        &mut self,
        dir: BorrowedFd<'_>,
        rel: &str,
        depth: usize,
        keep: &dyn Fn(BorrowedFd<'_>, &OsStr) -> bool,
    ) -> bool {
        for _ in 0..MAX_PASSES {
            let names = match self.names(dir) {
                Ok(n) => n,
                Err(e) => {
                    self.problems.push(format!("{}: readdir: {e}", if rel.is_empty() { "." } else { rel }));
                    return false;
                }
            };
            let foreign: Vec<_> = names.into_iter().filter(|n| !keep(dir, n)).collect();
            if foreign.is_empty() {
                return true;
            }
            // An entry that cannot go (a mount point, too deep, an error)
            // makes this directory unremovable; one that changed under us
            // (replaced, refilled) is for the next pass.
            let before = self.problems.len();
            for n in &foreign {
                self.remove_entry(dir, n, rel, depth);
                if self.entries > MAX_ENTRIES {
                    return false;
                }
            }
            if self.problems.len() > before {
                return false;
            }
        }
        let left = self.names(dir).map(|n| n.into_iter().filter(|n| !keep(dir, n)).count()).unwrap_or(1);
        if left > 0 {
            self.problems.push(format!(
                "{}: entries keep appearing; gave up after {MAX_PASSES} passes",
                if rel.is_empty() { "." } else { rel }
            ));
        }
        left == 0
    }
}

/// Removes `parent/name` and everything below it by file descriptor: never
/// following a symlink, never crossing into another mount, bounded in depth
/// and entries. `parent` is a daemon-owned directory (not reachable by a
/// workspace); `name` is one component. Immutable or append-only flags (the
/// daemon's own) are cleared on the way. A missing `name` is removed already.
pub fn remove_tree(parent: &str, name: &str) -> Result<RemoveOutcome> {
    check_name(name)?;
    if !parent.starts_with('/') {
        return Err(Error::invalid(format!("{parent:?} is not an absolute path")));
    }
    let p = match openat(CWD, parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(p) => p,
        // No parent, no tree.
        Err(Errno::NOENT) => return Ok(RemoveOutcome { removed: true, entries: 0, problems: vec![] }),
        Err(e) => return Err(fs_err(&format!("open({parent})"), e)),
    };
    let mut w = Walk { mnt: mnt_of(p.as_fd())?, entries: 0, problems: Vec::new() };
    let n = OsStr::new(name);
    let mut removed = false;
    for _ in 0..MAX_PASSES {
        match statx(&p, n, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE) {
            Err(Errno::NOENT) => {
                removed = true;
                break;
            }
            Err(e) => return Err(fs_err(&format!("statx({parent}/{name})"), e)),
            Ok(_) => {}
        }
        // The top directory is the daemon's: its own mount point (the
        // operator's) is never removed either.
        if w.remove_entry(p.as_fd(), n, "", 0) {
            removed = true;
            break;
        }
        if !w.problems.is_empty() || w.entries > MAX_ENTRIES {
            break;
        }
    }
    let entries = w.entries;
    Ok(RemoveOutcome { removed, entries, problems: w.problems })
}

/// Empties `parent/name` as [`remove_tree`] removes it (by file descriptor,
/// no symlink followed, no mount crossed, bounded) but keeps the directory
/// itself, its flags cleared: for a workspace directory that the runtime
/// made and binds into the container (the bind-mount source of this and the
/// next container of the workspace). A missing `name` is empty already; a
/// symlink or file at `name` is FAILED_PRECONDITION and left; a mount point
/// at `name` is left alone and reported.
pub fn empty_tree(parent: &str, name: &str) -> Result<RemoveOutcome> {
    check_name(name)?;
    if !parent.starts_with('/') {
        return Err(Error::invalid(format!("{parent:?} is not an absolute path")));
    }
    let gone = RemoveOutcome { removed: true, entries: 0, problems: vec![] };
    let p = match openat(CWD, parent, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()) {
        Ok(p) => p,
        Err(Errno::NOENT) => return Ok(gone),
        Err(e) => return Err(fs_err(&format!("open({parent})"), e)),
    };
    let mut w = Walk { mnt: mnt_of(p.as_fd())?, entries: 0, problems: Vec::new() };
    let d = match open_child_dir(p.as_fd(), OsStr::new(name)) {
        Ok(d) => d,
        Err(Errno::NOENT) => return Ok(gone),
        Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("{parent}/{name} is not a directory; left alone"),
            )
            .with_reason(if e == Errno::LOOP { Reason::Symlink } else { Reason::NotADirectory })
            .with_detail(format!("open({parent}/{name}, O_NOFOLLOW|O_DIRECTORY): {e}")))
        }
        Err(e) => return Err(fs_err(&format!("open({parent}/{name})"), e)),
    };
    if mnt_of(d.as_fd())? != w.mnt {
        return Ok(RemoveOutcome {
            removed: false,
            entries: 0,
            problems: vec![format!("{name}: a mount point; left alone")],
        });
    }
    if let Err(e) = clear_flags(d.as_fd()) {
        w.problems.push(format!("{name}: clearing flags: {e}"));
    }
    let removed = w.empty(d.as_fd(), "", 1);
    Ok(RemoveOutcome { removed, entries: w.entries, problems: w.problems })
}

/// Whether `name` in `dir` is a kept entry of a workspace directory: the
/// socket (a socket only) or the mark directory (a directory only).
fn kept(dir: BorrowedFd<'_>, name: &OsStr, mark: Option<&str>) -> bool {
    let want = if name.as_bytes() == SOCKET_NAME.as_bytes() {
        FileType::Socket
    } else if mark.is_some_and(|m| name.as_bytes() == m.as_bytes()) {
        FileType::Directory
    } else {
        return false;
    };
    statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::TYPE)
        .is_ok_and(|st| FileType::from_raw_mode(st.stx_mode as _) == want)
}

/// Opens the workspace directory `parent/name` (creating it 0755 if missing),
/// never through a symlink.
fn open_workspace_dir(parent: &str, name: &str, create: bool) -> Result<(OwnedFd, OwnedFd)> {
    check_name(name)?;
    let p = open_daemon_dir(parent)?;
    if create {
        match mkdirat(&p, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(fs_err(&format!("mkdirat({parent}, {name})"), e)),
        }
    }
    let d = open_child_dir(p.as_fd(), OsStr::new(name)).map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => Error::new(
            ErrorKind::FailedPrecondition,
            format!("the workspace directory of {name} is not a directory (a symlink or file); remove it"),
        )
        .with_reason(if e == Errno::LOOP { Reason::Symlink } else { Reason::NotADirectory })
        .with_detail(format!("open({parent}/{name}, O_NOFOLLOW|O_DIRECTORY): {e}")),
        Errno::NOENT => Error::because(
            ErrorKind::NotFound,
            Reason::Missing,
            format!("workspace directory of {name} does not exist"),
        ),
        e => fs_err(&format!("open({parent}/{name})"), e),
    })?;
    Ok((p, d))
}

/// Clears the workspace directory's flag, prunes everything but the kept
/// entries, sets the flag again; repeated (bounded) while entries appear in
/// the window the flag was off. Ends with the flag set where supported.
/// `open`: the flag is off now (the caller's window): prune in it first.
fn seal(ws: BorrowedFd<'_>, mark: Option<&str>, out: &mut SealOutcome, mut open: bool) -> Result<()> {
    let mut w = Walk { mnt: mnt_of(ws)?, entries: 0, problems: Vec::new() };
    if !open {
        out.immutable = set_immutable(ws, true)?;
    }
    for round in 0..MAX_SEAL_ROUNDS {
        let names = w.names(ws).map_err(|e| fs_err("readdir(workspace dir)", e))?;
        let foreign: Vec<_> = names.into_iter().filter(|n| !kept(ws, n, mark)).collect();
        if !open && foreign.is_empty() {
            break;
        }
        if !open && round + 1 == MAX_SEAL_ROUNDS {
            for n in &foreign {
                w.problems.push(format!("{}: appeared again in every window; left (immutable dir)", shown("", n)));
            }
            break;
        }
        if !open {
            set_immutable(ws, false)?;
        }
        for n in &foreign {
            if w.remove_entry(ws, n, "", 0) {
                out.pruned.push(shown("", n));
            }
        }
        // Flag on again; the next round checks under it.
        out.immutable = set_immutable(ws, true)?;
        open = false;
    }
    out.problems.append(&mut w.problems);
    Ok(())
}

/// Prepares the workspace directory `parent/name` for a registration:
/// creates it if missing (never through a symlink), makes sure `mark` (when
/// given) is an empty directory of the daemon's, removes every other entry
/// but a socket at `daemon.sock`, and makes the directory and its mark
/// immutable where the filesystem supports it.
pub fn prepare_workspace_dir(parent: &str, name: &str, mark: Option<&str>) -> Result<SealOutcome> {
    if let Some(m) = mark {
        check_name(m)?;
        if m == SOCKET_NAME {
            return Err(Error::invalid(format!("the mark cannot be named {SOCKET_NAME}")));
        }
    }
    let (_p, ws) = open_workspace_dir(parent, name, true)?;
    let mut out = SealOutcome::default();
    if let Some(m) = mark {
        let mut w = Walk { mnt: mnt_of(ws.as_fd())?, entries: 0, problems: Vec::new() };
        let mn = OsStr::new(m);
        // The directory's flag comes off only when the mark must be made
        // (first registration, or something else is at its name).
        if !kept(ws.as_fd(), mn, mark) {
            set_immutable(ws.as_fd(), false)?;
            w.remove_entry(ws.as_fd(), mn, "", 0);
            match mkdirat(&ws, m, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(fs_err(&format!("mkdirat(workspace dir, {m})"), e)),
            }
        }
        let md = open_child_dir(ws.as_fd(), mn).map_err(|e| {
            Error::new(
                ErrorKind::FailedPrecondition,
                format!("the mark directory {m} of workspace {name} cannot be made"),
            )
            .with_reason(Reason::NotADirectory)
            .with_detail(format!("open({m}, O_NOFOLLOW|O_DIRECTORY): {e}"))
        })?;
        if let Err(e) = clear_flags(md.as_fd()) {
            return Err(fs_err("ioctl(mark, FS_IOC_SETFLAGS)", e));
        }
        // A mark directory on the host holds nothing: what the workspace put
        // there goes (a mount made on it in the container's namespace is not
        // in the daemon's and is not touched).
        w.empty(md.as_fd(), m, 1);
        set_immutable(md.as_fd(), true)?;
        out.problems.append(&mut w.problems);
    }
    seal(ws.as_fd(), mark, &mut out, false)?;
    Ok(out)
}

/// Puts the socket `src_dir/src_name` (bound and given its mode in a
/// daemon-only directory on the same filesystem) in place as
/// `parent/name/daemon.sock`: clears the workspace directory's flag, renames
/// over whatever is there (a planted directory is removed first), sets the
/// flag, and prunes what appeared in the window.
pub fn install_socket(
    src_dir: &str,
    src_name: &str,
    parent: &str,
    name: &str,
    mark: Option<&str>,
) -> Result<SealOutcome> {
    check_name(src_name)?;
    let src = open_daemon_dir(src_dir)?;
    let (_p, ws) = open_workspace_dir(parent, name, false)?;
    let ours = ino(src.as_fd(), OsStr::new(src_name)).map_err(|e| fs_err("statx(socket)", e))?;
    let mut out = SealOutcome::default();
    // `src_name` stays as the daemon's own link to the socket inode until the
    // end: each attempt renames a fresh hard link of it, so one that the
    // workspace replaced in the window can be made again.
    let link = format!("{src_name}.link");
    let mut result = Ok(());
    for _ in 0..MAX_SEAL_ROUNDS {
        let _ = unlinkat(&src, link.as_str(), AtFlags::empty());
        if let Err(e) = rustix::fs::linkat(&src, src_name, &src, link.as_str(), AtFlags::empty()) {
            result = Err(fs_err("linkat(socket)", e));
            break;
        }
        if let Err(e) = place(src.as_fd(), &link, ws.as_fd(), name, &mut out) {
            result = Err(e);
            break;
        }
        // Still in place()'s window: foreign entries go before the flag is
        // set again, so the window is one, not two.
        seal(ws.as_fd(), mark, &mut out, true)?;
        if ino(ws.as_fd(), OsStr::new(SOCKET_NAME)).ok() == Some(ours) {
            result = Ok(());
            break;
        }
        result = Err(Error::because(
            ErrorKind::Unavailable,
            Reason::Raced,
            format!("could not put the socket of workspace {name} in place: {SOCKET_NAME} keeps being replaced"),
        ));
    }
    let _ = unlinkat(&src, link.as_str(), AtFlags::empty());
    let _ = unlinkat(&src, src_name, AtFlags::empty());
    result.map(|()| out)
}

/// (dev, ino) of `name` in `dir`, not following a symlink.
fn ino(dir: BorrowedFd<'_>, name: &OsStr) -> std::result::Result<(u32, u32, u64), Errno> {
    let st = statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::INO)?;
    Ok((st.stx_dev_major, st.stx_dev_minor, st.stx_ino))
}

/// One attempt: flag off, rename `src/link` over `ws/daemon.sock` (a planted
/// directory there is removed first); the flag stays off for `seal`.
fn place(src: BorrowedFd<'_>, link: &str, ws: BorrowedFd<'_>, name: &str, out: &mut SealOutcome) -> Result<()> {
    set_immutable(ws, false)?;
    let mut renamed = false;
    for _ in 0..MAX_PASSES {
        match renameat(src, link, ws, SOCKET_NAME) {
            Ok(()) => {
                renamed = true;
                break;
            }
            // A directory planted at daemon.sock: rename never replaces one
            // with a socket. Remove it (fd-based) and try again.
            Err(Errno::ISDIR | Errno::NOTEMPTY | Errno::EXIST) => {
                let mut w = Walk { mnt: mnt_of(ws)?, entries: 0, problems: Vec::new() };
                w.remove_entry(ws, OsStr::new(SOCKET_NAME), "", 0);
                out.problems.append(&mut w.problems);
            }
            Err(Errno::XDEV) => {
                let _ = set_immutable(ws, true);
                return Err(Error::because(
                    ErrorKind::FailedPrecondition,
                    Reason::KernelRefused,
                    "the workspace directory is on another filesystem or mount than the state directory's tmp/",
                ));
            }
            Err(e) => {
                let _ = set_immutable(ws, true);
                return Err(fs_err("renameat(socket, workspace dir)", e));
            }
        }
    }
    if !renamed {
        set_immutable(ws, true)?;
        return Err(Error::because(
            ErrorKind::Unavailable,
            Reason::Raced,
            format!("could not put the socket of workspace {name} in place: a directory keeps being planted at {SOCKET_NAME}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::{Path, PathBuf};

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            // Clear our own flags first so cleanup works after a failure.
            let _ = std::process::Command::new("chattr").arg("-R").arg("-i").arg(&self.0).output();
            let _ = fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("iws-fsops-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
    fn s(p: &Path) -> &str {
        p.to_str().unwrap()
    }
    /// True as root; else the test `name` says it is skipped (for `why`),
    /// and fails under IWSD_REQUIRE_ROOT=1 (as tests/common's root_or_skip).
    fn root_or_skip(name: &str, why: &str) -> bool {
        if rustix::process::geteuid().is_root() {
            return true;
        }
        assert_ne!(std::env::var("IWSD_REQUIRE_ROOT").as_deref(), Ok("1"), "{name} needs root ({why})");
        eprintln!("SKIPPED {name}: needs root ({why})");
        false
    }

    #[test]
    fn names_must_be_one_component() {
        for bad in ["", ".", "..", "a/b", "/x"] {
            assert_eq!(remove_tree("/tmp", bad).unwrap_err().kind(), ErrorKind::InvalidArgument, "{bad:?}");
        }
        assert_eq!(remove_tree("relative", "x").unwrap_err().kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn removes_a_tree_and_reports_a_missing_one_as_removed() {
        let t = tmp("tree");
        let ws = t.0.join("ws");
        fs::create_dir_all(ws.join("a/b/c")).unwrap();
        fs::write(ws.join("a/b/c/f"), "x").unwrap();
        fs::write(ws.join("top"), "x").unwrap();
        let r = remove_tree(s(&t.0), "ws").unwrap();
        assert!(r.removed, "{r:?}");
        assert!(r.problems.is_empty());
        assert!(!ws.exists());
        assert_eq!(remove_tree(s(&t.0), "ws").unwrap(), RemoveOutcome { removed: true, entries: 0, problems: vec![] });
    }

    #[test]
    fn empty_tree_keeps_the_directory_and_follows_no_link() {
        let t = tmp("empty");
        let outside = t.0.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("canary"), "x").unwrap();
        let ws = t.0.join("ws");
        fs::create_dir_all(ws.join("mark/deep")).unwrap();
        fs::write(ws.join("mark/deep/f"), "x").unwrap();
        symlink(&outside, ws.join("link")).unwrap();
        let r = empty_tree(s(&t.0), "ws").unwrap();
        assert!(r.removed && r.problems.is_empty(), "{r:?}");
        assert!(ws.is_dir());
        assert_eq!(fs::read_dir(&ws).unwrap().count(), 0);
        assert!(outside.join("canary").exists());
        // Missing: empty already. A symlink at the name: refused, not followed.
        assert!(empty_tree(s(&t.0), "nothing").unwrap().removed);
        symlink(&outside, t.0.join("toplink")).unwrap();
        assert_eq!(empty_tree(s(&t.0), "toplink").unwrap_err().kind(), ErrorKind::FailedPrecondition);
        assert!(outside.join("canary").exists());
    }

    #[test]
    fn symlinks_are_removed_never_followed() {
        let t = tmp("links");
        let outside = t.0.join("outside");
        fs::create_dir(&outside).unwrap();
        for i in 0..10 {
            fs::write(outside.join(format!("f{i}")), "canary").unwrap();
        }
        let ws = t.0.join("ws");
        fs::create_dir_all(ws.join("sub")).unwrap();
        symlink(&outside, ws.join("link")).unwrap();
        symlink(&outside, ws.join("sub/link")).unwrap();
        // The top itself a symlink: removed as a link.
        symlink(&outside, t.0.join("toplink")).unwrap();
        assert!(remove_tree(s(&t.0), "ws").unwrap().removed);
        assert!(remove_tree(s(&t.0), "toplink").unwrap().removed);
        assert!(!t.0.join("toplink").exists() && fs::symlink_metadata(t.0.join("toplink")).is_err());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 10);
    }

    #[test]
    fn depth_is_bounded() {
        let t = tmp("deep");
        let mut p = t.0.join("ws");
        for _ in 0..(MAX_DEPTH + 3) {
            p = p.join("d");
        }
        fs::create_dir_all(&p).unwrap();
        let r = remove_tree(s(&t.0), "ws").unwrap();
        assert!(!r.removed);
        assert!(r.problems.iter().any(|p| p.contains("deeper than")), "{r:?}");
    }

    #[test]
    fn a_mount_point_inside_is_not_crossed() {
        if !root_or_skip("a_mount_point_inside_is_not_crossed", "mount") {
            return;
        }
        let t = tmp("mnt");
        let ws = t.0.join("ws");
        let m = ws.join("sub/mnt");
        fs::create_dir_all(&m).unwrap();
        fs::write(ws.join("sub/other"), "x").unwrap();
        // A private mount namespace of a child process: nothing reaches the
        // host's mount table, and the mount ends with the child.
        let script = format!(
            "mount -t tmpfs iws-test {m} && echo canary > {m}/canary && {exe} --exact fsops::tests::remove_in_child --nocapture --ignored",
            m = m.display(),
            exe = std::env::current_exe().unwrap().display()
        );
        let st = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env("IWS_FSOPS_CHILD", &t.0)
            .status()
            .unwrap();
        assert!(st.success());
    }

    /// Run by `a_mount_point_inside_is_not_crossed` inside its mount namespace.
    #[test]
    #[ignore]
    fn remove_in_child() {
        let Some(base) = std::env::var_os("IWS_FSOPS_CHILD") else { return };
        let base = PathBuf::from(base);
        let r = remove_tree(s(&base), "ws").unwrap();
        assert!(!r.removed, "{r:?}");
        assert!(r.problems.iter().any(|p| p == "ws/sub/mnt: a mount point; left alone"), "{r:?}");
        assert_eq!(fs::read_to_string(base.join("ws/sub/mnt/canary")).unwrap(), "canary\n");
        assert!(!base.join("ws/sub/other").exists(), "the rest is removed");
    }

    #[test]
    fn prepare_creates_mark_prunes_foreign_entries_and_seals() {
        if !root_or_skip("prepare_creates_mark_prunes_foreign_entries_and_seals", "FS_IMMUTABLE_FL") {
            return;
        }
        let t = tmp("prep");
        let ws = t.0.join("ws");
        fs::create_dir_all(ws.join("junk/deeper")).unwrap();
        fs::write(ws.join("file"), "x").unwrap();
        fs::write(ws.join("daemon.sock"), "not a socket").unwrap();
        let outside = t.0.join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("canary"), "c").unwrap();
        symlink(&outside, ws.join("mark")).unwrap();
        let r = prepare_workspace_dir(s(&t.0), "ws", Some("mark")).unwrap();
        assert!(r.problems.is_empty(), "{r:?}");
        let mut names: Vec<_> = fs::read_dir(&ws).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names, vec![std::ffi::OsString::from("mark")]);
        assert!(fs::symlink_metadata(ws.join("mark")).unwrap().is_dir());
        assert!(outside.join("canary").exists());
        if r.immutable {
            let e = fs::write(ws.join("new"), "x").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM));
            let e = fs::create_dir(ws.join("mark/x")).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        }
        // Removal clears the flags itself.
        let rm = remove_tree(s(&t.0), "ws").unwrap();
        assert!(rm.removed, "{rm:?}");
    }

    #[test]
    fn install_replaces_a_planted_directory_and_never_follows_a_link() {
        if !root_or_skip("install_replaces_a_planted_directory_and_never_follows_a_link", "FS_IMMUTABLE_FL") {
            return;
        }
        let t = tmp("inst");
        let tmpd = t.0.join("tmp");
        fs::create_dir(&tmpd).unwrap();
        let ws = t.0.join("ws");
        fs::create_dir(&ws).unwrap();
        let canary = t.0.join("canary");
        fs::write(&canary, "c").unwrap();
        fs::set_permissions(&canary, fs::Permissions::from_mode(0o600)).unwrap();
        prepare_workspace_dir(s(&t.0), "ws", Some("mark")).unwrap();
        for planted in ["dir", "link", "file", "fifo"] {
            set_immutable(open_daemon_dir(s(&ws)).unwrap().as_fd(), false).unwrap();
            let _ = remove_tree(s(&ws), SOCKET_NAME);
            match planted {
                "dir" => {
                    fs::create_dir_all(ws.join("daemon.sock/sub")).unwrap();
                    fs::write(ws.join("daemon.sock/sub/f"), "x").unwrap();
                }
                "link" => symlink(&canary, ws.join("daemon.sock")).unwrap(),
                "fifo" => nix::unistd::mkfifo(&ws.join("daemon.sock"), nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .unwrap(),
                _ => fs::write(ws.join("daemon.sock"), "x").unwrap(),
            }
            fs::write(ws.join("foreign"), "x").unwrap();
            let l = std::os::unix::net::UnixListener::bind(tmpd.join("s.sock")).unwrap();
            let r = install_socket(s(&tmpd), "s.sock", s(&t.0), "ws", Some("mark")).unwrap();
            assert!(r.problems.is_empty(), "{planted}: {r:?}");
            assert_eq!(r.pruned, vec!["foreign".to_string()], "{planted}");
            assert!(fs::symlink_metadata(ws.join("daemon.sock")).unwrap().file_type().is_socket_like());
            std::os::unix::net::UnixStream::connect(ws.join("daemon.sock")).unwrap();
            drop(l);
        }
        assert_eq!(fs::metadata(&canary).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(remove_tree(s(&t.0), "ws").unwrap().removed);
    }

    trait SocketLike {
        fn is_socket_like(&self) -> bool;
    }
    impl SocketLike for fs::FileType {
        fn is_socket_like(&self) -> bool {
            use std::os::unix::fs::FileTypeExt;
            self.is_socket()
        }
    }
}

//! ID-shifted views of a container's root filesystem ("marks") for
//! PrepareForUserNS, and their removal for Teardown.
//!
//! Threat model: the container's user controls the mark path (a symlink
//! there must not send a mount elsewhere) and everything inside the
//! container's root; the shift mapping comes from the workspace's policy,
//! never from the request. Everything happens inside the container's mount
//! namespace, from throwaway threads; nothing is mounted in the host's.
//!
//! Methods:
//! * `Idmapped`: a non-recursive clone of the container's root mount with
//!   `MOUNT_ATTR_IDMAP` from a user namespace holding the shift mapping.
//! * `Fuse`: the host's fuse-overlayfs, started in a private mount namespace
//!   of its own with the container's root as lower dir; its mount is cloned
//!   from there and moved to the mark. iwsd supervises the process.
//! * `Shiftfs`: only where the kernel lists shiftfs.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sched::CloneFlags;
use rustix::fs::{mkdirat, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;
use rustix::mount::{open_tree, OpenTreeFlags};

use crate::error::{Error, ErrorKind, Reason, Result};
use crate::idmap::{self, IdMapping};
use crate::mountapi::{attach, detached, kernel};
use crate::nsthread::{on_fresh_thread, NsThread};
use crate::pidns::Container;
use crate::propagation::PropagationGuard;
use crate::resolve::check_target;
use crate::resolve::openat2_scoped;
use crate::sys;

/// How the shift is established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftMethod {
    Idmapped,
    Fuse,
    Shiftfs,
}

impl ShiftMethod {
    pub fn parse(s: &str) -> Result<ShiftMethod> {
        match s {
            "idmapped" => Ok(ShiftMethod::Idmapped),
            "fuse" => Ok(ShiftMethod::Fuse),
            "shiftfs" => Ok(ShiftMethod::Shiftfs),
            _ => Err(Error::invalid(format!("unknown shift method {s:?}; use idmapped, fuse or shiftfs"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ShiftMethod::Idmapped => "idmapped",
            ShiftMethod::Fuse => "fuse",
            ShiftMethod::Shiftfs => "shiftfs",
        }
    }
}

/// A mark that was mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub method: ShiftMethod,
    /// Unique id of the mount at the mark path.
    pub mount_id: u64,
    /// PID of the supervised fuse-overlayfs (Fuse only).
    pub fuse_pid: Option<i32>,
}

// ---- user namespaces for mappings --------------------------------------------

/// User namespaces holding a mapping, shared by every workspace with the same
/// shift mapping, reference-counted by [`Mark`]s that use them. One released
/// by its last mark stays for [`USERNS_GRACE_NS`] (at most [`USERNS_IDLE_MAX`]
/// of them), so a workspace cycling its mark, or workspaces starting one
/// after another with the same mapping, don't create it again.
///
/// Holding an idle one is harmless: its fd never leaves the daemon (CLOEXEC,
/// passed to no child, only to `mount_setattr`), no process is in it (its
/// only member exited right after the maps were written), so nobody holds a
/// capability in it or can enter it; its maps are exactly the ranges the
/// policy allowed for the mapping it is keyed by, so a mark made with it is
/// the same as one made with a fresh namespace; and the number kept is
/// bounded (the oldest idle one goes first).
type UsernsCache = HashMap<String, CachedUserns>;
static USERNS: Mutex<Option<UsernsCache>> = Mutex::new(None);

struct CachedUserns {
    fd: Arc<OwnedFd>,
    /// Marks using it.
    refs: usize,
    /// CLOCK_BOOTTIME ns of its last release, while `refs == 0`.
    idle_since: u64,
}

/// How long a user namespace no mark uses is kept.
pub const USERNS_GRACE_NS: u64 = 30_000_000_000;
/// How many user namespaces no mark uses are kept at most.
pub const USERNS_IDLE_MAX: usize = 32;

/// Drops idle entries older than the grace period, then the oldest idle ones
/// beyond [`USERNS_IDLE_MAX`].
fn userns_prune(cache: &mut UsernsCache, now: u64) {
    cache.retain(|_, e| e.refs > 0 || now.saturating_sub(e.idle_since) < USERNS_GRACE_NS);
    loop {
        let idle = cache.values().filter(|e| e.refs == 0).count();
        if idle <= USERNS_IDLE_MAX {
            return;
        }
        let oldest =
            cache.iter().filter(|(_, e)| e.refs == 0).min_by_key(|(_, e)| e.idle_since).map(|(k, _)| k.clone());
        match oldest {
            Some(k) => cache.remove(&k),
            None => return,
        };
    }
}

/// Creates a user namespace whose uid and gid maps are `map`: a child cloned
/// into a new user namespace waits while we write its maps and open its
/// `ns/user`, then exits and is reaped. The fd keeps the namespace alive.
pub fn create_userns(map: &[IdMapping]) -> Result<OwnedFd> {
    let text = idmap::format_map(map);
    let child = sys::spawn_userns_child().map_err(|e| Error::internal("clone(user namespace child)", e))?;
    let result = (|| {
        let dir = format!("/proc/{}", child.pid().as_raw());
        for f in ["uid_map", "gid_map"] {
            let fd = rustix::fs::open(format!("{dir}/{f}").as_str(), OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::internal(&format!("open({f} of userns child)"), e))?;
            rustix::io::write(&fd, text.as_bytes())
                .map_err(|e| Error::internal(&format!("write({f} of userns child)"), e))?;
        }
        rustix::fs::open(format!("{dir}/ns/user").as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::internal("open(ns/user of userns child)", e))
    })();
    child.finish();
    result
}

fn userns_acquire(map: &[IdMapping]) -> Result<Arc<OwnedFd>> {
    userns_acquire_at(map, sys::boottime_ns())
}

fn userns_acquire_at(map: &[IdMapping], now: u64) -> Result<Arc<OwnedFd>> {
    let key = idmap::format_map(map);
    let mut guard = USERNS.lock().unwrap_or_else(|e| e.into_inner());
    let cache = guard.get_or_insert_with(HashMap::new);
    userns_prune(cache, now);
    if let Some(e) = cache.get_mut(&key) {
        e.refs += 1;
        return Ok(e.fd.clone());
    }
    let fd = Arc::new(create_userns(map)?);
    cache.insert(key, CachedUserns { fd: fd.clone(), refs: 1, idle_since: 0 });
    Ok(fd)
}

/// Releases one reference to the cached user namespace of `map` (kept for
/// the grace period after the last one, see [`UsernsCache`]).
pub fn userns_release(map: &[IdMapping]) {
    userns_release_at(map, sys::boottime_ns())
}

fn userns_release_at(map: &[IdMapping], now: u64) {
    let key = idmap::format_map(map);
    let mut guard = USERNS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(cache) = guard.as_mut() {
        if let Some(e) = cache.get_mut(&key) {
            if e.refs > 0 {
                e.refs -= 1;
                if e.refs == 0 {
                    e.idle_since = now;
                }
            }
        }
        userns_prune(cache, now);
    }
}

/// How many cached user namespaces marks use (for tests and metrics).
pub fn userns_cached() -> usize {
    USERNS.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |c| c.values().filter(|e| e.refs > 0).count())
}

/// How many cached user namespaces no mark uses (kept for the grace period).
pub fn userns_idle() -> usize {
    USERNS.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(0, |c| c.values().filter(|e| e.refs == 0).count())
}

// ---- marks ---------------------------------------------------------------------

/// Resolves `path` inside `root`, creating missing directories (0755) one
/// component at a time, refusing symlinks anywhere.
fn ensure_dir(root: BorrowedFd<'_>, path: &str) -> Result<OwnedFd> {
    check_target(path)?;
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut cur =
        openat2_scoped(root, ".", flags, Mode::empty(), how).map_err(|e| Error::internal("openat2(root)", e))?;
    for comp in path.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let next = match openat2_scoped(&cur, comp, flags, Mode::empty(), how) {
            Err(Errno::NOENT) => {
                match mkdirat(&cur, comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Error::internal(&format!("mkdirat({comp})"), e)),
                }
                openat2_scoped(&cur, comp, flags, Mode::empty(), how)
            }
            r => r,
        };
        cur = next.map_err(|e| match e {
            Errno::LOOP => Error::invalid(format!("mark path {path:?} is or passes through a symlink ({comp:?})")),
            Errno::NOTDIR => Error::invalid(format!("mark path {path:?}: {comp:?} is not a directory")),
            e => Error::internal(&format!("openat2(mark {comp})"), e),
        })?;
    }
    Ok(cur)
}

/// Refuses a container that shares the daemon's mount namespace: making its
/// root shared or mounting a mark there would change the host's mount table.
fn ensure_own_mount_ns(mntns: &OwnedFd) -> Result<()> {
    let theirs = rustix::fs::fstat(mntns).map_err(|e| Error::internal("fstat(ns/mnt)", e))?;
    let ours = rustix::fs::stat("/proc/thread-self/ns/mnt").map_err(|e| Error::internal("stat(ns/mnt)", e))?;
    if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino) {
        return Err(Error::new(
            ErrorKind::FailedPrecondition,
            "the container shares the host's mount namespace; PrepareForUserNS needs a container with its own",
        ));
    }
    Ok(())
}

/// What every mark method needs about the container, gathered on the calling
/// thread (in the daemon's namespace): its mount namespace (refused if it is
/// the daemon's own), its root, and the propagation guard.
struct MarkTarget {
    mntns: OwnedFd,
    root: OwnedFd,
    guard: PropagationGuard,
}

impl MarkTarget {
    fn of(container: &Container) -> Result<MarkTarget> {
        let init = container.init();
        let mntns = init.open("ns/mnt", OFlags::RDONLY)?;
        ensure_own_mount_ns(&mntns)?;
        let root = init.open("root", OFlags::PATH | OFlags::DIRECTORY)?;
        Ok(MarkTarget { mntns, root, guard: PropagationGuard::new(crate::mount::MountStrategy::Detached)? })
    }

    /// On a worker thread: enters the container's mount namespace, makes its
    /// root shared, and resolves (creating) the mark directory.
    fn enter(&self, ns: &NsThread, mark_path: &str) -> Result<OwnedFd> {
        ns.setns(self.mntns.as_fd(), CloneFlags::CLONE_NEWNS, "mnt")?;
        make_root_shared(&self.root)?;
        let mark = ensure_dir(self.root.as_fd(), mark_path)?;
        self.guard.check(mark.as_fd(), mark_path)?;
        Ok(mark)
    }
}

/// Makes the container's root mount (`root`, in the calling thread's mount
/// namespace) shared: the container's, never the host's.
fn make_root_shared(root: &OwnedFd) -> Result<()> {
    sys::mount_make_shared(root).map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) => Error::new(
            ErrorKind::FailedPrecondition,
            "the container's root is not a mount root (pivot_root into a mount, as OCI runtimes do)",
        ),
        _ => Error::internal("mount_setattr(root, MS_SHARED)", e),
    })
}

/// Every mark is `nosuid,nodev`, whatever its method: through it the shifted
/// ids own the container's files, so a setuid bit or a device node there
/// would be honoured for ids the workspace chose. Set on the detached tree
/// before it is attached. A ring whose mount namespace is a copy of the
/// container's (made after the mark, as workspacekit does) gets the mark with
/// MNT_LOCK_NOSUID and MNT_LOCK_NODEV (the kernel locks the flags of every
/// mount copied into a namespace owned by a less privileged user namespace),
/// and a ring in the container's own mount namespace has no CAP_SYS_ADMIN
/// over it: neither can clear them.
fn nosuid_nodev(tree: &OwnedFd, what: &str) -> Result<()> {
    sys::mount_setattr_fd(tree, sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV, false)
        .map_err(|e| Error::internal(&format!("mount_setattr({what}, NOSUID|NODEV)"), e))
}

/// Makes the container's root mount nosuid,nodev. Through an idmapped (or
/// shiftfs) mark, ring root writes as on-disk root into the very filesystem
/// the container's root serves: it can leave a setuid-root program there,
/// which a nosuid mark alone would not stop from running as root from the
/// container's normal path. So once a mark writes through to the root
/// filesystem, no file of it may raise privileges or open a device anywhere
/// in the container. (Rings made afterwards copy the flag, locked.)
fn root_nosuid_nodev(root: &OwnedFd) -> Result<()> {
    nosuid_nodev(root, "container root")
}

/// Makes the container's root mount shared and mounts an idmapped clone of
/// it at `mark_path`, both inside the container's mount namespace.
fn mark_idmapped(container: &Container, mark_path: &str, userns: &OwnedFd) -> Result<u64> {
    let t = MarkTarget::of(container)?;
    on_fresh_thread(|ns| {
        let mark = t.enter(ns, mark_path)?;
        let tree = open_tree(
            &t.root,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| kernel("open_tree(container root, CLONE)", e))?;
        sys::mount_idmap(&tree, userns).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) | Some(libc::EPERM) | Some(libc::EOPNOTSUPP) => Error::because(
                ErrorKind::FailedPrecondition,
                Reason::IdmapUnsupported,
                "the container root's filesystem does not support idmapped mounts",
            )
            .with_detail(format!("mount_setattr(MOUNT_ATTR_IDMAP): {e}"))
            .with_errno(e),
            _ => Error::internal("mount_setattr(MOUNT_ATTR_IDMAP)", e),
        })?;
        nosuid_nodev(&tree, "idmapped mark")?;
        root_nosuid_nodev(&t.root)?;
        attach(&tree, &mark, &format!("onto {mark_path}"))
    })
}

/// Mounts a shiftfs mark of the container's root at `mark_path` (kernels that
/// carry shiftfs, e.g. Ubuntu's). Not exercised by the test suite: the
/// reference kernel has no shiftfs.
fn mark_shiftfs(container: &Container, mark_path: &str) -> Result<u64> {
    let t = MarkTarget::of(container)?;
    on_fresh_thread(|ns| {
        let mark = t.enter(ns, mark_path)?;
        // shiftfs looks its source path up from the caller's cwd: the
        // container's root (this thread's cwd is private to it).
        rustix::process::fchdir(&t.root).map_err(|e| Error::internal("fchdir(container root)", e))?;
        let mnt = detached(
            "shiftfs",
            |fs| {
                rustix::mount::fsconfig_set_string(fs, "source", ".")
                    .map_err(|e| kernel("fsconfig(shiftfs source)", e))?;
                rustix::mount::fsconfig_set_flag(fs, "mark").map_err(|e| kernel("fsconfig(shiftfs mark)", e))
            },
            rustix::mount::MountAttrFlags::MOUNT_ATTR_NOSUID | rustix::mount::MountAttrFlags::MOUNT_ATTR_NODEV,
        )?;
        root_nosuid_nodev(&t.root)?;
        attach(&mnt, &mark, &format!("shiftfs onto {mark_path}"))
    })
}

/// Options of the FUSE method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuseOptions {
    /// The host's fuse-overlayfs binary (absolute path).
    pub binary: String,
    /// Host directories for the overlay's upper and work dirs and a staging
    /// mount point, private to iwsd (not visible in the container). Upper and
    /// work must be siblings: in the helper's namespace their parent is
    /// covered by the store (so it should hold nothing else).
    pub upper: String,
    pub work: String,
    pub staging: String,
    /// Size of the tmpfs that holds the upper and work dirs (copy-ups), in
    /// bytes: mounted at their common parent inside the helper's private
    /// mount namespace, so a workspace's writes through the mark never reach
    /// the daemon's state filesystem and a full store is ENOSPC for the
    /// writer only.
    pub upper_bytes: u64,
}

/// The smallest store a FUSE mark gets (fuse-overlayfs needs a few pages).
pub const MIN_UPPER_BYTES: u64 = 1 << 20;

impl FuseOptions {
    /// Where the store is mounted (the common parent of upper and work) and
    /// its mount options.
    fn store(&self) -> Result<(String, String)> {
        let parent = |p: &str| std::path::Path::new(p).parent().map(|d| d.display().to_string());
        let store = parent(&self.upper).filter(|d| Some(d) == parent(&self.work).as_ref() && d != "/");
        let Some(store) = store else {
            return Err(Error::invalid("fuse upper and work dirs must be siblings (their parent holds the store)"));
        };
        if self.upper_bytes < MIN_UPPER_BYTES {
            return Err(Error::invalid(format!("the fuse upper store must be at least {MIN_UPPER_BYTES} bytes")));
        }
        // Inodes are bounded too (one per 8 KiB of store, at least 1024):
        // tmpfs inodes cost kernel memory that `size` does not count.
        let inodes = (self.upper_bytes / 8192).max(1024);
        Ok((store, format!("size={},nr_inodes={inodes},mode=0700", self.upper_bytes)))
    }
}

/// Supervised fuse-overlayfs processes, by PID.
static FUSE: Mutex<Option<HashMap<i32, Child>>> = Mutex::new(None);

fn fuse_mapping(map: &[IdMapping]) -> String {
    map.iter().map(|m| format!("{}:{}:{}", m.container_id, m.host_id, m.size)).collect::<Vec<_>>().join(":")
}

/// Starts fuse-overlayfs in a private mount namespace, waits for its mount,
/// clones it into the container's mount namespace at `mark_path`.
fn mark_fuse(container: &Container, mark_path: &str, shift: &[IdMapping], opts: &FuseOptions) -> Result<Mark> {
    let t = MarkTarget::of(container)?;
    let (store, store_opts) = opts.store()?;
    for d in [&opts.upper, &opts.work, &opts.staging] {
        std::fs::create_dir_all(d).map_err(|e| Error::internal(&format!("mkdir {d}"), e))?;
    }
    let cstr = |s: &str| std::ffi::CString::new(s).map_err(|_| Error::invalid("fuse paths must not contain NUL"));
    // The tmpfs hides what is at the store on the host: make every directory
    // the helper needs under it again, in it.
    let mut dirs = vec![];
    for d in [&opts.upper, &opts.work, &opts.staging] {
        if std::path::Path::new(d).parent() == Some(std::path::Path::new(&store)) {
            dirs.push(cstr(d)?);
        }
    }
    // The lower layer is attached inside the helper's private namespace, on
    // its private tmpfs, where no process of the container can see or cover the path.
    let lower_tree = fuse_lower_tree(&t, mark_path)?;
    let lower = format!("{store}/lower");
    let map = fuse_mapping(shift);
    // writeback=0: with FUSE's writeback cache a write into a full store
    // "succeeds" and the data is dropped at flush; without it the writer
    // gets ENOSPC from its write(2).
    let mut cmd = Command::new(&opts.binary);
    cmd.arg("-f")
        .arg("-o")
        .arg(format!(
            "lowerdir={lower},upperdir={},workdir={},uidmapping={map},gidmapping={map},allow_other,writeback=0",
            opts.upper, opts.work
        ))
        .arg(&opts.staging)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    sys::in_private_mount_ns_with_tmpfs(
        &mut cmd,
        cstr(&store)?,
        cstr(&store_opts)?,
        dirs,
        Some((lower_tree.as_fd(), cstr(&lower)?)),
    );
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::new(
            ErrorKind::FailedPrecondition,
            format!("{} is not installed on the host; install fuse-overlayfs or use another shift method", opts.binary),
        ),
        _ => Error::internal(&format!("spawn {}", opts.binary), e),
    })?;
    drop(cmd);
    drop(lower_tree);
    let pid = child.id() as i32;
    let stop = |child: Child| {
        if let Err(child) = kill_and_reap(child) {
            // Reaped later by a Teardown that finds nothing (see stop_fuse).
            FUSE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(pid, child);
        }
    };
    if !fuse_mounted(&mut child, pid, &opts.staging)? {
        stop(child);
        return Err(Error::internal("fuse-overlayfs", "mount did not appear within 10 s"));
    }
    match fuse_onto_mark(&t, pid, &opts.staging, mark_path) {
        Ok(id) => {
            FUSE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(pid, child);
            Ok(Mark { method: ShiftMethod::Fuse, mount_id: id, fuse_pid: Some(pid) })
        }
        Err(e) => {
            stop(child);
            Err(e)
        }
    }
}

/// The FUSE overlay's lower layer: the container's root mount alone. A
/// non-recursive clone (no submounts: never the mark, which is mounted under
/// the root, so a read through the mark cannot come back to the FUSE server
/// itself), private (a mount the container makes under its shared root, the
/// mark included, does not propagate into it), read-only, nosuid, nodev. It
/// is cloned from the root the container's init is pinned to (not looked up
/// by a path the container can redirect). The mark directory is made first:
/// fuse-overlayfs takes its lower layer as unchanging and would not show a
/// directory made later.
fn fuse_lower_tree(t: &MarkTarget, mark_path: &str) -> Result<OwnedFd> {
    on_fresh_thread(|ns| {
        t.enter(ns, mark_path)?;
        let tree = open_tree(
            &t.root,
            "",
            OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC | OpenTreeFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| kernel("open_tree(container root, CLONE)", e))?;
        sys::mount_make_rprivate(&tree).map_err(|e| Error::internal("mount_setattr(fuse lower, MS_PRIVATE)", e))?;
        sys::mount_setattr_fd(&tree, sys::MOUNT_ATTR_RDONLY | sys::MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_NODEV, false)
            .map_err(|e| Error::internal("mount_setattr(fuse lower, RDONLY|NOSUID|NODEV)", e))?;
        Ok(tree)
    })
}

/// Waits (10 s at most) until fuse-overlayfs `child` (host PID `pid`) has
/// its FUSE mount at `staging` in its namespace: true; false when the time
/// ran out (it still runs); an error with its stderr when it exited.
fn fuse_mounted(child: &mut Child, pid: i32, staging: &str) -> Result<bool> {
    let mountinfo = format!("/proc/{pid}/mountinfo");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return Err(Error::internal("fuse-overlayfs", format!("exited with {status}: {}", err.trim())));
        }
        let listed = std::fs::read_to_string(&mountinfo).unwrap_or_default();
        if listed.lines().any(|l| l.split(' ').nth(4) == Some(staging) && l.contains(" - fuse")) {
            return Ok(true);
        }
        if Instant::now() > deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Clones the FUSE mount at `staging` in helper `pid`'s mount namespace
/// (nosuid, nodev) onto the mark in the container's: its mount id.
fn fuse_onto_mark(t: &MarkTarget, pid: i32, staging: &str, mark_path: &str) -> Result<u64> {
    let helper_ns =
        rustix::fs::open(format!("/proc/{pid}/ns/mnt").as_str(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::internal("open(fuse helper ns/mnt)", e))?;
    on_fresh_thread(|ns| {
        ns.setns(helper_ns.as_fd(), CloneFlags::CLONE_NEWNS, "fuse helper mnt")?;
        let tree = open_tree(CWD, staging, OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC)
            .map_err(|e| kernel("open_tree(fuse mount, CLONE)", e))?;
        nosuid_nodev(&tree, "fuse mark")?;
        let mark = t.enter(ns, mark_path)?;
        attach(&tree, &mark, &format!("fuse onto {mark_path}"))
    })
}

/// How long a helper gets after SIGTERM, and then after SIGKILL, to exit.
const FUSE_STOP_GRACE: Duration = Duration::from_secs(2);
const FUSE_KILL_GRACE: Duration = Duration::from_secs(5);

/// SIGKILLs `child` and reaps it within [`FUSE_KILL_GRACE`]; gives it back
/// when it did not exit by then (a process blocked in an uninterruptible
/// wait), so that the caller never blocks on it.
fn kill_and_reap(mut child: Child) -> std::result::Result<(), Child> {
    let _ = child.kill();
    let deadline = Instant::now() + FUSE_KILL_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return Ok(()),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => return Err(child),
        }
    }
}

/// The FUSE connection (its `/sys/fs/fuse/connections` name: the minor
/// device number of the mount) of the helper `pid`'s mount at `staging`,
/// from the helper's mountinfo (which asks the FUSE server nothing).
fn fuse_connection(pid: i32, staging: &str) -> Option<u32> {
    let listed = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    let line = listed.lines().find(|l| l.split(' ').nth(4) == Some(staging) && l.contains(" - fuse"))?;
    let (major, minor) = line.split(' ').nth(2)?.split_once(':')?;
    (major == "0").then_some(())?;
    minor.parse().ok()
}

/// Aborts FUSE connection `conn`: every request pending or to come on it
/// fails (ENOTCONN) at once, whatever its server does. Through a detached
/// fusectl mount of iwsd's own (fsopen/fsmount: attached nowhere, in no
/// mount table), so it works where the host has none at /sys/fs/fuse.
pub fn abort_fuse_connection(conn: u32) -> Result<()> {
    let ctl = detached("fusectl", |_| Ok(()), rustix::mount::MountAttrFlags::empty())?;
    let name = format!("{conn}/abort");
    let fd =
        openat2_scoped(&ctl, name.as_str(), OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty(), ResolveFlags::BENEATH)
            .map_err(|e| Error::internal(&format!("open(fusectl {name})"), e))?;
    rustix::io::write(&fd, b"1").map_err(|e| Error::internal(&format!("write(fusectl {name})"), e))?;
    Ok(())
}

/// Stops a supervised fuse-overlayfs and reaps it, bounded in time: first
/// aborts its FUSE connection (so that no thread of the daemon or of the
/// workspace stays blocked on a server that is stopped, stuck or gone, and
/// the helper's own threads are free to exit), then SIGTERM, SIGKILL after
/// 2 s. Ok(false) if iwsd does not supervise that PID (any more). An error
/// (the helper did not exit even after SIGKILL) leaves it supervised for a
/// later try.
pub fn stop_fuse(pid: i32, staging: &str) -> Result<bool> {
    let child = FUSE.lock().unwrap_or_else(|e| e.into_inner()).as_mut().and_then(|m| m.remove(&pid));
    let Some(mut child) = child else { return stop_orphan_fuse(pid, staging) };
    // The child is not reaped yet: its PID cannot be anyone else's.
    let aborted = fuse_connection(pid, staging).map(abort_fuse_connection);
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + FUSE_STOP_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return Ok(true),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => break,
        }
    }
    match kill_and_reap(child) {
        Ok(()) => Ok(true),
        Err(child) => {
            FUSE.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(pid, child);
            let why = match aborted {
                Some(Err(e)) => format!("; aborting its FUSE connection failed: {e}"),
                None => "; its FUSE connection was not found".into(),
                Some(Ok(())) => String::new(),
            };
            Err(Error::internal(
                "fuse-overlayfs",
                format!("{pid} did not exit within {} s of SIGKILL{why}", FUSE_KILL_GRACE.as_secs()),
            ))
        }
    }
}

/// A helper started by an earlier daemon process (before a restart): stopped
/// only if its command line proves it is ours (fuse-overlayfs serving our
/// staging directory), watched through a pidfd until it is gone.
fn stop_orphan_fuse(pid: i32, staging: &str) -> Result<bool> {
    let Ok(p) = crate::pidns::PinnedProcess::pin(pid) else { return Ok(false) };
    let Ok(fd) = p.open("cmdline", OFlags::RDONLY) else { return Ok(false) };
    let mut cmd = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut cmd);
    let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
    let ours = args.first().is_some_and(|a| a.ends_with(b"fuse-overlayfs")) && args.contains(&staging.as_bytes());
    if !ours {
        return Ok(false);
    }
    if let Some(conn) = fuse_connection(pid, staging) {
        // Pinned by its pidfd and proven ours above; best effort (SIGKILL
        // below aborts the connection too, by closing /dev/fuse).
        let _ = p.ensure_alive().and_then(|_| abort_fuse_connection(conn));
    }
    let _ = rustix::process::pidfd_send_signal(p.pidfd(), rustix::process::Signal::TERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    while p.ensure_alive().is_ok() {
        if Instant::now() > deadline {
            let _ = rustix::process::pidfd_send_signal(p.pidfd(), rustix::process::Signal::KILL);
            std::thread::sleep(Duration::from_millis(50));
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(true)
}

/// PIDs of the fuse-overlayfs processes iwsd supervises.
pub fn fuse_pids() -> Vec<i32> {
    FUSE.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(vec![], |m| m.keys().copied().collect())
}

/// Whether the kernel lists shiftfs in /proc/filesystems.
pub fn shiftfs_available() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .is_ok_and(|s| s.lines().any(|l| l.split_whitespace().last() == Some("shiftfs")))
}

/// Which methods `auto` tries, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodChoice {
    Auto,
    Only(ShiftMethod),
}

impl MethodChoice {
    /// "auto", or one method's name.
    pub fn parse(s: &str) -> Result<MethodChoice> {
        match s {
            "auto" => Ok(MethodChoice::Auto),
            s => ShiftMethod::parse(s).map(MethodChoice::Only),
        }
    }
}

/// PrepareForUserNS's kernel work: makes the container's root shared and
/// mounts the mark with the chosen method. `auto` tries an idmapped mount for
/// real and falls back to FUSE when the kernel or filesystem refuses it. On
/// failure nothing stays mounted.
pub fn prepare_mark(
    container: &Container,
    mark_path: &str,
    shift: &[IdMapping],
    policy: &idmap::IdPolicy,
    choice: MethodChoice,
    fuse: &FuseOptions,
) -> Result<Mark> {
    check_target(mark_path)?;
    // The shift mapping hands the mark's view host ids: it obeys the same
    // policy as any map a workspace writes.
    let shift =
        idmap::validate(shift, policy).map_err(|e| Error::invalid(format!("shift mapping: {}", e.message())))?;
    let shift = shift.lines();
    let idmapped = || -> Result<Mark> {
        let userns = userns_acquire(shift)?;
        match mark_idmapped(container, mark_path, &userns) {
            Ok(id) => Ok(Mark { method: ShiftMethod::Idmapped, mount_id: id, fuse_pid: None }),
            Err(e) => {
                userns_release(shift);
                Err(e)
            }
        }
    };
    match choice {
        MethodChoice::Only(ShiftMethod::Idmapped) => idmapped(),
        MethodChoice::Only(ShiftMethod::Fuse) => mark_fuse(container, mark_path, shift, fuse),
        MethodChoice::Only(ShiftMethod::Shiftfs) => {
            if !shiftfs_available() {
                return Err(Error::new(
                    ErrorKind::FailedPrecondition,
                    "shiftfs is not available: this kernel does not list it in /proc/filesystems; use idmapped or fuse",
                ));
            }
            let id = mark_shiftfs(container, mark_path)?;
            Ok(Mark { method: ShiftMethod::Shiftfs, mount_id: id, fuse_pid: None })
        }
        MethodChoice::Auto => match idmapped() {
            Err(e) if e.reason() == Some(Reason::IdmapUnsupported) => mark_fuse(container, mark_path, shift, fuse),
            r => r,
        },
    }
}

/// Teardown's kernel work: unmounts the mark (only the mount with `mark`'s
/// id; nothing to unmount once the container's init has exited), stops its
/// FUSE helper and releases its user namespace. Returns
/// whether everything was cleaned, with the reasons for anything that was not.
pub fn remove_mark(
    container: &Container,
    strategy: crate::pidns::PidStrategy,
    mark_path: &str,
    mark: &Mark,
    shift: &[IdMapping],
    fuse: &FuseOptions,
) -> (bool, Vec<String>) {
    let mut problems = vec![];
    // The FUSE helper first: stopping it aborts the mark's FUSE connection,
    // so that the unmount below (and any process of the workspace using the
    // mark) cannot block on a server that is stopped or stuck.
    if let Some(pid) = mark.fuse_pid {
        match stop_fuse(pid, &fuse.staging) {
            Ok(_) => {}
            Err(e) => problems.push(format!("stop fuse-overlayfs {pid}: {e}")),
        }
    }
    // A container whose init has exited has no PID namespace left (the
    // kernel kills every process in it) and no process to reach its mount
    // namespace through (resolving PID 1 fails): the mark went with that
    // mount namespace. Only the helper and the user namespace remain.
    if container.is_alive() {
        match crate::mount::umount_as_daemon(container, strategy, 1, mark_path, &[mark.mount_id]) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                problems.push(format!("unmount mark: {e}{}", e.detail().map(|d| format!(" ({d})")).unwrap_or_default()))
            }
        }
    }
    if mark.method == ShiftMethod::Idmapped {
        userns_release(shift);
    }
    (problems.is_empty(), problems)
}

/// A workspace's FUSE mark, as far as [`with_mark_deadline`] needs it: the
/// helper's PID and its staging directory (proof that the PID is ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuseMarkRef {
    pub pid: i32,
    pub staging: String,
}

/// Runs `f` (native work of a workspace that may walk through its FUSE mark,
/// e.g. a MountProc onto a path under it) on a thread of its own and waits
/// at most `deadline`. When the deadline passes and the workspace has a FUSE
/// mark, its FUSE connection is aborted (a stuck or stopped server cannot
/// answer; every request on it then fails with ENOTCONN and the thread
/// returns), and the call fails with UNAVAILABLE saying so (as the RPC guard's own deadline does). The waiting
/// caller (a libuv pool thread) is free again after at most `deadline` plus
/// a grace period either way: a thread that still does not return keeps only
/// what `f` owns.
pub fn with_mark_deadline<T: Send + 'static>(
    deadline: Duration,
    fuse: Option<FuseMarkRef>,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("iws-bounded".into())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| Error::internal("spawn bounded thread", e))?;
    match rx.recv_timeout(deadline) {
        Ok(r) => return r,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            return Err(Error::internal("bounded thread", "ended without an answer"))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
    }
    let secs = deadline.as_secs_f64();
    let Some(fuse) = fuse else {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!("the operation did not finish within {secs} s; it goes on in the background"),
        ));
    };
    // Only a helper iwsd supervises (not reaped, so the PID is its) or one
    // whose command line proves it serves our staging directory.
    let ours = fuse_pids().contains(&fuse.pid)
        || std::fs::read(format!("/proc/{}/cmdline", fuse.pid)).is_ok_and(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"fuse-overlayfs")) && args.contains(&fuse.staging.as_bytes())
        });
    let aborted = match ours.then(|| fuse_connection(fuse.pid, &fuse.staging)).flatten() {
        Some(conn) => abort_fuse_connection(conn).map(|_| conn),
        None => Err(Error::internal("fuse connection", "not found")),
    };
    let late = rx.recv_timeout(FUSE_KILL_GRACE);
    let what = match &aborted {
        Ok(conn) => format!("its FUSE connection {conn} was aborted (the mark no longer answers; Teardown removes it)"),
        Err(e) => format!("aborting its FUSE connection failed ({e})"),
    };
    let mut e = Error::new(
        ErrorKind::Unavailable,
        format!("the workspace's FUSE mark (fuse-overlayfs {}) did not answer within {secs} s; {what}", fuse.pid),
    );
    if let Ok(Err(inner)) = late {
        e = e.with_detail(inner.to_string());
    }
    Err(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(map: &[IdMapping]) -> Option<(usize, u64)> {
        let key = idmap::format_map(map);
        USERNS.lock().unwrap_or_else(|e| e.into_inner()).as_ref()?.get(&key).map(|e| (e.refs, e.idle_since))
    }

    /// The cache is process-wide: these tests, which move its clock, run one
    /// at a time, starting from the real clock.
    static SERIAL: Mutex<()> = Mutex::new(());

    fn ino(fd: &OwnedFd) -> u64 {
        rustix::fs::fstat(fd).unwrap().st_ino
    }

    #[test]
    fn released_userns_is_kept_for_the_grace_period_then_dropped() {
        if crate::skip_unless_root("released_userns_is_kept_for_the_grace_period_then_dropped") {
            return;
        }
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        // Mappings of this test alone (the cache is process-wide).
        let map = [IdMapping { container_id: 0, host_id: 771_000, size: 7 }];
        let t0 = sys::boottime_ns();
        let a = userns_acquire_at(&map, t0).unwrap();
        let first = ino(&a);
        drop(a);
        assert_eq!(state(&map), Some((1, 0)));
        userns_release_at(&map, t0);
        assert_eq!(state(&map), Some((0, t0)), "kept after the last release, idle");
        // Within the grace period the same namespace comes back, no new one.
        let b = userns_acquire_at(&map, t0 + USERNS_GRACE_NS - 1).unwrap();
        assert_eq!(ino(&b), first, "the kept namespace is reused");
        assert_eq!(state(&map).unwrap().0, 1);
        drop(b);
        userns_release_at(&map, t0 + USERNS_GRACE_NS);
        // Any cache call after the grace period drops it.
        userns_release_at(&[IdMapping { container_id: 0, host_id: 1, size: 1 }], t0 + 2 * USERNS_GRACE_NS);
        assert_eq!(state(&map), None, "dropped after the grace period");
        let c = userns_acquire_at(&map, t0 + 2 * USERNS_GRACE_NS).unwrap();
        assert_ne!(ino(&c), first, "a new namespace after the grace period");
        drop(c);
        userns_release_at(&map, t0 + 2 * USERNS_GRACE_NS);
        userns_release_at(&map, t0 + 4 * USERNS_GRACE_NS);
        assert_eq!(state(&map), None);
    }

    #[test]
    fn idle_user_namespaces_are_bounded() {
        if crate::skip_unless_root("idle_user_namespaces_are_bounded") {
            return;
        }
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let t0 = sys::boottime_ns();
        let maps: Vec<[IdMapping; 1]> = (0..USERNS_IDLE_MAX as u32 + 3)
            .map(|i| [IdMapping { container_id: 0, host_id: 880_000 + i, size: 1 }])
            .collect();
        for (i, m) in maps.iter().enumerate() {
            drop(userns_acquire_at(m, t0 + i as u64).unwrap());
            userns_release_at(m, t0 + i as u64);
        }
        let kept = maps.iter().filter(|m| state(&m[..]).is_some()).count();
        assert!(kept <= USERNS_IDLE_MAX, "{kept} idle namespaces kept");
        assert_eq!(state(&maps[0]), None, "the oldest idle one went first");
        assert!(state(maps.last().unwrap()).is_some(), "the newest is kept");
        // Cleanup: past the grace period, all go.
        userns_release_at(&maps[0], t0 + 10 * USERNS_GRACE_NS);
        assert!(maps.iter().all(|m| state(&m[..]).is_none()));
    }
}

//! PID translation and pinning.
//!
//! A request names a process by its PID *in the workspace container's view*.
//! Threat model: the caller controls that number and can make processes exit
//! and PIDs get reused at will. We therefore (1) translate the number in the
//! container's PID namespace, never in the host's; (2) pin the result with a
//! pidfd and a `/proc/<pid>` directory fd; (3) prove, from the pinned
//! directory, that the process's PID namespace is the container's or below it
//! and that it still has the requested PID there. Operations then go through
//! the pinned directory fd, which the kernel binds to that one process, so a
//! PID reused after the check cannot redirect them.
//!
//! Strategies: `Ioctl` uses `NS_GET_TGID_FROM_PIDNS`/`NS_GET_TGID_IN_PIDNS`
//! (Linux 6.11+). `Scan` is the fallback for older kernels: match `NSpid:` at
//! the container's level among `/proc/*/status`. Both end in the same
//! pin-and-verify step.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{openat, Mode, OFlags, CWD};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use crate::error::{Error, ErrorKind, Reason, Result};
use crate::sys;

/// The host's procfs, as the daemon sees it.
const PROC: &str = "/proc";

/// PID namespaces nest at most 32 deep.
const MAX_PIDNS_DEPTH: usize = 33;

/// How a container-view PID is translated to a host PID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PidStrategy {
    /// `ioctl(NS_GET_TGID_FROM_PIDNS)` on the container's PID namespace fd.
    Ioctl,
    /// Scan `/proc/*/status` for `NSpid:` at the container's level.
    Scan,
}

impl PidStrategy {
    pub fn name(self) -> &'static str {
        match self {
            PidStrategy::Ioctl => "ioctl",
            PidStrategy::Scan => "scan",
        }
    }

    pub fn parse(s: &str) -> Result<Option<PidStrategy>> {
        match s {
            "auto" => Ok(None),
            "ioctl" => Ok(Some(PidStrategy::Ioctl)),
            "scan" => Ok(Some(PidStrategy::Scan)),
            _ => Err(Error::invalid(format!("unknown pid strategy {s:?}; use auto, ioctl or scan"))),
        }
    }
}

/// Whether this kernel translates PIDs with `NS_GET_TGID_FROM_PIDNS`:
/// asks it to translate our own PID in our own namespace.
pub fn probe_pidns_ioctl() -> bool {
    let Ok(ns) = open_path("/proc/self/ns/pid") else { return false };
    let me = std::process::id() as i32;
    matches!(sys::ns_get_tgid_from_pidns(&ns, me), Ok(p) if p == me)
        && matches!(sys::ns_get_tgid_in_pidns(&ns, me), Ok(p) if p == me)
}

/// [`probe_pidns_ioctl`], probed once per process (every operation resolves
/// its strategy).
fn pidns_ioctl_works() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(probe_pidns_ioctl)
}

/// Whether `pidfd_open` works here (Linux 5.3+).
pub fn probe_pidfd() -> bool {
    Pid::from_raw(std::process::id() as i32).map(|p| pidfd_open(p, PidfdFlags::empty()).is_ok()).unwrap_or(false)
}

/// Whether connected unix sockets report their peer as a pidfd.
pub fn probe_peer_pidfd() -> bool {
    use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};
    socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)
        .ok()
        .and_then(|(a, _b)| sys::peer_pidfd(&a).ok())
        .is_some_and(|fd| fd.is_some())
}

/// Picks the strategy: the requested one if the kernel supports it, the best
/// available otherwise.
pub fn choose_strategy(requested: Option<PidStrategy>) -> Result<PidStrategy> {
    match requested {
        Some(PidStrategy::Ioctl) if !pidns_ioctl_works() => Err(Error::new(
            ErrorKind::FailedPrecondition,
            "pid strategy 'ioctl' needs NS_GET_TGID_FROM_PIDNS (Linux 6.11+); use 'scan' or 'auto'",
        )),
        Some(s) => Ok(s),
        None if pidns_ioctl_works() => Ok(PidStrategy::Ioctl),
        None => Ok(PidStrategy::Scan),
    }
}

fn open_path(path: &str) -> io::Result<OwnedFd> {
    Ok(openat(CWD, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?)
}

fn open_in(dir: impl AsFd, name: &str, flags: OFlags) -> io::Result<OwnedFd> {
    // `ns/*` and `root` are magic links that must be followed to reach the
    // namespace or root directory; everything else we open there is a plain file.
    let follow = if name.starts_with("ns/") || name == "root" { OFlags::empty() } else { OFlags::NOFOLLOW };
    Ok(openat(dir, name, flags | OFlags::CLOEXEC | follow, Mode::empty())?)
}

/// Whether the mount of directory `root` is in `p`'s mount namespace (listed
/// in its mountinfo).
fn root_in(p: &PinnedProcess, root: &OwnedFd) -> Result<bool> {
    let id = mount_of(root)?;
    let table = p.read("mountinfo")?;
    Ok(table.lines().any(|l| l.split(' ').next().and_then(|f| f.parse::<u64>().ok()) == Some(id)))
}

/// The mount id of the mount `fd` is on.
fn mount_of(fd: impl AsFd) -> Result<u64> {
    rustix::fs::statx(fd, "", rustix::fs::AtFlags::EMPTY_PATH, rustix::fs::StatxFlags::MNT_ID)
        .map(|st| st.stx_mnt_id)
        .map_err(|e| Error::internal("statx(STATX_MNT_ID)", e))
}

/// Identity of a namespace: (device, inode) of its nsfs file.
pub(crate) fn ns_key(fd: impl AsFd) -> Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd).map_err(|e| Error::internal("fstat(ns fd)", e))?;
    Ok((st.st_dev, st.st_ino))
}

/// The whole of a small (`/proc`) file: plain `read(2)`s into a buffer
/// until end of file. (`File::read_to_string` first asks `statx` for a size
/// hint and `lseek` for the position, which a procfs file answers with 0:
/// two syscalls per file for nothing, and the daemon reads several per call.)
fn read_fd_to_string(fd: OwnedFd) -> io::Result<String> {
    let mut buf = vec![0u8; 4096];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    buf.truncate(len);
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The `NSpid:` line of a `status` file: the PID in each namespace, from the
/// outermost (the reader's) to the process's own.
pub fn parse_nspid(status: &str) -> Option<Vec<i32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().map(|p| p.parse().ok()).collect()
}

/// Checks a PID from a request: a positive `pid_t`.
pub fn check_pid(pid: i64) -> Result<i32> {
    if pid < 1 || pid > i32::MAX as i64 {
        return Err(Error::invalid(format!(
            "pid {pid} is out of range; give a positive PID as seen inside the workspace"
        )));
    }
    Ok(pid as i32)
}

fn errno_of(e: &io::Error) -> Option<i32> {
    e.raw_os_error()
}

/// A process pinned for one operation: its pidfd and its `/proc/<pid>`
/// directory. Dropping it closes both.
#[derive(Debug)]
pub struct PinnedProcess {
    host_pid: i32,
    pidfd: OwnedFd,
    dir: OwnedFd,
}

impl PinnedProcess {
    /// Pins host PID `host_pid`. NOT_FOUND when it does not exist (any more).
    pub fn pin(host_pid: i32) -> Result<PinnedProcess> {
        let gone = || {
            Error::because(
                ErrorKind::NotFound,
                Reason::ProcessExited,
                "the process exited before the operation could start",
            )
        };
        let pid = Pid::from_raw(host_pid).ok_or_else(gone)?;
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).map_err(|e| match e {
            rustix::io::Errno::SRCH => gone(),
            e => Error::internal(&format!("pidfd_open({host_pid})"), e),
        })?;
        let dir = openat(
            CWD,
            format!("{PROC}/{host_pid}").as_str(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::NOENT | rustix::io::Errno::SRCH => gone(),
            e => Error::internal(&format!("open(/proc/{host_pid})"), e),
        })?;
        let p = PinnedProcess { host_pid, pidfd, dir };
        // The pidfd was opened first: if the process is still alive now, the
        // directory we opened is that process's (its PID was never free).
        p.ensure_alive()?;
        Ok(p)
    }

    pub fn host_pid(&self) -> i32 {
        self.host_pid
    }

    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// NOT_FOUND once the process has been reaped.
    pub fn ensure_alive(&self) -> Result<()> {
        match sys::pidfd_alive(&self.pidfd) {
            Ok(true) => Ok(()),
            Ok(false) => Err(exited()),
            Err(e) => Err(Error::internal("pidfd_send_signal(0)", e)),
        }
    }

    /// Opens a file in the process's `/proc` directory (no symlinks followed).
    pub fn open(&self, name: &str, flags: OFlags) -> Result<OwnedFd> {
        open_in(&self.dir, name, flags).map_err(|e| match errno_of(&e) {
            Some(libc::ESRCH) | Some(libc::ENOENT) => exited(),
            Some(libc::EACCES) | Some(libc::EPERM) => {
                Error::new(ErrorKind::PermissionDenied, "the kernel does not let the daemon inspect that process")
                    .with_detail(format!("openat(/proc/{}/{name}): {e}", self.host_pid))
            }
            _ => Error::internal(&format!("openat(/proc/{}/{name})", self.host_pid), e),
        })
    }

    pub(crate) fn read(&self, name: &str) -> Result<String> {
        let fd = self.open(name, OFlags::RDONLY)?;
        read_fd_to_string(fd).map_err(|e| match errno_of(&e) {
            Some(libc::ESRCH) => exited(),
            _ => Error::internal(&format!("read(/proc/{}/{name})", self.host_pid), e),
        })
    }

    /// The process's start time (clock ticks after boot, `stat` field 22):
    /// with the PID, names one process for the life of the system.
    pub fn start_time(&self) -> Result<u64> {
        let stat = self.read("stat")?;
        // The command name (field 2) may contain spaces and parentheses.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        rest.split_whitespace()
            .nth(19)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::internal("parse /proc/<pid>/stat", "no start time"))
    }

    fn nspid(&self) -> Result<Vec<i32>> {
        let status = self.read("status")?;
        parse_nspid(&status).ok_or_else(|| Error::internal("parse NSpid", format!("/proc/{}/status", self.host_pid)))
    }
}

fn exited() -> Error {
    Error::because(ErrorKind::NotFound, Reason::ProcessExited, "the process exited during the operation")
}

/// The process at the other end of a connection (host view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// The process's start time: with `pid`, the process for every later
    /// call on the connection (see `authz::Caller`).
    pub start_time: u64,
}

/// The PID (in our namespace) a pidfd refers to, from `/proc/self/fdinfo`.
fn pidfd_pid(pidfd: &OwnedFd) -> Result<i32> {
    use std::os::fd::AsRawFd;
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))
        .map_err(|e| Error::internal("read(fdinfo of pidfd)", e))?;
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("Pid:"))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .ok_or_else(|| Error::internal("parse fdinfo of pidfd", "no Pid"))?;
    if pid <= 0 {
        return Err(Error::new(
            ErrorKind::PermissionDenied,
            "the connecting process exited or is outside the daemon's view",
        ));
    }
    Ok(pid)
}

/// Duplicates a socket fd owned by the caller (see `sys::dup_raw`).
pub fn dup_socket(fd: i32) -> Result<OwnedFd> {
    sys::dup_raw(fd).map_err(|e| Error::invalid(format!("not an open fd ({e})")))
}

/// A registered container: the init process pinned, and its PID namespace
/// held open from registration on.
#[derive(Debug)]
pub struct Container {
    init: PinnedProcess,
    pidns: OwnedFd,
    pidns_key: (u64, u64),
    /// Index of the container's namespace in an `NSpid:` list read by us.
    level: usize,
    /// The init's mount namespace, its owning user namespace, and its root
    /// directory (device, inode), as at registration.
    mntns_key: (u64, u64),
    userns_key: (u64, u64),
    root_key: (u64, u64),
}

/// Where a mount operation may act: a process of the workspace, its mount
/// namespace and root, checked by [`Container::mount_target`]. The fds are
/// the ones checked; the operation uses exactly these.
#[derive(Debug)]
pub struct MountTarget {
    process: PinnedProcess,
    mntns: OwnedFd,
    root: OwnedFd,
}

impl MountTarget {
    pub fn process(&self) -> &PinnedProcess {
        &self.process
    }

    /// The checked mount namespace (`ns/mnt`).
    pub fn mntns(&self) -> BorrowedFd<'_> {
        self.mntns.as_fd()
    }

    /// The checked root directory (`O_PATH`), in that namespace.
    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }
}

/// A namespace's (device, inode) key.
type NsKey = (u64, u64);

/// The daemon's own user namespace's key (see [`daemon_ns`]).
pub(crate) fn daemon_userns_key() -> Result<NsKey> {
    daemon_ns().map(|(_, user)| user)
}

/// The daemon's own mount and user namespaces, read once.
fn daemon_ns() -> Result<(NsKey, NsKey)> {
    static KEYS: std::sync::OnceLock<Result<(NsKey, NsKey)>> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mnt = open_path("/proc/self/ns/mnt").map_err(|e| Error::internal("open(/proc/self/ns/mnt)", e))?;
        let user = open_path("/proc/self/ns/user").map_err(|e| Error::internal("open(/proc/self/ns/user)", e))?;
        Ok((ns_key(&mnt)?, ns_key(&user)?))
    })
    .clone()
}

/// Most `..` steps taken from a process's root looking for the container's.
const MAX_ROOT_DEPTH: usize = 4096;

fn dir_key(fd: impl AsFd) -> Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd).map_err(|e| Error::internal("fstat(root)", e))?;
    Ok((st.st_dev, st.st_ino))
}

impl Container {
    /// Opens the container whose init has host PID `host_pid`. Refuses a
    /// process in the daemon's own PID namespace: registering it would put
    /// every host process inside the "workspace".
    pub fn open(host_pid: i64) -> Result<Container> {
        let pid = check_pid(host_pid)?;
        let init = PinnedProcess::pin(pid).map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no process with host pid {pid}; give the host PID of the container's init"),
                )
            } else {
                e
            }
        })?;
        let pidns = init.open("ns/pid", OFlags::RDONLY)?;
        let pidns_key = ns_key(&pidns)?;
        let own = open_path("/proc/self/ns/pid").map_err(|e| Error::internal("open(/proc/self/ns/pid)", e))?;
        if ns_key(&own)? == pidns_key {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("host pid {pid} is in the daemon's own PID namespace, not in a container; register the init of a container that has its own PID namespace"),
            ));
        }
        let nspid = init.nspid()?;
        if nspid.len() < 2 {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                format!("host pid {pid} is not in a PID namespace below the daemon's"),
            ));
        }
        let level = nspid.len() - 1;
        let mntns = init.open("ns/mnt", OFlags::RDONLY)?;
        let mntns_key = ns_key(&mntns)?;
        let userns_key = ns_key(init.open("ns/user", OFlags::RDONLY)?)?;
        let root_key = dir_key(init.open("root", OFlags::PATH | OFlags::DIRECTORY)?)?;
        init.ensure_alive()?;
        Ok(Container { init, pidns, pidns_key, level, mntns_key, userns_key, root_key })
    }

    pub fn host_pid(&self) -> i32 {
        self.init.host_pid()
    }

    /// The init's start time (clock ticks after boot, `/proc/<pid>/stat`
    /// field 22): with the host PID, identifies the container across daemon
    /// restarts even if the PID is reused.
    pub fn start_time(&self) -> Result<u64> {
        self.init.start_time()
    }

    /// Whether the container's init still runs: not exited (an exited init
    /// that its parent has not reaped yet, a zombie, still takes signals, but
    /// its PID namespace and mount namespace are gone).
    pub fn is_alive(&self) -> bool {
        !matches!(sys::pidfd_exited(self.init.pidfd()), Ok(true))
            && matches!(sys::pidfd_alive(self.init.pidfd()), Ok(true))
    }

    pub fn init(&self) -> &PinnedProcess {
        &self.init
    }

    /// The init's user namespace (device, inode), as at registration.
    pub(crate) fn userns_key(&self) -> (u64, u64) {
        self.userns_key
    }

    /// Whether `p` is a member of the workspace (its PID namespace is the
    /// container's or below it).
    pub(crate) fn has_member(&self, p: &PinnedProcess) -> Result<bool> {
        self.is_member(p)
    }

    /// Translates `pid` (container view) and pins it. NOT_FOUND when no such
    /// process is in the workspace; PERMISSION_DENIED when the process that
    /// has that number (in the daemon's view) lies outside the workspace.
    pub fn resolve(&self, pid: i64, strategy: PidStrategy) -> Result<PinnedProcess> {
        let pid = check_pid(pid)?;
        let host_pid = match strategy {
            PidStrategy::Ioctl => match sys::ns_get_tgid_from_pidns(&self.pidns, pid) {
                Ok(h) => Some(h),
                Err(e) if errno_of(&e) == Some(libc::ESRCH) => None,
                Err(e) => return Err(Error::internal(&format!("ioctl(NS_GET_TGID_FROM_PIDNS, {pid})"), e)),
            },
            PidStrategy::Scan => self.scan(pid)?,
        };
        let Some(host_pid) = host_pid else { return Err(self.not_in_workspace(pid)) };
        let p = PinnedProcess::pin(host_pid)?;
        if !self.is_member(&p)? {
            return Err(self.not_in_workspace(pid));
        }
        // Pinned and inside: does it still have the requested PID, or did the
        // number get reused between translation and pinning?
        let now = match strategy {
            PidStrategy::Ioctl => sys::ns_get_tgid_in_pidns(&self.pidns, host_pid).ok(),
            PidStrategy::Scan => p.nspid()?.get(self.level).copied(),
        };
        if now != Some(pid) {
            return Err(Error::because(
                ErrorKind::NotFound,
                Reason::ProcessExited,
                format!("pid {pid} exited during the operation"),
            ));
        }
        p.ensure_alive()?;
        Ok(p)
    }

    /// Checks where a mount operation for process `p` (a member, from
    /// [`Container::resolve`]) would act, before it does anything. Allowed:
    /// the container init's mount namespace, or one owned by a user namespace
    /// at or below the container's (strictly below when the container has no
    /// user namespace of its own: the daemon's user namespace owns every host
    /// mount namespace); never the daemon's own; and a root at or below the
    /// container's root (walking `..` from the process's root), or, in a
    /// namespace made inside the container, a root mounted in that namespace.
    /// PERMISSION_DENIED naming the rule otherwise.
    pub fn mount_target(&self, p: PinnedProcess) -> Result<MountTarget> {
        let mntns = p.open("ns/mnt", OFlags::RDONLY)?;
        let root = p.open("root", OFlags::PATH | OFlags::DIRECTORY)?;
        let (daemon_mnt, daemon_user) = daemon_ns()?;
        let key = ns_key(&mntns)?;
        if key == daemon_mnt {
            return Err(Error::because(
                ErrorKind::PermissionDenied,
                Reason::HostMountNamespace,
                "pid is in the host's mount namespace, not the workspace's; a process that joined only the container's PID namespace (e.g. `nsenter --pid`) must also join its mount namespace (`nsenter --mount --pid`)",
            ));
        }
        let own = key == self.mntns_key;
        if !own && !self.owned_below(&mntns, daemon_user)? {
            return Err(Error::because(
                ErrorKind::PermissionDenied,
                Reason::ForeignMountNamespace,
                "the process's mount namespace is neither the container's nor one created inside it",
            ));
        }
        // In a namespace made inside the container (a ring, or a container
        // nested in one) the root may be anything mounted there: a ring that
        // pivot_root()s into the mark or into a nested container's rootfs
        // has no path back to the container's root, and everything in that
        // namespace came from the container. In the container's own
        // namespace the root must be at or below the container's.
        if !self.root_at_or_below(&root)? && (own || !root_in(&p, &root)?) {
            return Err(Error::because(
                ErrorKind::PermissionDenied,
                Reason::EscapesRoot,
                "the process's root is not at or below the container's root",
            ));
        }
        p.ensure_alive()?;
        Ok(MountTarget { process: p, mntns, root })
    }

    /// Whether namespace `ns` (any kind) is owned by a user namespace at or
    /// below the container's (strictly below if that is the daemon's): see
    /// [`Container::mount_target`]; also for network namespaces (netns.rs).
    pub(crate) fn owns_below(&self, ns: &OwnedFd) -> Result<bool> {
        let (_, daemon_user) = daemon_ns()?;
        self.owned_below(ns, daemon_user)
    }

    /// Whether mount namespace `mntns` is owned by a user namespace at or
    /// below the container's (strictly below if that is the daemon's).
    fn owned_below(&self, mntns: &OwnedFd, daemon_user: (u64, u64)) -> Result<bool> {
        let mut ns = match sys::ns_get_userns(mntns) {
            Ok(ns) => ns,
            Err(e) if errno_of(&e) == Some(libc::EPERM) => return Ok(false),
            Err(e) => return Err(Error::internal("ioctl(NS_GET_USERNS)", e)),
        };
        for depth in 0..MAX_PIDNS_DEPTH {
            if ns_key(&ns)? == self.userns_key {
                return Ok(depth > 0 || self.userns_key != daemon_user);
            }
            ns = match sys::ns_get_parent(&ns) {
                Ok(parent) => parent,
                Err(e) if errno_of(&e) == Some(libc::EPERM) => return Ok(false),
                Err(e) => return Err(Error::internal("ioctl(NS_GET_PARENT) on a user namespace", e)),
            };
        }
        Ok(false)
    }

    /// Whether the directory `root` (a process's root) is the container's
    /// root directory or lies below it: `..` from it, in its own mount tree,
    /// reaches the container's root before the top of that tree.
    fn root_at_or_below(&self, root: &OwnedFd) -> Result<bool> {
        let mut dir = root.try_clone().map_err(|e| Error::internal("dup(root)", e))?;
        let mut key = dir_key(&dir)?;
        for _ in 0..MAX_ROOT_DEPTH {
            if key == self.root_key {
                return Ok(true);
            }
            let up = openat(&dir, "..", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::internal("openat(..) from a process's root", e))?;
            let up_key = dir_key(&up)?;
            if up_key == key {
                let (a, b) = (mount_of(&up)?, mount_of(&dir)?);
                if a == b {
                    return Ok(false); // the top of its mount tree
                }
            }
            dir = up;
            key = up_key;
        }
        Ok(false)
    }

    /// Checks the process at the other end of connected unix socket `sock`:
    /// Ok when its PID namespace is the container's or below it,
    /// PERMISSION_DENIED otherwise. Uses the peer's pidfd from connect time
    /// (`SO_PEERPIDFD`, Linux 6.5+) so a reused PID cannot pass; falls back
    /// to `SO_PEERCRED`'s PID.
    pub fn check_peer(&self, sock: BorrowedFd<'_>) -> Result<Peer> {
        let cred =
            rustix::net::sockopt::socket_peercred(sock).map_err(|e| Error::internal("getsockopt(SO_PEERCRED)", e))?;
        let uid = cred.uid.as_raw();
        let gid = cred.gid.as_raw();
        let pinned = match sys::peer_pidfd(sock).map_err(|e| Error::internal("getsockopt(SO_PEERPIDFD)", e))? {
            Some(pidfd) => {
                let pid = pidfd_pid(&pidfd)?;
                let p = PinnedProcess::pin(pid)?;
                // The peer's own pidfd must still be alive: then the PID we
                // pinned has not been reused since connect.
                match sys::pidfd_alive(&pidfd) {
                    Ok(true) => p,
                    _ => {
                        return Err(Error::because(
                            ErrorKind::PermissionDenied,
                            Reason::ProcessExited,
                            "the connecting process exited",
                        ))
                    }
                }
            }
            None => PinnedProcess::pin(cred.pid.as_raw_nonzero().get())?,
        };
        if !self.is_member(&pinned)? {
            return Err(Error::because(
                ErrorKind::PermissionDenied,
                Reason::OutsideWorkspace,
                format!("connection from pid {} (uid {uid}) is not from inside this workspace", pinned.host_pid()),
            ));
        }
        let start_time = pinned.start_time()?;
        pinned.ensure_alive()?;
        Ok(Peer { pid: pinned.host_pid(), uid, gid, start_time })
    }

    /// The one answer for a PID that does not translate inside the
    /// workspace. It never depends on what exists on the host: an answer that
    /// differed for a host process with that number would let a workspace
    /// probe the host's PIDs.
    fn not_in_workspace(&self, pid: i32) -> Error {
        Error::because(
            ErrorKind::NotFound,
            Reason::NoSuchProcess,
            format!("no process with pid {pid} in this workspace; give a PID as seen inside the workspace"),
        )
    }

    /// Whether the pinned process's PID namespace is the container's or
    /// nested below it (walk up with NS_GET_PARENT).
    fn is_member(&self, p: &PinnedProcess) -> Result<bool> {
        let mut ns = p.open("ns/pid", OFlags::RDONLY)?;
        for _ in 0..MAX_PIDNS_DEPTH {
            if ns_key(&ns)? == self.pidns_key {
                return Ok(true);
            }
            ns = match sys::ns_get_parent(&ns) {
                Ok(parent) => parent,
                // EPERM: the parent is outside our view; we reached the top.
                Err(e) if errno_of(&e) == Some(libc::EPERM) => return Ok(false),
                Err(e) => return Err(Error::internal("ioctl(NS_GET_PARENT)", e)),
            };
        }
        Ok(false)
    }

    /// Fallback translation: the process whose `NSpid:` has `pid` at the
    /// container's level and that is a member of the container (a sibling
    /// namespace at the same depth can have the same number).
    fn scan(&self, pid: i32) -> Result<Option<i32>> {
        let entries = fs::read_dir(PROC).map_err(|e| Error::internal("readdir(/proc)", e))?;
        for entry in entries.flatten() {
            let Some(host_pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
            let Ok(p) = PinnedProcess::pin(host_pid) else { continue };
            let Ok(nspid) = p.nspid() else { continue };
            // A candidate that exits (or is a zombie, whose ns links are
            // gone) while we look is simply not the one.
            if nspid.get(self.level) == Some(&pid) && self.is_member(&p).unwrap_or(false) {
                return Ok(Some(host_pid));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nspid() {
        let s = "Name:\tsleep\nTgid:\t42\nNSpid:\t4242\t7\t1\nNSpgid:\t1\n";
        assert_eq!(parse_nspid(s), Some(vec![4242, 7, 1]));
        assert_eq!(parse_nspid("Name:\tx\n"), None);
        assert_eq!(parse_nspid("NSpid:\t12\tx\n"), None);
    }

    #[test]
    fn pid_range() {
        assert!(check_pid(0).is_err());
        assert!(check_pid(-5).is_err());
        assert!(check_pid(i32::MAX as i64 + 1).is_err());
        assert_eq!(check_pid(1).unwrap(), 1);
    }

    #[test]
    fn strategy_names_round_trip() {
        for s in [PidStrategy::Ioctl, PidStrategy::Scan] {
            assert_eq!(PidStrategy::parse(s.name()).unwrap(), Some(s));
        }
        assert_eq!(PidStrategy::parse("auto").unwrap(), None);
        assert!(PidStrategy::parse("bogus").is_err());
    }

    #[test]
    fn pidfd_probe_works_here() {
        // pidfd_open needs no privilege for our own process.
        assert!(probe_pidfd());
    }
}

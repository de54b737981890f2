//! The only module with `unsafe`: thin wrappers over syscalls and ioctls that
//! neither nix nor rustix wraps. Each returns `std::io::Result` and does
//! nothing but the call; policy lives in the callers.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `clock_gettime(CLOCK_BOOTTIME)` in nanoseconds.
pub fn boottime_ns() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec to write to; CLOCK_BOOTTIME always exists
    // on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// `sysconf(name)` (-1 when the value is unknown).
pub fn sysconf(name: libc::c_int) -> libc::c_long {
    // SAFETY: sysconf takes an integer and returns one; no memory is touched.
    unsafe { libc::sysconf(name) }
}

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `ioctl(pidns, NS_GET_TGID_FROM_PIDNS, pid)`: the thread-group id, in the
/// caller's PID namespace, of the process that is `pid` in `pidns` (Linux 6.11+).
pub fn ns_get_tgid_from_pidns(pidns: impl AsFd, pid: i32) -> io::Result<i32> {
    // SAFETY: the ioctl takes its argument by value (no pointer is passed) and
    // returns an integer or -1/errno; `pidns` is a valid open fd for the call.
    cvt(unsafe { libc::ioctl(pidns.as_fd().as_raw_fd(), libc::NS_GET_TGID_FROM_PIDNS, pid as libc::c_ulong) })
}

/// `ioctl(pidns, NS_GET_TGID_IN_PIDNS, pid)`: the pid, in `pidns`, of the
/// process whose thread-group id is `pid` in the caller's namespace (6.11+).
pub fn ns_get_tgid_in_pidns(pidns: impl AsFd, pid: i32) -> io::Result<i32> {
    // SAFETY: as above; argument by value, integer result.
    cvt(unsafe { libc::ioctl(pidns.as_fd().as_raw_fd(), libc::NS_GET_TGID_IN_PIDNS, pid as libc::c_ulong) })
}

/// `ioctl(ns, NS_GET_PARENT)`: an fd for the parent namespace. EPERM when the
/// parent lies outside the caller's namespace (i.e. `ns` is the top).
pub fn ns_get_parent(ns: impl AsFd) -> io::Result<OwnedFd> {
    // SAFETY: NS_GET_PARENT takes no argument and returns a new fd, which we
    // own exclusively from here on.
    let fd = cvt(unsafe { libc::ioctl(ns.as_fd().as_raw_fd(), libc::NS_GET_PARENT) })?;
    // SAFETY: `fd` was just returned by the kernel and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(ns, NS_GET_USERNS)`: an fd for the user namespace that owns `ns`.
/// EPERM when that user namespace lies outside the caller's.
pub fn ns_get_userns(ns: impl AsFd) -> io::Result<OwnedFd> {
    // SAFETY: NS_GET_USERNS takes no argument and returns a new fd, which we
    // own exclusively from here on.
    let fd = cvt(unsafe { libc::ioctl(ns.as_fd().as_raw_fd(), libc::NS_GET_USERNS) })?;
    // SAFETY: `fd` was just returned by the kernel and is not owned elsewhere.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `ioctl(userns, NS_GET_OWNER_UID)`: the uid that owns user namespace
/// `userns` (the euid of its creator), as seen in the caller's user namespace.
pub fn ns_get_owner_uid(userns: impl AsFd) -> io::Result<u32> {
    let mut uid: libc::uid_t = 0;
    // SAFETY: NS_GET_OWNER_UID writes one uid_t through the pointer, which
    // points at a live, properly aligned local for the whole call.
    cvt(unsafe { libc::ioctl(userns.as_fd().as_raw_fd(), libc::NS_GET_OWNER_UID, &mut uid as *mut libc::uid_t) })?;
    Ok(uid)
}

/// Starts a child (see [`spawn_waiting_child`]) that makes the *lock namespace*: a mount namespace owned by
/// a user namespace of its own, holding nothing but `tree`. The child enters
/// a private copy of the caller's mount namespace (`unshare(CLONE_NEWNS)`,
/// then `MS_REC|MS_PRIVATE` on `/`, so nothing propagates in or out),
/// attaches the detached mount `tree` at `dir`, makes it the root
/// (`pivot_root(".", ".")`, old root detached), and then moves into a new
/// user and mount namespace (`unshare(CLONE_NEWUSER|CLONE_NEWNS)`): that
/// copy, owned by the new user namespace, is the lock namespace. It then waits like
/// [`spawn_userns_child`]: the caller opens its `ns/mnt`, then finishes the
/// returned [`WaitingChild`].
pub fn spawn_lock_ns_child(tree: BorrowedFd<'_>, dir: &std::ffi::CStr) -> io::Result<WaitingChild> {
    let keep = [tree];
    let tree = tree.as_raw_fd();
    // SAFETY: plain syscalls with valid arguments (the caller's C string and
    // static ones), no allocation: see `spawn_waiting_child`. `tree` is
    // kept open in the child.
    spawn_waiting_child("child could not make the lock namespace", &keep, || unsafe {
        libc::unshare(libc::CLONE_NEWNS) == 0
            && libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) == 0
            && libc::syscall(
                libc::SYS_move_mount,
                tree,
                c"".as_ptr(),
                libc::AT_FDCWD,
                dir.as_ptr(),
                0x4 as libc::c_uint, // MOVE_MOUNT_F_EMPTY_PATH
            ) == 0
            // Make `tree` the root and drop every other mount, so the
            // lock namespace pins no host filesystem (a copy of the
            // host's mounts would keep their devices busy).
            && libc::chdir(dir.as_ptr()) == 0
            && libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) == 0
            && libc::umount2(c".".as_ptr(), libc::MNT_DETACH) == 0
            && libc::chdir(c"/".as_ptr()) == 0
            && libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) == 0
    })
}

/// A child started by [`spawn_waiting_child`], waiting on a pipe. Dropping
/// it (or [`WaitingChild::finish`]) closes the pipe, so the child exits,
/// reaps it and only then frees the stack it ran on.
pub struct WaitingChild {
    pid: nix::unistd::Pid,
    hold: Option<OwnedFd>,
    stack: Option<ChildStack>,
}

impl WaitingChild {
    /// The child's PID (in the caller's PID namespace).
    pub fn pid(&self) -> nix::unistd::Pid {
        self.pid
    }

    /// Lets the child exit and reaps it.
    pub fn finish(mut self) {
        self.reap();
    }

    fn reap(&mut self) {
        if self.hold.take().is_none() {
            return;
        }
        loop {
            // __WALL: the child has no exit signal (see `spawn_waiting_child`).
            match nix::sys::wait::waitpid(self.pid, Some(nix::sys::wait::WaitPidFlag::__WALL)) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {
                    // The child has exited: nothing runs on its stack.
                    drop(self.stack.take());
                }
                // Not ours to reap (cannot happen: the child is only ever
                // waited for here). Whether it still runs is unknown, so its
                // stack is leaked rather than freed under it.
                Err(_) => std::mem::forget(self.stack.take()),
            }
            return;
        }
    }
}

impl Drop for WaitingChild {
    fn drop(&mut self) {
        self.reap();
    }
}

/// An mmap'ed stack for a `CLONE_VM` child, its lowest page a guard
/// (`PROT_NONE`): an overflow faults instead of writing into the caller's
/// memory. Unmapped on drop, which [`WaitingChild`] does only after reaping.
struct ChildStack {
    base: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is owned exclusively by this value; it is plain memory.
unsafe impl Send for ChildStack {}

/// The child's stack: raw syscalls and a few Rust frames need a few KiB;
/// pages never touched cost nothing.
const CHILD_STACK: usize = 128 << 10;

impl ChildStack {
    fn new() -> io::Result<Self> {
        let page = sysconf(libc::_SC_PAGESIZE).max(4096) as usize;
        let len = CHILD_STACK + page;
        // SAFETY: an anonymous private mapping at an address the kernel picks;
        // no existing memory is affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = ChildStack { base, len };
        // SAFETY: the first page lies inside the mapping just made, which
        // nothing else uses yet.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer (the stack grows down; 16-byte aligned).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, not dereferenced here.
        unsafe { self.base.cast::<u8>().add(self.len) }.cast()
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and, by `WaitingChild`, no child runs
        // on it any more.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// At most this many fds survive into the child (its two pipe ends and
/// what `setup` uses).
const CHILD_KEEP: usize = 4;

/// What the child of [`spawn_waiting_child`] gets: its setup, the raw fds
/// of its pipe ends and the fds it keeps (sorted; it reads all of these
/// onto its own stack before reporting).
struct ChildArgs<F> {
    setup: Option<F>,
    ready_w: libc::c_int,
    hold_r: libc::c_int,
    keep: [libc::c_int; CHILD_KEEP],
    nkeep: usize,
}

/// The child's entry point, on its own stack, sharing the caller's memory.
extern "C" fn waiting_child_main<F: FnOnce() -> bool>(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs<F>` of `spawn_waiting_child`, which
    // stays alive and untouched by the parent until this child writes to
    // `ready_w` (the parent blocks reading the other end); the fds are read
    // into locals before that write, and `args` is not used after it.
    let args = unsafe { &mut *arg.cast::<ChildArgs<F>>() };
    let (ready_w, hold_r, keep, nkeep) = (args.ready_w, args.hold_r, args.keep, args.nkeep);
    // Close every fd but stdio and `keep` in the child's own copy of the fd
    // table (no CLONE_FILES): a copy of another child's pipe end, made by a
    // concurrent call on another thread, would keep that child waiting (and
    // the two callers each waiting for the other's child); and the parent's
    // end of our own `hold` pipe must be the only one.
    let mut lo: libc::c_uint = 3;
    let mut closed = true;
    for &k in &keep[..nkeep.min(CHILD_KEEP)] {
        let k = k as libc::c_uint;
        if k > lo {
            // SAFETY: closes fds of the child's own table; no memory is passed.
            closed &= unsafe { libc::syscall(libc::SYS_close_range, lo, k - 1, 0 as libc::c_uint) } == 0;
        }
        lo = lo.max(k + 1);
    }
    // SAFETY: as above.
    closed &= unsafe { libc::syscall(libc::SYS_close_range, lo, libc::c_uint::MAX, 0 as libc::c_uint) } == 0;
    let ok = closed
        && match args.setup.take() {
            Some(setup) => setup(),
            None => false,
        };
    // SAFETY: the fds are open in the child's fd table for these calls; the
    // rustix calls are raw syscalls (no errno, no allocation, no locks).
    unsafe {
        let _ = rustix::io::write(BorrowedFd::borrow_raw(ready_w), &[ok as u8]);
        let mut x = [0u8; 1];
        // Blocks until the parent closes its end (or exits).
        let _ = rustix::io::read(BorrowedFd::borrow_raw(hold_r), &mut x);
        libc::_exit(0)
    }
}

/// `rt_sigprocmask(how, set, old)` for the calling thread, raw (kernel sigset
/// of 64 bits).
fn rt_sigprocmask(how: libc::c_int, set: &[u64; 1], old: Option<&mut [u64; 1]>) -> io::Result<()> {
    let old = old.map_or(std::ptr::null_mut(), |o| o.as_mut_ptr());
    // SAFETY: `set` and `old` (or null) point at 8 valid bytes, the size
    // passed; the call changes only this thread's signal mask.
    let r = unsafe { libc::syscall(libc::SYS_rt_sigprocmask, how, set.as_ptr(), old, 8usize) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Starts a child that runs `setup` (raw syscalls only: see below), reports
/// whether it succeeded and then waits until the returned [`WaitingChild`]
/// is finished or dropped. `failed` is the error when `setup` returns false.
///
/// The child is made with `clone(CLONE_VM)` (no exit signal) on a small stack of
/// its own instead of `fork()`: copying the page tables of the large,
/// multi-threaded daemon was most of the cost (glibc's `posix_spawn` does the
/// same). Why it is safe:
/// - the child shares the caller's memory but runs only `setup` and raw
///   syscalls on its own stack: no allocation, no locks, no Rust destructors,
///   no return into the caller's frames (it leaves with `_exit`);
/// - everything it reads from the caller's memory (`setup`'s captures, the
///   fds) stays alive until it reports on `ready`, which the caller waits for
///   before returning; afterwards it touches only its own stack;
/// - the libc calls in `setup` may set `errno` in the caller thread's TLS
///   (no `CLONE_SETTLS`): the caller reads no errno from the clone until the
///   report (rustix syscalls), and the child sets none after it;
/// - all signals are blocked around the clone, and the child never unblocks
///   them, so no signal handler of the daemon runs in it (fatal signals and
///   faults, e.g. on the guard page, still end it);
/// - the fd table, fs info and namespaces are the child's own copies (no
///   CLONE_FILES/CLONE_FS), so its `unshare` and mounts stay in it; it
///   closes every fd but stdio, its pipe ends and `keep` first, so it holds
///   no other child's pipe open (fork had the same copy: two concurrent
///   calls could each hold the other's child waiting);
/// - its stack is unmapped only after `waitpid` has reaped it; it exits with
///   no signal to its parent (reaped with `__WALL`; should the daemon die
///   first, the kernel gives the orphan SIGCHLD towards its new parent).
fn spawn_waiting_child<F: FnOnce() -> bool>(
    failed: &str,
    keep: &[BorrowedFd<'_>],
    setup: F,
) -> io::Result<WaitingChild> {
    if keep.len() + 2 > CHILD_KEEP {
        return Err(io::Error::other(format!("a waiting child keeps at most {} fds", CHILD_KEEP - 2)));
    }
    let (ready_r, ready_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let (hold_r, hold_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    let stack = ChildStack::new()?;
    let mut kept = [0; CHILD_KEEP];
    kept[0] = ready_w.as_raw_fd();
    kept[1] = hold_r.as_raw_fd();
    for (slot, fd) in kept[2..].iter_mut().zip(keep) {
        *slot = fd.as_raw_fd();
    }
    let nkeep = keep.len() + 2;
    kept[..nkeep].sort_unstable();
    let mut args =
        ChildArgs { setup: Some(setup), ready_w: ready_w.as_raw_fd(), hold_r: hold_r.as_raw_fd(), keep: kept, nkeep };
    // Every signal, glibc's internal ones (SIGCANCEL, SIGSETXID) included,
    // which `pthread_sigmask` would leave out: hence the raw syscall.
    let all = [!0u64];
    let mut old = [0u64];
    rt_sigprocmask(libc::SIG_SETMASK, &all, Some(&mut old))?;
    // SAFETY: `waiting_child_main::<F>` is the entry for exactly this
    // `ChildArgs<F>`; the stack is a fresh mapping whose top is passed and
    // which outlives the child (see `WaitingChild`); the child's contract
    // is documented above.
    let pid = unsafe {
        libc::clone(
            waiting_child_main::<F>,
            stack.top(),
            // No exit signal: the child's exit sends no SIGCHLD, so it does not
            // wake Node's main thread (libuv's SIGCHLD handler and its
            // waitpid round over every child process it started).
            libc::CLONE_VM,
            (&mut args as *mut ChildArgs<F>).cast(),
        )
    };
    let clone_err = io::Error::last_os_error();
    let _ = rt_sigprocmask(libc::SIG_SETMASK, &old, None);
    if pid < 0 {
        return Err(clone_err);
    }
    let mut child = WaitingChild { pid: nix::unistd::Pid::from_raw(pid), hold: Some(hold_w), stack: Some(stack) };
    drop(ready_w);
    drop(hold_r);
    let mut b = [0u8; 1];
    let n = loop {
        match rustix::io::read(&ready_r, &mut b) {
            Err(rustix::io::Errno::INTR) => continue,
            r => break r,
        }
    };
    // The child has reported (or exited): `args` is no longer used by it.
    drop(args);
    match n {
        Ok(1) if b[0] == 1 => Ok(child),
        Ok(_) => {
            child.reap();
            Err(io::Error::other(failed.to_string()))
        }
        Err(e) => {
            child.reap();
            Err(e.into())
        }
    }
}

/// Whether the process of `pidfd` has exited (a pidfd polls readable from
/// its exit on, also while it is a zombie that is not reaped yet).
pub fn pidfd_exited(pidfd: impl AsFd) -> io::Result<bool> {
    let mut fds = [rustix::event::PollFd::new(&pidfd, rustix::event::PollFlags::IN)];
    let n = rustix::event::poll(&mut fds, Some(&rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 }))?;
    Ok(n > 0 && fds[0].revents().intersects(rustix::event::PollFlags::IN | rustix::event::PollFlags::HUP))
}

/// `pidfd_send_signal(pidfd, 0)`: Ok(true) while the process exists (a zombie
/// still holds its pid, so the pid cannot be reused), Ok(false) once reaped.
pub fn pidfd_alive(pidfd: impl AsFd) -> io::Result<bool> {
    // SAFETY: signal 0 sends nothing; null siginfo and flags 0 are documented
    // as valid; the fd is valid for the duration of the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_fd().as_raw_fd(),
            0 as libc::c_int,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ESRCH) => Ok(false),
        _ => Err(e),
    }
}

/// `struct mount_attr` of `mount_setattr(2)`.
#[repr(C)]
#[derive(Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

fn mount_setattr(dfd: BorrowedFd<'_>, recursive: bool, attr: &MountAttr) -> io::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a
    // properly sized and aligned `struct mount_attr` that outlives the call,
    // and `dfd` is a valid fd for its duration.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dfd.as_raw_fd(),
            c"".as_ptr(),
            flags as libc::c_uint,
            attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `mount_setattr(dfd, "", AT_EMPTY_PATH | (AT_RECURSIVE), {attr_set})`.
pub fn mount_setattr_fd(dfd: impl AsFd, attr_set: u64, recursive: bool) -> io::Result<()> {
    mount_setattr(dfd.as_fd(), recursive, &MountAttr { attr_set, ..Default::default() })
}

/// Makes the mount `dfd` refers to shared (`MS_SHARED`), not recursively.
pub fn mount_make_shared(dfd: impl AsFd) -> io::Result<()> {
    mount_setattr(dfd.as_fd(), false, &MountAttr { propagation: libc::MS_SHARED, ..Default::default() })
}

/// Makes the mount tree at `dfd` private (`MS_PRIVATE`), recursively.
pub fn mount_make_rprivate(dfd: impl AsFd) -> io::Result<()> {
    mount_setattr(dfd.as_fd(), true, &MountAttr { propagation: libc::MS_PRIVATE, ..Default::default() })
}

/// Turns the detached mount `dfd` into an idmapped mount using the id
/// mapping of the user namespace `userns` (Linux 5.12+).
pub fn mount_idmap(dfd: impl AsFd, userns: impl AsFd) -> io::Result<()> {
    let attr =
        MountAttr { attr_set: MOUNT_ATTR_IDMAP, userns_fd: userns.as_fd().as_raw_fd() as u64, ..Default::default() };
    mount_setattr(dfd.as_fd(), false, &attr)
}

/// Starts a child that enters a new user namespace and waits until the
/// returned [`WaitingChild`] is finished (or dropped), which reaps it. The
/// caller writes its maps and opens its `ns/user` meanwhile.
pub fn spawn_userns_child() -> io::Result<WaitingChild> {
    // SAFETY: one plain syscall: see `spawn_waiting_child`.
    spawn_waiting_child("child could not create a user namespace", &[], || unsafe {
        libc::unshare(libc::CLONE_NEWUSER) == 0
    })
}

/// Creates a proc instance for the PID namespace `pidns` on kernels whose
/// proc lacks the `pidns` mount option. Must run on a throwaway thread: it
/// makes the calling thread's future children join `pidns`, forks a helper
/// there that creates the (detached) mount, and receives the mount's fd over a
/// socketpair. The helper is reaped before returning.
pub fn proc_via_helper(
    _on: &crate::nsthread::NsThread,
    pidns: impl AsFd,
    attrs: rustix::mount::MountAttrFlags,
) -> io::Result<OwnedFd> {
    use rustix::net::{
        recvmsg, socketpair, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags,
        SocketType,
    };
    use std::io::IoSliceMut;
    use std::mem::MaybeUninit;

    nix::sched::setns(pidns.as_fd(), nix::sched::CloneFlags::CLONE_NEWPID)?;
    let (ours, theirs) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
    // SAFETY: the process is multi-threaded, so the child may only make
    // async-signal-safe calls until it exits: `helper_child` makes raw
    // syscalls on stack buffers (no allocation, no locks) and `_exit`s.
    match unsafe { nix::unistd::fork() }? {
        nix::unistd::ForkResult::Child => {
            let code = helper_child(&theirs, attrs);
            // SAFETY: `_exit` ends the child without running destructors or
            // atexit handlers that could touch the parent's inherited state.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let mut buf = [0u8; 4];
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut anc = RecvAncillaryBuffer::new(&mut space);
            let res = recvmsg(&ours, &mut [IoSliceMut::new(&mut buf)], &mut anc, RecvFlags::CMSG_CLOEXEC);
            let fd = anc.drain().find_map(|m| match m {
                RecvAncillaryMessage::ScmRights(mut fds) => fds.next(),
                _ => None,
            });
            let _ = nix::sys::wait::waitpid(child, None);
            res?;
            match fd {
                Some(fd) => Ok(fd),
                None => {
                    let errno = i32::from_ne_bytes(buf);
                    Err(io::Error::from_raw_os_error(if errno > 0 { errno } else { libc::EIO }))
                }
            }
        }
    }
}

/// The forked helper: raw syscalls only (see `proc_via_helper`).
fn helper_child(sock: &OwnedFd, attrs: rustix::mount::MountAttrFlags) -> i32 {
    use rustix::mount::{fsconfig_create, fsmount, fsopen, FsMountFlags, FsOpenFlags};
    use rustix::net::{sendmsg, SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
    use std::io::IoSlice;
    use std::mem::MaybeUninit;

    let made = (|| {
        let fs = fsopen(c"proc", FsOpenFlags::FSOPEN_CLOEXEC)?;
        fsconfig_create(&fs)?;
        fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
    })();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    match made {
        Ok(mnt) => {
            let fds = [mnt.as_fd()];
            anc.push(SendAncillaryMessage::ScmRights(&fds));
            let ok = sendmsg(sock, &[IoSlice::new(&[0u8; 4])], &mut anc, SendFlags::empty()).is_ok();
            if ok {
                0
            } else {
                1
            }
        }
        Err(e) => {
            let _ = sendmsg(sock, &[IoSlice::new(&e.raw_os_error().to_ne_bytes())], &mut anc, SendFlags::empty());
            1
        }
    }
}

/// Makes `cmd` start in a new, fully private mount namespace of its own
/// (`rprivate`, so whatever it mounts stays out of the daemon's and the
/// host's mount table), then mounts a tmpfs (`nosuid,nodev`,
/// mode 0700, options `data`, e.g. `size=..,nr_inodes=..`) at `store` in that
/// namespace and makes the directories `dirs` (0755) in it: storage private to
/// the child, invisible in every other mount table, gone with its namespace.
/// With `lower` = (detached mount fd, path under `store`), the detached tree
/// is then attached at that path (a new directory, 0700): the fd must stay
/// open until the command is spawned.
pub fn in_private_mount_ns_with_tmpfs(
    cmd: &mut std::process::Command,
    store: std::ffi::CString,
    data: std::ffi::CString,
    dirs: Vec<std::ffi::CString>,
    lower: Option<(BorrowedFd<'_>, std::ffi::CString)>,
) {
    let lower = lower.map(|(fd, path)| (fd.as_raw_fd(), path));
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only makes
    // raw syscalls (unshare, mount, mkdir, move_mount) with arguments built
    // before the fork (borrowed, not allocated, in the child); the lower fd
    // is open in the parent until spawn returns (the caller's borrow).
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(io::Error::last_os_error());
            }
            let flags = libc::MS_REC | libc::MS_PRIVATE;
            if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), flags, std::ptr::null()) != 0 {
                return Err(io::Error::last_os_error());
            }
            let flags = libc::MS_NOSUID | libc::MS_NODEV;
            if libc::mount(c"iwsd-fuse-store".as_ptr(), store.as_ptr(), c"tmpfs".as_ptr(), flags, data.as_ptr().cast())
                != 0
            {
                return Err(io::Error::last_os_error());
            }
            for d in &dirs {
                if libc::mkdir(d.as_ptr(), 0o755) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            if let Some((fd, path)) = &lower {
                if libc::mkdir(path.as_ptr(), 0o700) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // move_mount(fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH)
                let r = libc::syscall(
                    libc::SYS_move_mount,
                    *fd,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    path.as_ptr(),
                    0x0000_0004 as libc::c_uint,
                );
                if r != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// `SO_PEERPIDFD` (Linux 6.5): a pidfd of the peer of a unix socket, taken
/// at connect time, so PID reuse cannot impersonate it.
const SO_PEERPIDFD: libc::c_int = 77;

/// The peer's pidfd of connected unix socket `sock`, if the kernel has
/// `SO_PEERPIDFD`; Ok(None) when it does not.
pub fn peer_pidfd(sock: impl AsFd) -> io::Result<Option<OwnedFd>> {
    let mut fd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `fd` and `len` are valid, properly sized out-parameters that
    // outlive the call; the socket fd is valid for its duration.
    let r = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut fd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOPROTOOPT) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Duplicates a raw fd owned by someone else (Node's socket), so an
/// operation running later owns a reference of its own.
pub fn dup_raw(fd: i32) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: the fd is only borrowed for the duration of this call, while
    // the caller (on the JS thread) keeps it open; `fcntl` validates it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(rustix::io::fcntl_dupfd_cloexec(borrowed, 0)?)
}

/// `statmount(2)`'s syscall number: the same on every architecture (Linux 6.8+).
const SYS_STATMOUNT: libc::c_long = 457;
const STATMOUNT_MNT_BASIC: u64 = 0x2;

#[repr(C)]
struct MntIdReq {
    size: u32,
    spare: u32,
    mnt_id: u64,
    param: u64,
}

/// `struct statmount` up to the fields used here, padded like the kernel's.
#[repr(C)]
#[allow(dead_code)]
struct StatMount {
    size: u32,
    spare1: u32,
    mask: u64,
    sb_dev_major: u32,
    sb_dev_minor: u32,
    sb_magic: u64,
    sb_flags: u32,
    fs_type: u32,
    mnt_id: u64,
    mnt_parent_id: u64,
    mnt_id_old: u32,
    mnt_parent_id_old: u32,
    mnt_attr: u64,
    mnt_propagation: u64,
    mnt_peer_group: u64,
    mnt_master: u64,
    propagate_from: u64,
    mnt_root: u32,
    mnt_point: u32,
    spare2: [u64; 50],
}

/// Propagation of a mount, as `statmount(STATMOUNT_MNT_BASIC)` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountPropagation {
    /// `MS_SHARED` / `MS_SLAVE` / `MS_PRIVATE` / `MS_UNBINDABLE` bits.
    pub flags: u64,
    /// The peer group (`shared:N` in mountinfo), 0 if none.
    pub peer_group: u64,
}

/// `statmount(2)` for the mount with unique id `mnt_id` in the calling
/// thread's mount namespace (Linux 6.8+): its propagation.
pub fn statmount_propagation(mnt_id: u64) -> io::Result<MountPropagation> {
    let req = MntIdReq { size: 24, spare: 0, mnt_id, param: STATMOUNT_MNT_BASIC };
    // SAFETY: all-zero bytes are a valid `StatMount` (integers only).
    let mut buf: StatMount = unsafe { std::mem::zeroed() };
    // SAFETY: `req` is a valid mnt_id_req of the size it states (VER0); `buf`
    // is writable for the size passed; the kernel writes at most that many bytes.
    let r = unsafe {
        libc::syscall(
            SYS_STATMOUNT,
            &req as *const MntIdReq,
            &mut buf as *mut StatMount,
            std::mem::size_of::<StatMount>(),
            0,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if buf.mask & STATMOUNT_MNT_BASIC == 0 {
        return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
    }
    Ok(MountPropagation { flags: buf.mnt_propagation, peer_group: buf.mnt_peer_group })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gone(pid: nix::unistd::Pid) -> bool {
        !std::path::Path::new(&format!("/proc/{}", pid.as_raw())).exists()
    }

    fn status_field(pid: &str, field: &str) -> String {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        st.lines().find(|l| l.starts_with(field)).unwrap().to_string()
    }

    #[test]
    fn waiting_child_runs_setup_waits_and_is_reaped() {
        let hits = std::sync::atomic::AtomicU32::new(0);
        let before = status_field("thread-self", "SigBlk:");
        let child = spawn_waiting_child("setup failed", &[], || {
            // Shared memory (CLONE_VM): the caller sees this store.
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            true
        })
        .unwrap();
        let pid = child.pid();
        assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "setup ran once, in shared memory");
        // It waits, with every signal blocked (no handler of ours runs in it),
        // while the caller's own mask is back as it was.
        assert!(!gone(pid));
        // All but SIGKILL and SIGSTOP, which cannot be blocked (glibc's own
        // SIGCANCEL and SIGSETXID included).
        assert_eq!(status_field(&pid.as_raw().to_string(), "SigBlk:"), "SigBlk:\tfffffffffffbfeff");
        assert_eq!(status_field("thread-self", "SigBlk:"), before, "the caller's signal mask is restored");
        // Its own process, not a thread of ours.
        assert_ne!(status_field(&pid.as_raw().to_string(), "Tgid:"), status_field("self", "Tgid:"));
        child.finish();
        assert!(gone(pid), "the child is reaped (no zombie)");
    }

    #[test]
    fn waiting_child_failure_is_an_error_and_reaped() {
        let pid = std::cell::Cell::new(0);
        let e = spawn_waiting_child("setup said no", &[], || {
            // SAFETY: a plain syscall.
            pid.set(unsafe { libc::getpid() });
            false
        })
        .err()
        .expect("a failed setup is an error");
        assert_eq!(e.to_string(), "setup said no");
        assert!(gone(nix::unistd::Pid::from_raw(pid.get())), "the failed child is reaped");
    }

    #[test]
    fn concurrent_waiting_children_hold_no_other_childs_pipe() {
        // Children started at the same time from several threads: each must
        // exit when its own caller finishes it, whatever the others do (a
        // child holding a copy of another's pipe end kept it waiting: the
        // threads below would hang on their `finish`).
        let barrier = std::sync::Barrier::new(4);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        barrier.wait();
                        let child = spawn_waiting_child("no", &[], || true).unwrap();
                        let pid = child.pid();
                        barrier.wait();
                        child.finish();
                        assert!(gone(pid));
                    }
                });
            }
        });
        // And the child keeps nothing but stdio and its two pipe ends.
        let child = spawn_waiting_child("no", &[], || true).unwrap();
        let fds = std::fs::read_dir(format!("/proc/{}/fd", child.pid().as_raw())).unwrap().count();
        assert!(fds <= 5, "the child has {fds} fds");
        child.finish();
    }

    #[inline(never)]
    fn deep(n: u64) -> u64 {
        let buf = std::hint::black_box([n as u8; 4096]);
        if n == 0 {
            buf[0] as u64
        } else {
            deep(n - 1) + std::hint::black_box(buf[1]) as u64
        }
    }

    #[test]
    fn waiting_child_stack_overflow_hits_the_guard_and_kills_only_the_child() {
        // 1 MiB of frames on a 128 KiB stack: the guard page faults; only the
        // child dies (it is its own thread group), the caller gets an error.
        let e = spawn_waiting_child("child died", &[], || deep(256) != u64::MAX).err().expect("the child died");
        assert_eq!(e.to_string(), "child died");
        let alive = spawn_waiting_child("no", &[], || true).unwrap();
        alive.finish();
    }

    #[test]
    fn userns_child_is_in_a_new_user_namespace() {
        let Ok(child) = spawn_userns_child() else {
            // Unprivileged user namespaces may be disabled for non-root.
            assert!(!rustix::process::geteuid().is_root(), "root can create a user namespace");
            eprintln!("SKIPPED userns_child_is_in_a_new_user_namespace: no user namespaces for this user");
            return;
        };
        let pid = child.pid();
        let theirs = std::fs::read_link(format!("/proc/{}/ns/user", pid.as_raw())).unwrap();
        let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
        assert_ne!(theirs, ours);
        drop(child);
        assert!(gone(pid), "dropping the handle reaps the child");
    }
}

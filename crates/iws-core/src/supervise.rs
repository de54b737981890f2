//! What a supervised daemon needs from the host beyond its sockets: one
//! instance per state directory (an `flock` on `<state>/iwsd.lock`) and
//! systemd readiness (`sd_notify` datagrams on `$NOTIFY_SOCKET`), and as
//! many file descriptors as the host allows it (`RLIMIT_NOFILE`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;

/// An exclusive `flock` on a lock file, held until dropped (or until the
/// process dies: the kernel releases it with the last descriptor). The
/// descriptor is close-on-exec, so helpers the daemon starts never hold it.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// The outcome of [`StateLock::acquire`].
#[derive(Debug)]
pub enum Acquire {
    /// Ours; the file now holds our PID.
    Locked(StateLock),
    /// Another process holds it; `pid` is what the holder wrote (None if it
    /// has not yet written it, or wrote garbage).
    Held { pid: Option<u32> },
}

impl StateLock {
    /// Takes the lock at `path` without waiting, creating the file (mode
    /// 0600, never through a symlink) if needed, and writes our PID into it.
    /// The file is never removed: removing a lock file races with the next
    /// holder.
    pub fn acquire(path: &Path) -> io::Result<Acquire> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        match flock(file.as_fd(), FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {
                file.set_len(0)?;
                file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)?;
                Ok(Acquire::Locked(StateLock { _file: file }))
            }
            Err(Errno::WOULDBLOCK) => {
                let mut s = String::new();
                file.read_to_string(&mut s)?;
                Ok(Acquire::Held { pid: s.trim().parse().ok() })
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Sends one `sd_notify(3)` datagram (e.g. `READY=1`) to `socket`, the value
/// of `$NOTIFY_SOCKET`: an absolute path, or `@name` for an abstract socket.
pub fn sd_notify(socket: &str, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let sent = if let Some(name) = socket.strip_prefix('@') {
        sock.send_to_addr(state.as_bytes(), &SocketAddr::from_abstract_name(name.as_bytes())?)?
    } else if socket.starts_with('/') {
        sock.send_to(state.as_bytes(), socket)?
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "NOTIFY_SOCKET must be an absolute path or start with @",
        ));
    };
    if sent != state.len() {
        return Err(io::Error::other(format!("sd_notify: sent {sent} of {} bytes", state.len())));
    }
    Ok(())
}

/// The `RLIMIT_NOFILE` limits after raising the soft limit to the hard one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    /// The soft limit before the call.
    pub before: u64,
    /// The soft limit now (the hard limit, unless raising failed).
    pub soft: u64,
    pub hard: u64,
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit (every
/// connection of every workspace is a descriptor; the default soft limit of
/// 1024 is what a few hundred idle connections exhaust). Never lowers it.
pub fn raise_nofile_limit() -> io::Result<NofileLimit> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    // `None` is RLIM_INFINITY.
    let finite = |v: Option<u64>| v.unwrap_or(libc::RLIM_INFINITY);
    let lim = getrlimit(Resource::Nofile);
    let (before, hard) = (finite(lim.current), finite(lim.maximum));
    if before < hard {
        setrlimit(Resource::Nofile, Rlimit { current: lim.maximum, maximum: lim.maximum }).map_err(io::Error::from)?;
        return Ok(NofileLimit { before, soft: hard, hard });
    }
    Ok(NofileLimit { before, soft: before, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("iws-supervise-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn second_lock_sees_the_holder_and_a_released_lock_is_free_again() {
        let d = tmp("lock");
        let p = d.join("iwsd.lock");
        let first = match StateLock::acquire(&p).unwrap() {
            Acquire::Locked(l) => l,
            Acquire::Held { .. } => panic!("fresh lock held"),
        };
        // flock locks belong to the open file description: a second open in
        // the same process conflicts like another process would.
        match StateLock::acquire(&p).unwrap() {
            Acquire::Held { pid } => assert_eq!(pid, Some(std::process::id())),
            Acquire::Locked(_) => panic!("locked twice"),
        }
        drop(first);
        assert!(matches!(StateLock::acquire(&p).unwrap(), Acquire::Locked(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn lock_never_follows_a_symlink() {
        let d = tmp("symlink");
        std::os::unix::fs::symlink(d.join("elsewhere"), d.join("iwsd.lock")).unwrap();
        assert!(StateLock::acquire(&d.join("iwsd.lock")).is_err());
        assert!(!d.join("elsewhere").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn notify_reaches_a_path_and_an_abstract_socket() {
        let d = tmp("notify");
        let p = d.join("notify.sock");
        let rx = UnixDatagram::bind(&p).unwrap();
        sd_notify(p.to_str().unwrap(), "READY=1\nSTATUS=ok").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");

        let name = format!("iws-supervise-test-{}", std::process::id());
        let rx = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        sd_notify(&format!("@{name}"), "READY=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        assert!(sd_notify("relative.sock", "READY=1").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn nofile_soft_limit_is_raised_to_the_hard_limit() {
        let l = raise_nofile_limit().unwrap();
        assert_eq!(l.soft, l.hard);
        assert!(l.before <= l.soft);
        // Idempotent.
        assert_eq!(raise_nofile_limit().unwrap(), NofileLimit { before: l.soft, soft: l.soft, hard: l.hard });
    }
}

//! Mount propagation: a new mount must not be copied into the daemon's mount
//! namespace (the host's), nor, for MountProc/MountSysfs, into other
//! namespaces of the workspace's peer groups. Decided from `statmount(2)`
//! where it works, else from mountinfo.

use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Mode, OFlags, StatxFlags};

use crate::error::{Error, ErrorKind, Reason, Result};
use crate::mount::MountStrategy;
use crate::mountapi::{kernel, mount_id, read_to_string, statmount_works, thread_mountinfo};
use crate::sys;

/// The peer group of mount `id` in a mountinfo text: `Some(None)` if that
/// mount is not shared, `None` if it is not listed.
fn peer_group(mountinfo: &str, id: u64) -> Option<Option<u64>> {
    mountinfo.lines().find_map(|l| {
        let mut f = l.split(' ');
        if f.next()?.parse::<u64>().ok()? != id {
            return None;
        }
        let mut tags = l.split(' ').skip(6).take_while(|x| *x != "-");
        Some(tags.find_map(|t| t.strip_prefix("shared:")?.parse::<u64>().ok()))
    })
}

/// Whether attaching a mount under a given mount would propagate it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Propagation {
    /// Nothing reaches the daemon's namespace.
    Contained,
    /// It would reach the daemon's namespace through this peer group.
    Leaks(u64),
    /// The mount is not in the container's mountinfo (fail closed).
    Unknown,
}

/// Whether attaching under a mount in peer group `group` (`Some(None)`: not
/// shared; `None`: the mount was not found) would propagate into the daemon's
/// namespace, whose mountinfo `daemon` gives (read only for a shared mount).
/// Propagation reaches every peer of the group and every mount that is a
/// slave of it, so both `shared:N` and `master:N` there count.
fn judge(group: Option<Option<u64>>, daemon: impl FnOnce() -> Result<String>) -> Result<Propagation> {
    let Some(group) = group else { return Ok(Propagation::Unknown) };
    let Some(group) = group else { return Ok(Propagation::Contained) };
    let (peer, slave) = (format!("shared:{group}"), format!("master:{group}"));
    let reaches =
        daemon()?.lines().any(|l| l.split(' ').skip(6).take_while(|x| *x != "-").any(|t| t == peer || t == slave));
    Ok(if reaches { Propagation::Leaks(group) } else { Propagation::Contained })
}

/// Refuses targets whose mount would propagate a new mount into the daemon's
/// mount namespace. Made on the calling thread, used on the worker thread
/// that entered the target's namespace.
pub(crate) struct PropagationGuard {
    /// The host's procfs, to read mountinfo from inside the target's namespace.
    host_proc: OwnedFd,
    /// The calling thread's (the daemon's) mountinfo, opened there (which
    /// binds it to that namespace) and read only if needed.
    ours: OwnedFd,
    /// Ask `statmount(2)` about the one mount instead of reading mountinfo.
    statmount: bool,
    /// Also refuse a target mount shared only inside the workspace (for
    /// MountProc/MountSysfs; the mark, made once, may go onto a shared root).
    refuse_peers: bool,
}

impl PropagationGuard {
    /// `strategy` Fallback keeps to the mountinfo technique of older kernels.
    pub(crate) fn new(strategy: MountStrategy) -> Result<PropagationGuard> {
        let host_proc = rustix::fs::open("/proc", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Error::internal("open(/proc)", e))?;
        let ours =
            rustix::fs::openat(&host_proc, "thread-self/mountinfo", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| Error::internal("open(/proc/thread-self/mountinfo)", e))?;
        Ok(PropagationGuard {
            host_proc,
            ours,
            statmount: strategy == MountStrategy::Detached && statmount_works(),
            refuse_peers: false,
        })
    }

    /// [`PropagationGuard::new`] that also refuses a target mount with any
    /// peer group (see `Reason::PropagatesToPeers`).
    pub(crate) fn unshared(strategy: MountStrategy) -> Result<PropagationGuard> {
        Ok(PropagationGuard { refuse_peers: true, ..PropagationGuard::new(strategy)? })
    }

    /// The daemon's procfs (for lookups through fds of the target's namespace).
    pub(crate) fn host_proc(&self) -> &OwnedFd {
        &self.host_proc
    }

    /// The daemon's mount table.
    fn daemon_mountinfo(&self) -> Result<String> {
        let fd = self.ours.try_clone().map_err(|e| Error::internal("dup(mountinfo)", e))?;
        read_to_string(fd, "read(daemon mountinfo)")
    }

    /// On a worker thread inside the target's namespace: refuses a target
    /// whose mount would propagate a new mount into the daemon's namespace.
    /// The daemon's mount table is read only when the target's mount is shared.
    pub(crate) fn check(&self, t: BorrowedFd<'_>, target: &str) -> Result<()> {
        let group = if self.statmount {
            let (id, _) = mount_id(t)?;
            let p = sys::statmount_propagation(id).map_err(|e| Error::internal("statmount(STATMOUNT_MNT_BASIC)", e))?;
            Some((p.flags & libc::MS_SHARED != 0).then_some(p.peer_group))
        } else {
            let st = rustix::fs::statx(t, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)
                .map_err(|e| kernel("statx(STATX_MNT_ID)", e))?;
            let theirs = thread_mountinfo(&self.host_proc)?;
            peer_group(&theirs, st.stx_mnt_id)
        };
        let verdict = judge(group, || self.daemon_mountinfo())?;
        match verdict {
            // Shared inside the workspace only: a mount there would still be
            // copied into every namespace of the peer group (and each slave
            // of it), uncounted by the workspace's mount limit.
            Propagation::Contained => match group {
                Some(Some(group)) if self.refuse_peers => Err(Error::because(
                    ErrorKind::FailedPrecondition,
                    Reason::PropagatesToPeers,
                    format!(
                        "the mount holding {target:?} is shared (peer group {group}): a mount there would be copied into every mount namespace of that group, which the workspace's mount limit cannot count. Mount onto a private or slave mount (e.g. in a namespace of its own made with `unshare -m`)"
                    ),
                )),
                _ => Ok(()),
            },
            Propagation::Leaks(group) => Err(Error::because(
                ErrorKind::FailedPrecondition,
                Reason::SharedPropagation,
                format!(
                    "the mount holding {target:?} shares propagation (peer group {group}) with the host; a mount there would appear on the host. Give the container private or slave mount propagation"
                ),
            )),
            Propagation::Unknown => Err(Error::internal("mountinfo", format!("the mount of {target:?} is not listed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn propagation(container: &str, id: u64, daemon: &str) -> Propagation {
        judge(peer_group(container, id), || Ok(daemon.to_string())).unwrap()
    }

    #[test]
    fn propagation_into_the_daemon_namespace_is_detected() {
        let container = "\
100 90 0:30 / / rw,relatime shared:7 - ext4 /dev/x rw
101 100 0:31 / /work rw master:3 - tmpfs t rw
102 100 0:32 / /own rw shared:9 master:3 - tmpfs t rw
103 100 0:33 / /priv rw - tmpfs t rw
";
        let daemon_peer = "1 0 0:30 / / rw shared:7 - ext4 /dev/x rw\n";
        let daemon_slave = "1 0 0:30 / / rw master:9 - ext4 /dev/x rw\n";
        let daemon_none = "1 0 0:30 / / rw shared:3 - ext4 /dev/x rw\n";
        assert_eq!(propagation(container, 100, daemon_peer), Propagation::Leaks(7));
        assert_eq!(propagation(container, 100, daemon_none), Propagation::Contained);
        // Slave mounts receive, they do not send: attaching under 101 is safe.
        assert_eq!(propagation(container, 101, daemon_none), Propagation::Contained);
        // A shared group whose slave lives in the daemon's namespace leaks.
        assert_eq!(propagation(container, 102, daemon_slave), Propagation::Leaks(9));
        assert_eq!(propagation(container, 103, daemon_peer), Propagation::Contained);
        assert_eq!(propagation(container, 999, daemon_peer), Propagation::Unknown);
    }
}

//! The privileged operations, each a straight line: check the input, pin the
//! target, do the one kernel call, re-check the pin.

#![deny(unsafe_code)]

use rustix::fs::OFlags;

use crate::error::{Error, ErrorKind, Reason, Result};
use crate::idmap::{self, IdMapping, IdPolicy};
use crate::pidns::{Container, PidStrategy};
use crate::sys;

/// Which map of a process to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Uid,
    Gid,
}

impl IdKind {
    fn file(self) -> &'static str {
        match self {
            IdKind::Uid => "uid_map",
            IdKind::Gid => "gid_map",
        }
    }

    fn word(self) -> &'static str {
        match self {
            IdKind::Uid => "uid",
            IdKind::Gid => "gid",
        }
    }
}

/// What a successful map write reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteIdMappingOutcome {
    /// Short human-readable summary for the caller.
    pub message: String,
    /// The host PID the map was written for (for the operator's log only).
    pub host_pid: i32,
}

/// Writes `lines` as the uid (or gid) map of the process that is `pid` in the
/// container's view. The map is validated against `policy` before anything
/// else happens and written with a single `write(2)`, so it is written whole
/// or not at all.
pub fn write_id_mapping(
    container: &Container,
    strategy: PidStrategy,
    pid: i64,
    kind: IdKind,
    lines: &[IdMapping],
    policy: &IdPolicy,
) -> Result<WriteIdMappingOutcome> {
    let map = idmap::validate(lines, policy)?;
    let target = container.resolve(pid, strategy)?;
    check_userns_creator(container, &target, pid)?;
    let fd = target.open(kind.file(), OFlags::WRONLY)?;
    let text = map.as_proc_text().as_bytes();
    match rustix::io::write(&fd, text) {
        Ok(n) if n == text.len() => {}
        Ok(n) => {
            return Err(Error::internal(
                &format!("write(/proc/{}/{})", target.host_pid(), kind.file()),
                format!("short write {n} of {}", text.len()),
            ))
        }
        Err(e) => {
            return Err(kernel_refusal(kind, e).with_detail(format!(
                "write(/proc/{}/{}, {:?}): {e}",
                target.host_pid(),
                kind.file(),
                map.as_proc_text()
            )))
        }
    }
    target.ensure_alive()?;
    let ids: u64 = map.lines().iter().map(|m| m.size as u64).sum();
    Ok(WriteIdMappingOutcome {
        message: format!("{} map of pid {pid} written: {} line(s), {ids} id(s)", kind.word(), map.lines().len()),
        host_pid: target.host_pid(),
    })
}

/// A map from iwsd hands the target's user namespace host ids that, through
/// the mark, own the container's files (the root range owns what uid 0 owns
/// on disk). So it is written only for a user namespace that root of the
/// container created in the container's user namespace (as workspacekit's
/// ring0 does). One that an unprivileged container user made is refused
/// (PERMISSION_DENIED): otherwise that user gets on-disk root through the
/// mark, e.g. a setuid-root binary that runs as root from the container's own
/// root (nosuid on the mark cannot stop that: it is the same inode). Where the
/// target has no user namespace of its own the kernel refuses the write
/// itself; for one nested deeper (in a ring) it would too: only a writer in
/// the parent user namespace may write a map.
fn check_userns_creator(container: &Container, target: &crate::pidns::PinnedProcess, pid: i64) -> Result<()> {
    let userns = target.open("ns/user", OFlags::RDONLY)?;
    let ident = |fd: &std::os::fd::OwnedFd, what: &str| {
        rustix::fs::fstat(fd).map(|st| (st.st_dev, st.st_ino)).map_err(|e| Error::internal(what, e))
    };
    let containers = ident(&container.init().open("ns/user", OFlags::RDONLY)?, "fstat(container ns/user)")?;
    if ident(&userns, "fstat(ns/user)")? == containers {
        return Ok(()); // no user namespace of its own: the kernel refuses the map
    }
    let parent = match sys::ns_get_parent(&userns) {
        Ok(p) => Some(ident(&p, "fstat(parent ns/user)")?),
        // The daemon's own (top) user namespace: the kernel refuses the map.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(()),
        Err(e) => return Err(Error::internal("ioctl(ns/user, NS_GET_PARENT)", e)),
    };
    let owner = sys::ns_get_owner_uid(&userns).map_err(|e| Error::internal("ioctl(ns/user, NS_GET_OWNER_UID)", e))?;
    if parent == Some(containers) && Some(owner) == container_root_uid(container)? {
        return Ok(());
    }
    Err(Error::because(
        ErrorKind::PermissionDenied,
        Reason::UserNamespaceNotRootMade,
        format!(
            "the user namespace of pid {pid} was not created by the container's root in the container's user namespace; iwsd writes maps only for those"
        ),
    )
    .with_detail(format!("owner uid {owner} of the user namespace of host pid {}", target.host_pid())))
}

/// The host uid of the container's uid 0 (from its init's uid_map), if mapped.
fn container_root_uid(container: &Container) -> Result<Option<u32>> {
    let map = container.init().read("uid_map")?;
    Ok(map.lines().find_map(|l| {
        let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        match f[..] {
            [inside, outside, size] if inside == 0 && size > 0 => u32::try_from(outside).ok(),
            _ => None,
        }
    }))
}

fn kernel_refusal(kind: IdKind, e: rustix::io::Errno) -> Error {
    let why = match e {
        rustix::io::Errno::PERM => format!(
            "the kernel refused the {} map (EPERM): a map can be written only once, and only for a process in a user namespace of its own",
            kind.word()
        ),
        rustix::io::Errno::INVAL => format!("the kernel refused the {} map (EINVAL): {e}", kind.word()),
        rustix::io::Errno::SRCH => {
            return Error::new(ErrorKind::NotFound, "the process exited during the operation");
        }
        e => format!("the kernel refused the {} map: {e}", kind.word()),
    };
    Error::new(ErrorKind::FailedPrecondition, why)
}

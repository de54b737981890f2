//! Writing a process's uid or gid map, a straight line: check the input, pin
//! the target, do the one kernel call, re-check the pin.

use rustix::fs::OFlags;

use crate::authz::{self, Caller, PinnedCaller};
use crate::error::{Error, ErrorKind, Reason, Result};
use crate::idmap::{self, IdMapping, IdPolicy};
use crate::pidns::{Container, PidStrategy};

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
/// container's view, for `caller` (`None`: the embedding program's own
/// authority, `iwsd/native`; the daemon always passes the connection's peer). The map is validated against `policy` and
/// the caller authorized ([`authz::authorize_id_map`]) before anything else
/// happens; a gid map is preceded by `deny` in the target's `setgroups`
/// unless the policy allows setgroups; the map is written with a single
/// `write(2)`, so it is written whole or not at all.
pub fn write_id_mapping(
    container: &Container,
    strategy: PidStrategy,
    caller: Option<&Caller>,
    pid: i64,
    kind: IdKind,
    lines: &[IdMapping],
    policy: &IdPolicy,
) -> Result<WriteIdMappingOutcome> {
    let map = idmap::validate(lines, policy)?;
    let who = caller.map(|c| PinnedCaller::pin(container, c)).transpose()?;
    let target = container.resolve(pid, strategy)?;
    if let Some(who) = &who {
        authz::authorize_id_map(who, &target, kind == IdKind::Gid, lines, policy)?;
    }
    let fd = target.open(kind.file(), OFlags::WRONLY)?;
    if kind == IdKind::Gid && !policy.allow_setgroups {
        deny_setgroups(&target)?;
    }
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

/// Writes `deny` to the target's `setgroups` (allowed only before its gid
/// map is written; the kernel refuses it after).
fn deny_setgroups(target: &crate::pidns::PinnedProcess) -> Result<()> {
    let fd = target.open("setgroups", OFlags::WRONLY)?;
    match rustix::io::write(&fd, b"deny") {
        Ok(4) => Ok(()),
        Ok(n) => Err(Error::internal(
            &format!("write(/proc/{}/setgroups)", target.host_pid()),
            format!("short write {n} of 4"),
        )),
        Err(rustix::io::Errno::PERM) => Err(Error::because(
            ErrorKind::FailedPrecondition,
            Reason::KernelRefused,
            "the kernel refused to deny setgroups (EPERM): the gid map was already written",
        )
        .with_errno(rustix::io::Errno::PERM)),
        Err(rustix::io::Errno::SRCH) => Err(Error::new(ErrorKind::NotFound, "the process exited during the operation")),
        Err(e) => Err(Error::internal(&format!("write(/proc/{}/setgroups, deny)", target.host_pid()), e)),
    }
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

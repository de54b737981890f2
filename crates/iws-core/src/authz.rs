//! Authorization per call: who inside a workspace may do what.
//!
//! Threat model: every process inside the container may connect and call
//! (the socket is the workspace's), so the check at connect time proves only
//! membership. Each call is then judged from the *caller's* credentials,
//! read by the daemon at call time from the pinned process, against the
//! kernel's own rules for the same operation (docs/DESIGN.md, "Authorization per call"):
//!
//! * the caller is the process that connected: the same host PID and the same
//!   start time (a PID with its start time names one process for the life of
//!   the system; no fd is kept per connection), still a member of the
//!   workspace, and with the euid it connected with (a process that gained
//!   an identity since, e.g. by exec'ing a setuid binary while another
//!   process holds the shared connection, is refused);
//! * ids are compared as the kernel compares them: as kernel ids, read by
//!   the daemon in its own (the initial) user namespace, where nothing is
//!   unmapped. In the caller's own namespace an id without a mapping reads
//!   as the overflow id, and two different unmapped ids would look equal;
//! * "root in" a user namespace means euid 0 there (the caller's kernel uid
//!   maps to 0 in it); "authority over" a user namespace follows the
//!   kernel's `cap_capable`: the caller lives in it and is root there, or
//!   lives in an ancestor and owns the child of that ancestor on the way
//!   down (or is root in that ancestor).
//!
//! Every refusal is PERMISSION_DENIED with a [`Reason`] naming the rule.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::OFlags;

use crate::error::{Error, ErrorKind, Reason, Result};
use crate::idmap::{IdMapping, IdPolicy};
use crate::pidns::{daemon_userns_key, ns_key, Container, PinnedProcess};
use crate::sys;

/// User namespaces nest at most 32 deep.
const MAX_USERNS_DEPTH: usize = 33;

const CAP_DAC_OVERRIDE: u32 = 1;
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

/// The caller of one RPC, as the connection's check recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Host PID of the process that connected.
    pub host_pid: i32,
    /// Its start time at connect time; `None` (a connection not checked by
    /// this daemon version) is refused.
    pub start_time: Option<u64>,
    /// Its euid at connect time (`SO_PEERCRED`, host view).
    pub uid: u32,
}

/// Who a mount was made for, recorded with it: the caller's kernel euid and
/// its user namespace (device, inode of the nsfs file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerId {
    pub euid: u32,
    pub userns: (u64, u64),
}

impl CallerId {
    /// `"<dev>:<ino>"`, as the daemon records it.
    pub fn userns_string(&self) -> String {
        format!("{}:{}", self.userns.0, self.userns.1)
    }

    pub fn parse_userns(s: &str) -> Result<(u64, u64)> {
        let bad = || Error::invalid(format!("user namespace {s:?} is not DEV:INO"));
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
    }
}

/// The credentials of a process, from its `status` (daemon's view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub euid: u32,
    pub fsuid: u32,
    pub fsgid: u32,
    pub groups: Vec<u32>,
    pub cap_eff: u64,
}

/// Parses the `Uid:`, `Gid:`, `Groups:` and `CapEff:` lines of a `status` file.
pub fn parse_creds(status: &str) -> Option<Creds> {
    let ids = |key: &str| -> Option<Vec<u32>> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        line.split_whitespace().map(|v| v.parse().ok()).collect()
    };
    let uid = ids("Uid:")?;
    let gid = ids("Gid:")?;
    if uid.len() != 4 || gid.len() != 4 {
        return None;
    }
    let groups = ids("Groups:").unwrap_or_default();
    let cap = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    let cap_eff = u64::from_str_radix(cap.trim(), 16).ok()?;
    Some(Creds { euid: uid[1], fsuid: uid[3], fsgid: gid[3], groups, cap_eff })
}

/// Lines of a `uid_map`/`gid_map` as (inside, outside, count).
pub fn parse_map(text: &str) -> Vec<(u32, u32, u32)> {
    text.lines()
        .filter_map(|l| {
            let v: Vec<u32> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
            (v.len() == 3).then(|| (v[0], v[1], v[2]))
        })
        .collect()
}

/// The id `outside` (daemon's view) has inside the namespace of `map`.
pub fn inside(map: &[(u32, u32, u32)], outside: u32) -> Option<u32> {
    map.iter()
        .find_map(|&(i, o, n)| (outside >= o && (outside as u64) < o as u64 + n as u64).then(|| i + (outside - o)))
}

/// Maps of a user namespace, (inside, outside, count) lines: uid, gid.
type Maps = (Vec<(u32, u32, u32)>, Vec<(u32, u32, u32)>);

/// The daemon's own uid and gid maps, read once (None if unreadable).
/// A caller in the daemon's user namespace (its key: [`daemon_userns_key`])
/// has exactly these: a namespace's maps are written once and never change,
/// `/proc/<pid>/uid_map` shows them the same to a reader in the namespace
/// itself, and the key names the daemon's namespace alone while the daemon
/// lives in it (an nsfs inode is reused only after its namespace is gone).
/// So a call from a caller there (container root and users of a container
/// without a user namespace, runc's default) does not read the caller's
/// maps; a caller anywhere else (a ring) has its own read.
fn daemon_maps() -> Option<&'static Maps> {
    static MAPS: std::sync::OnceLock<Option<Maps>> = std::sync::OnceLock::new();
    MAPS.get_or_init(|| {
        let uid = parse_map(&std::fs::read_to_string("/proc/self/uid_map").ok()?);
        let gid = parse_map(&std::fs::read_to_string("/proc/self/gid_map").ok()?);
        (!uid.is_empty() && !gid.is_empty()).then_some((uid, gid))
    })
    .as_ref()
}

/// Whether the daemon lives in the initial user namespace, where every
/// kernel id has a number (no overflow id can stand for several).
fn daemon_sees_all_ids() -> bool {
    daemon_maps().is_some_and(|(uid, _)| *uid == [(0, 0, u32::MAX)])
}

/// Two ids read by the daemon name the same kernel id: equal, and not the
/// overflow id of a daemon that cannot see every id.
fn same_id(a: u32, b: u32) -> bool {
    a == b && (daemon_sees_all_ids() || a != 65534)
}

/// A caller pinned for one call, with its credentials read at call time.
#[derive(Debug)]
pub struct PinnedCaller {
    process: PinnedProcess,
    creds: Creds,
    userns_key: (u64, u64),
    uid_map: Vec<(u32, u32, u32)>,
    gid_map: Vec<(u32, u32, u32)>,
    /// Euid 0 in the container's own user namespace.
    container_root: bool,
}

fn denied(reason: Reason, message: impl Into<String>) -> Error {
    Error::because(ErrorKind::PermissionDenied, reason, message)
}

impl PinnedCaller {
    /// Pins `caller` and reads its credentials: it must be the process that
    /// connected (PID and start time), still in the workspace, with the euid
    /// it connected with.
    pub fn pin(container: &Container, caller: &Caller) -> Result<PinnedCaller> {
        let gone =
            || denied(Reason::ProcessExited, "the process that opened this connection has exited; connect again");
        let Some(started) = caller.start_time else {
            return Err(denied(Reason::CallerUnknown, "this connection's caller was not identified; connect again"));
        };
        let process =
            PinnedProcess::pin(caller.host_pid)
                .map_err(|e| if e.kind() == ErrorKind::NotFound { gone() } else { e })?;
        let now = process.start_time().map_err(|e| if e.kind() == ErrorKind::NotFound { gone() } else { e })?;
        if now != started {
            return Err(gone());
        }
        if !container.has_member(&process)? {
            return Err(denied(
                Reason::OutsideWorkspace,
                "the process that opened this connection has left the workspace",
            ));
        }
        let status = process.read("status")?;
        let creds = parse_creds(&status)
            .ok_or_else(|| Error::internal("parse status", format!("/proc/{}/status", process.host_pid())))?;
        if !same_id(creds.euid, caller.uid) {
            return Err(denied(
                Reason::CredentialsChanged,
                "the process that opened this connection changed its user id since; connect again",
            ));
        }
        let userns = process.open("ns/user", OFlags::RDONLY)?;
        let userns_key = ns_key(&userns)?;
        let (uid_map, gid_map) = match daemon_maps() {
            Some(maps) if daemon_userns_key()? == userns_key => maps.clone(),
            _ => (parse_map(&process.read("uid_map")?), parse_map(&process.read("gid_map")?)),
        };
        process.ensure_alive()?;
        let mut c = PinnedCaller { process, creds, userns_key, uid_map, gid_map, container_root: false };
        c.container_root = userns_key == container.userns_key() && c.root_in_own_ns();
        Ok(c)
    }

    pub fn creds(&self) -> &Creds {
        &self.creds
    }

    pub fn process(&self) -> &PinnedProcess {
        &self.process
    }

    /// What a mount made for this caller is recorded with.
    pub fn id(&self) -> CallerId {
        CallerId { euid: self.creds.euid, userns: self.userns_key }
    }

    /// Euid 0 in the caller's own user namespace.
    fn root_in_own_ns(&self) -> bool {
        inside(&self.uid_map, self.creds.euid) == Some(0)
    }

    /// Root of the container: euid 0 in the container's user namespace.
    pub fn is_container_root(&self) -> bool {
        self.container_root
    }

    fn has_cap(&self, cap: u32) -> bool {
        self.creds.cap_eff & (1u64 << cap) != 0
    }

    /// The kernel's `cap_capable` walk, with "root in" for "holds the
    /// capability": whether the caller has authority over user namespace
    /// `ns`.
    pub fn has_authority_over(&self, ns: &OwnedFd) -> Result<bool> {
        let mut cur = ns.try_clone().map_err(|e| Error::internal("dup(userns)", e))?;
        for _ in 0..MAX_USERNS_DEPTH {
            if ns_key(&cur)? == self.userns_key {
                return Ok(self.root_in_own_ns());
            }
            let parent = match sys::ns_get_parent(&cur) {
                Ok(p) => p,
                // The top of the daemon's view: the caller's namespace is not above `ns`.
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Ok(false),
                Err(e) => return Err(Error::internal("ioctl(NS_GET_PARENT) on a user namespace", e)),
            };
            if ns_key(&parent)? == self.userns_key {
                let owner = sys::ns_get_owner_uid(&cur).map_err(|e| Error::internal("ioctl(NS_GET_OWNER_UID)", e))?;
                return Ok(same_id(owner, self.creds.euid) || self.root_in_own_ns());
            }
            cur = parent;
        }
        Ok(false)
    }

    /// The kernel's `generic_permission(MAY_WRITE)` for an inode with owner
    /// `uid`, group `gid` (daemon's view, through the mount it is reached by)
    /// and `mode`; `acl`: the inode carries a POSIX access ACL (then only the
    /// owner and the capability grant, never group or other bits, which an
    /// ACL entry for the caller could narrow).
    pub fn may_write(&self, uid: u32, gid: u32, mode: u32, acl: bool) -> bool {
        write_permitted(&self.creds, &self.uid_map, &self.gid_map, Inode { uid, gid, mode, acl })
    }
}

/// An inode as a permission check sees it.
#[derive(Debug, Clone, Copy)]
pub struct Inode {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub acl: bool,
}

/// See [`PinnedCaller::may_write`]; pure.
pub fn write_permitted(c: &Creds, uid_map: &[(u32, u32, u32)], gid_map: &[(u32, u32, u32)], i: Inode) -> bool {
    let bits = if same_id(c.fsuid, i.uid) {
        i.mode >> 6
    } else if i.acl {
        0
    } else if same_id(c.fsgid, i.gid) || c.groups.iter().any(|&g| same_id(g, i.gid)) {
        i.mode >> 3
    } else {
        i.mode
    };
    if bits & 0o2 != 0 {
        return true;
    }
    // CAP_DAC_OVERRIDE counts for inodes whose owner and group are mapped in
    // the caller's user namespace (`capable_wrt_inode_uidgid`).
    c.cap_eff & (1u64 << CAP_DAC_OVERRIDE) != 0 && inside(uid_map, i.uid).is_some() && inside(gid_map, i.gid).is_some()
}

/// WriteIDMapping: the caller must be root of the container (with
/// CAP_SETUID, or CAP_SETGID for a gid map: the kernel's rule for writing
/// another process's map), or own the target's user namespace, live in it or
/// in its parent (where the kernel lets a map be written from), and be given
/// no ids beyond those the workspace delegates to its ring user: its own id
/// as container id 0 (inside the policy's root range) and the user ranges.
pub fn authorize_id_map(
    caller: &PinnedCaller,
    target: &PinnedProcess,
    gid: bool,
    lines: &[IdMapping],
    policy: &IdPolicy,
) -> Result<()> {
    if caller.is_container_root() && caller.has_cap(if gid { CAP_SETGID } else { CAP_SETUID }) {
        return Ok(());
    }
    let ns = target.open("ns/user", OFlags::RDONLY)?;
    let key = ns_key(&ns)?;
    let parent_key = match sys::ns_get_parent(&ns) {
        Ok(p) => Some(ns_key(&p)?),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => None,
        Err(e) => return Err(Error::internal("ioctl(NS_GET_PARENT) on a user namespace", e)),
    };
    if caller.userns_key != key && Some(caller.userns_key) != parent_key {
        return Err(denied(
            Reason::UserNamespaceOutOfReach,
            "the target's user namespace is neither the caller's nor a child of it; the kernel lets a map be written only from there",
        ));
    }
    let owner = sys::ns_get_owner_uid(&ns).map_err(|e| Error::internal("ioctl(NS_GET_OWNER_UID)", e))?;
    let euid = caller.creds.euid;
    if !same_id(owner, euid) {
        return Err(denied(
            Reason::NotUserNamespaceOwner,
            "the target's user namespace belongs to another user; only its owner or the container's root may have its map written",
        ));
    }
    let own_root = |m: &IdMapping| m.container_id != 0 || (m.host_id == euid && m.size == 1);
    if !policy.root_range.contains_range(euid, 1) || !lines.iter().all(own_root) {
        return Err(denied(
            Reason::MapNotDelegated,
            format!(
                "only the workspace's ring user (root range {}) may have maps written, with container id 0 mapped to its own id; the caller's id is not that",
                policy.root_range
            ),
        ));
    }
    Ok(())
}

/// MountProc/MountSysfs/Umount*: the mount namespace `mntns` must be one the
/// caller could change itself: owned by a user namespace the caller has
/// authority over.
pub fn authorize_mount_ns(caller: &PinnedCaller, mntns: impl AsFd) -> Result<()> {
    let owner = sys::ns_get_userns(mntns).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => {
            denied(Reason::NotMountNamespaceOwner, "the target's mount namespace is not the caller's to change")
        }
        _ => Error::internal("ioctl(NS_GET_USERNS)", e),
    })?;
    if !caller.has_authority_over(&owner)? {
        return Err(denied(
            Reason::NotMountNamespaceOwner,
            "the target's mount namespace is owned by a user namespace the caller neither owns nor is root in",
        ));
    }
    Ok(())
}

/// Umount*: only a mount made for this same caller, or by the container's
/// root. `made_for`: who the mount was made for (`None`: recorded before
/// callers were; container root only).
pub fn authorize_umount(caller: &PinnedCaller, made_for: Option<CallerId>) -> Result<()> {
    if caller.is_container_root() || made_for == Some(caller.id()) {
        return Ok(());
    }
    Err(denied(
        Reason::NotMountOwner,
        "that mount was made for another caller; only it or the container's root may unmount it",
    ))
}

/// Who may call PrepareForUserNS and Teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleRule {
    /// The container's root, or the uid the container's init runs as (in
    /// the container's user namespace; Gitpod's ring0 runs as 33333).
    RootOrInitUid,
    /// The container's root only.
    Root,
}

impl LifecycleRule {
    pub fn parse(s: &str) -> Result<LifecycleRule> {
        match s {
            "root-or-init-uid" => Ok(LifecycleRule::RootOrInitUid),
            "root" => Ok(LifecycleRule::Root),
            _ => Err(Error::invalid(format!("unknown lifecycle rule {s:?}; use root-or-init-uid or root"))),
        }
    }
}

/// PrepareForUserNS/Teardown for `caller`, before the call does anything
/// (its one shot included).
pub fn authorize_lifecycle_call(container: &Container, caller: &Caller, rule: LifecycleRule) -> Result<()> {
    let who = PinnedCaller::pin(container, caller)?;
    authorize_lifecycle(container, &who, rule)
}

/// PrepareForUserNS/Teardown: by `rule`.
pub fn authorize_lifecycle(container: &Container, caller: &PinnedCaller, rule: LifecycleRule) -> Result<()> {
    if caller.is_container_root() {
        return Ok(());
    }
    if rule == LifecycleRule::RootOrInitUid && caller.userns_key == container.userns_key() {
        let init = parse_creds(&container.init().read("status")?)
            .ok_or_else(|| Error::internal("parse status", "container init"))?;
        if same_id(init.euid, caller.creds.euid) {
            return Ok(());
        }
    }
    Err(denied(
        Reason::NotWorkspaceOwner,
        match rule {
            LifecycleRule::RootOrInitUid => "only the container's root or the user its init runs as may do this",
            LifecycleRule::Root => "only the container's root may do this",
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tsh\nUid:\t1000\t1001\t1002\t1003\nGid:\t2000\t2001\t2002\t2003\nGroups:\t4 27 100 \nCapEff:\t0000000000000082\n";

    #[test]
    fn parses_creds() {
        let c = parse_creds(STATUS).unwrap();
        assert_eq!(c, Creds { euid: 1001, fsuid: 1003, fsgid: 2003, groups: vec![4, 27, 100], cap_eff: 0x82 });
        assert!(parse_creds("Uid:\t1\t2\nGid:\t1\t1\t1\t1\nCapEff:\t0\n").is_none());
        let empty = parse_creds("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t0\n").unwrap();
        assert!(empty.groups.is_empty());
    }

    /// What a call from a caller in the daemon's own user namespace takes
    /// instead of reading its maps must be what reading them gives; and a
    /// process in a user namespace of its own (a ring) must not match.
    #[test]
    fn a_caller_in_the_daemons_user_namespace_has_the_daemons_maps() {
        let (key, (uid, gid)) = (daemon_userns_key().unwrap(), daemon_maps().expect("the daemon's own maps"));
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let read = |f: &str| parse_map(&std::fs::read_to_string(format!("/proc/{}/{f}", child.id())).unwrap());
        let its_key = ns_key(rustix::fs::open(format!("/proc/{}/ns/user", child.id()), OFlags::RDONLY, rustix::fs::Mode::empty()).unwrap()).unwrap();
        let (u, g) = (read("uid_map"), read("gid_map"));
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(its_key, key);
        assert_eq!((&u, &g), (uid, gid));
        // A process in a new user namespace (unmapped: no maps yet) is not in ours.
        let Ok(mut ring) = std::process::Command::new("unshare").args(["--user", "sleep", "30"]).spawn() else {
            eprintln!("SKIPPED the ring half: no unshare(1)");
            return;
        };
        // Wait for it to be `sleep`: unshare(1) has made the namespace by then.
        for _ in 0..500 {
            if std::fs::read_to_string(format!("/proc/{}/comm", ring.id())).is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let ring_key = rustix::fs::open(format!("/proc/{}/ns/user", ring.id()), OFlags::RDONLY, rustix::fs::Mode::empty()).map(|f| ns_key(f).unwrap());
        let _ = ring.kill();
        let _ = ring.wait();
        match ring_key {
            Ok(k) => assert_ne!(k, key, "a new user namespace must not share the daemon's key"),
            Err(e) => eprintln!("SKIPPED the ring half: unshare --user did not keep running ({e})"),
        }
    }

    #[test]
    fn maps_translate_ids() {
        let m = parse_map("         0      33333          1\n         1     100000      65534\n");
        assert_eq!(inside(&m, 33333), Some(0));
        assert_eq!(inside(&m, 100000), Some(1));
        assert_eq!(inside(&m, 165533), Some(65534));
        assert_eq!(inside(&m, 165534), None);
        assert_eq!(inside(&m, 0), None);
        assert_eq!(inside(&parse_map("0 0 4294967295"), 4294967294), Some(4294967294));
    }

    #[test]
    fn write_permission_follows_the_kernel() {
        let all = parse_map("0 0 4294967295");
        let ring = parse_map("0 33333 1\n1 100000 65534");
        let user = Creds { euid: 1000, fsuid: 1000, fsgid: 1000, groups: vec![2000], cap_eff: 0 };
        let root = Creds { euid: 0, fsuid: 0, fsgid: 0, groups: vec![], cap_eff: 1 << CAP_DAC_OVERRIDE };
        let ring_root = Creds { euid: 33333, fsuid: 33333, fsgid: 33333, groups: vec![], cap_eff: u64::MAX >> 23 };
        let ino = |uid, gid, mode| Inode { uid, gid, mode, acl: false };
        // root-owned /etc: only root
        assert!(!write_permitted(&user, &all, &all, ino(0, 0, 0o755)));
        assert!(write_permitted(&root, &all, &all, ino(0, 0, 0o755)));
        // owner, group and other bits, in the kernel's order
        assert!(write_permitted(&user, &all, &all, ino(1000, 0, 0o700)));
        assert!(!write_permitted(&user, &all, &all, ino(1000, 0, 0o077)));
        assert!(write_permitted(&user, &all, &all, ino(0, 2000, 0o070)));
        assert!(!write_permitted(&user, &all, &all, ino(0, 2000, 0o707)));
        assert!(write_permitted(&user, &all, &all, ino(0, 0, 0o777)));
        // an ACL could narrow group/other for this caller: only owner counts
        assert!(!write_permitted(&user, &all, &all, Inode { uid: 0, gid: 0, mode: 0o777, acl: true }));
        // ring root's capabilities reach only inodes mapped in its namespace
        assert!(!write_permitted(&ring_root, &ring, &ring, ino(0, 0, 0o755)));
        assert!(write_permitted(&ring_root, &ring, &ring, ino(100000, 100000, 0o755)));
        assert!(write_permitted(&ring_root, &ring, &ring, ino(33333, 33333, 0o555)));
    }

    #[test]
    fn lifecycle_rules_parse() {
        assert_eq!(LifecycleRule::parse("root").unwrap(), LifecycleRule::Root);
        assert_eq!(LifecycleRule::parse("root-or-init-uid").unwrap(), LifecycleRule::RootOrInitUid);
        assert!(LifecycleRule::parse("anyone").is_err());
    }

    #[test]
    fn userns_ids_round_trip() {
        let id = CallerId { euid: 5, userns: (4, 4026531837) };
        assert_eq!(CallerId::parse_userns(&id.userns_string()).unwrap(), id.userns);
        assert!(CallerId::parse_userns("4").is_err());
    }
}

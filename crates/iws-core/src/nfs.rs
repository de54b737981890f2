//! MountNfs: an NFS share mounted into a workspace's mount namespace.
//!
//! Threat model: source, target and options come from the workspace. The
//! kernel's NFS client connects from the network namespace of the task that
//! creates the filesystem context: created by the daemon in the host's
//! network namespace, a workspace could reach NFS servers only the host can
//! reach (node-local exports, the host's loopback). Hence:
//!
//! * the filesystem is created (`fsopen("nfs4")`, `fsconfig`) on a fresh
//!   thread that joined the *container's* network namespace (checked to be
//!   the thread's, and never the host's: a container sharing the host's
//!   network is refused);
//! * every option is parsed against an allow-list (values checked too);
//!   anything that could involve host services (Kerberos `sec=` needs the
//!   host's gssd, `fsc` its cachefilesd), SELinux labels, `suid`/`dev`, or
//!   unknown options are refused; the mount is always `nosuid,nodev`;
//! * the target is checked like MountProc's (the caller's authority over the
//!   mount namespace, inside its root, writable by the caller, no
//!   propagation) *before* anything is created, so every refusal is the same
//!   whether or not the kernel has an NFS client;
//! * a kernel without an NFS client (`nfs4` not in `/proc/filesystems`) is
//!   FAILED_PRECONDITION before `fsopen`, which would otherwise ask the host
//!   to load a module on a workspace's behalf.

use std::net::IpAddr;
use std::os::fd::AsFd;

use rustix::io::Errno;
use rustix::mount::{fsconfig_set_flag, fsconfig_set_string, MountAttrFlags};

use crate::authz::Caller;
use crate::error::{Error, ErrorKind, Reason, Result};
use crate::mount::{self, MountOutcome, MountStrategy};
use crate::mountapi::kernel;
use crate::netns::{container_netns, enter_netns};
use crate::nsthread::on_fresh_thread;
use crate::pidns::{Container, PidStrategy};
use crate::resolve::check_target;

/// Longest `args` string accepted.
const MAX_ARGS: usize = 4096;
/// Longest `source` accepted.
const MAX_SOURCE: usize = 1024;

/// A parsed, allowed NFS mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsOptions {
    /// `server:/path`, as given.
    pub source: String,
    /// Options passed to the kernel's NFS client (key, value).
    pub fs: Vec<(String, Option<String>)>,
    /// Mount attributes (always at least nosuid and nodev).
    pub attrs: MountAttrFlags,
}

fn not_allowed(message: String) -> Error {
    Error::invalid(message).with_reason(Reason::OptionNotAllowed)
}

fn num(key: &str, v: Option<&str>, max: u64) -> Result<()> {
    match v.and_then(|v| v.parse::<u64>().ok()) {
        Some(n) if n <= max => Ok(()),
        _ => Err(not_allowed(format!("NFS option {key} needs a number from 0 to {max}"))),
    }
}

fn one_of(key: &str, v: Option<&str>, allowed: &[&str]) -> Result<()> {
    match v {
        Some(v) if allowed.contains(&v) => Ok(()),
        _ => Err(not_allowed(format!("NFS option {key} must be one of {}", allowed.join(", ")))),
    }
}

fn ip(key: &str, v: Option<&str>) -> Result<()> {
    match v.map(|v| v.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>()) {
        Some(Ok(_)) => Ok(()),
        _ => Err(not_allowed(format!("NFS option {key} needs an IP address (the kernel does not resolve names)"))),
    }
}

/// Checks `source` (`server:/path`) and returns the server part.
pub fn check_source(source: &str) -> Result<&str> {
    let bad =
        |why: &str| not_allowed(format!("NFS source {source:?}: {why}; give server:/path, e.g. 10.0.5.1:/export"));
    if source.is_empty() || source.len() > MAX_SOURCE {
        return Err(bad("empty or longer than 1024 bytes"));
    }
    if source.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',') {
        return Err(bad("contains whitespace, a control character or a comma"));
    }
    let (server, path) = if let Some(rest) = source.strip_prefix('[') {
        let (host, path) = rest.split_once("]:").ok_or_else(|| bad("no ]: after an IPv6 address"))?;
        (&source[..host.len() + 2], path)
    } else {
        source.split_once(':').ok_or_else(|| bad("no ':' between server and path"))?
    };
    let host = server.trim_start_matches('[').trim_end_matches(']');
    let ok_host = host.parse::<IpAddr>().is_ok()
        || (!host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'));
    if !ok_host {
        return Err(bad("the server is not an IP address or host name"));
    }
    if !path.starts_with('/') {
        return Err(bad("the path is not absolute"));
    }
    Ok(server)
}

/// Parses `args` (the mount data string `mount.nfs` passes, e.g.
/// `vers=4.2,addr=10.0.5.1,clientaddr=10.0.5.2`) against the allow-list.
pub fn parse(source: &str, args: &str) -> Result<NfsOptions> {
    let server = check_source(source)?;
    if args.len() > MAX_ARGS {
        return Err(not_allowed("NFS options are longer than 4096 bytes".into()));
    }
    let mut fs: Vec<(String, Option<String>)> = Vec::new();
    let mut attrs = MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV;
    for opt in args.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        if !value.unwrap_or("").chars().all(|c| c.is_ascii_alphanumeric() || ".:-_[]".contains(c)) {
            return Err(not_allowed(format!(
                "NFS option {key}: its value has characters other than letters, digits and .:-_[]"
            )));
        }
        let flag = |allowed: bool| -> Result<()> {
            if value.is_some() || !allowed {
                return Err(not_allowed(format!("NFS option {opt:?} is not allowed")));
            }
            Ok(())
        };
        match key {
            "vers" | "nfsvers" => one_of(key, value, &["4", "4.0", "4.1", "4.2"])?,
            "minorversion" => num(key, value, 2)?,
            "addr" | "clientaddr" => ip(key, value)?,
            "port" => num(key, value, 65535)?,
            "proto" => one_of(key, value, &["tcp", "tcp6"])?,
            "timeo" => num(key, value, 600_000)?,
            "retrans" => num(key, value, 100)?,
            "rsize" | "wsize" => num(key, value, 1 << 20)?,
            "acregmin" | "acregmax" | "acdirmin" | "acdirmax" | "actimeo" => num(key, value, 3600)?,
            "nconnect" => match value.and_then(|v| v.parse::<u8>().ok()) {
                Some(1..=16) => {}
                _ => return Err(not_allowed("NFS option nconnect needs a number from 1 to 16".into())),
            },
            "lookupcache" => one_of(key, value, &["all", "none", "pos", "positive"])?,
            "local_lock" => one_of(key, value, &["none"])?,
            "sec" => one_of(key, value, &["sys", "none"])
                .map_err(|_| not_allowed("NFS option sec: only sys or none (Kerberos needs the host's gssd)".into()))?,
            "hard" | "soft" | "softerr" | "intr" | "nointr" | "ac" | "noac" | "cto" | "nocto" | "sharecache"
            | "nosharecache" | "resvport" | "noresvport" | "rw" | "sync" | "async" => flag(true)?,
            "ro" => {
                flag(true)?;
                attrs |= MountAttrFlags::MOUNT_ATTR_RDONLY;
            }
            // Mount attributes, not filesystem options: applied to the mount.
            // (nosuid and nodev always; exec and relatime are the defaults.)
            "nosuid" | "nodev" | "exec" | "relatime" => {
                flag(true)?;
                continue;
            }
            "noexec" => {
                flag(true)?;
                attrs |= MountAttrFlags::MOUNT_ATTR_NOEXEC;
                continue;
            }
            "noatime" => {
                flag(true)?;
                attrs |= MountAttrFlags::MOUNT_ATTR_NOATIME;
                continue;
            }
            "nodiratime" => {
                flag(true)?;
                attrs |= MountAttrFlags::MOUNT_ATTR_NODIRATIME;
                continue;
            }
            "suid" | "dev" => {
                return Err(not_allowed(format!("NFS option {key} is not allowed: iwsd mounts NFS nosuid,nodev")))
            }
            "fsc" | "fscache" => {
                return Err(not_allowed(format!("NFS option {key} is not allowed: it uses the host's cachefilesd")))
            }
            "context" | "fscontext" | "defcontext" | "rootcontext" => {
                return Err(not_allowed(format!("NFS option {key} (an SELinux label) is not allowed")))
            }
            _ => {
                return Err(not_allowed(format!(
                    "NFS option {key:?} is not allowed; see the README (MountNfs) for the options iwsd passes"
                )))
            }
        }
        if fs.iter().any(|(k, _)| k == key) {
            return Err(not_allowed(format!("NFS option {key} is given twice")));
        }
        fs.push((key.to_string(), value.map(String::from)));
    }
    if !fs.iter().any(|(k, _)| k == "addr") {
        let host = server.trim_start_matches('[').trim_end_matches(']');
        if host.parse::<IpAddr>().is_err() {
            return Err(not_allowed(format!(
                "NFS source {source:?} names the server by host name and no addr= option gives its IP address (the kernel does not resolve names)"
            )));
        }
        fs.push(("addr".into(), Some(host.to_string())));
    }
    Ok(NfsOptions { source: source.to_string(), fs, attrs })
}

/// Whether this kernel has an NFS client (`nfs4` in /proc/filesystems);
/// never loads a module.
pub fn nfs_client_available() -> bool {
    std::fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.split_whitespace().last() == Some("nfs4")))
        .unwrap_or(false)
}

fn no_client() -> Error {
    Error::because(
        ErrorKind::FailedPrecondition,
        Reason::NoNfsClient,
        "this node's kernel has no NFS client (CONFIG_NFS_FS with NFSv4; nfs4 is not in /proc/filesystems); ask the node's operator to load the nfs module or use a kernel with NFS support. Nothing was mounted",
    )
}

/// Mounts the NFS share `source` at `target` in the mount namespace of `pid`
/// (container view), for `caller`, connecting from the container's network
/// namespace. `args`: the NFS options (see [`parse`]).
#[allow(clippy::too_many_arguments)]
pub fn mount_nfs(
    container: &Container,
    strategy: PidStrategy,
    ms: MountStrategy,
    caller: Option<&Caller>,
    pid: i64,
    source: &str,
    target: &str,
    args: &str,
) -> Result<MountOutcome> {
    check_target(target)?;
    let opts = parse(source, args)?;
    let netns = container_netns(container)?;
    let (at, who) = mount::authorized_target(container, strategy, caller, pid)?;
    mount::precheck_target(&at, who.as_ref(), target, ms)?;
    if !nfs_client_available() {
        return Err(no_client());
    }
    let mnt = on_fresh_thread(|t| {
        enter_netns(t, netns.as_fd(), "container's")?;
        let fsfd = rustix::mount::fsopen("nfs4", rustix::mount::FsOpenFlags::FSOPEN_CLOEXEC).map_err(|e| match e {
            Errno::NODEV => no_client(),
            e => kernel("fsopen(nfs4)", e),
        })?;
        let refused = |what: &str, e: Errno| {
            Error::because(
                ErrorKind::InvalidArgument,
                Reason::KernelRefused,
                format!("the kernel's NFS client refused {what} ({e}); check the option"),
            )
            .with_errno(e)
        };
        fsconfig_set_string(&fsfd, "source", opts.source.as_str()).map_err(|e| refused("the source", e))?;
        for (k, v) in &opts.fs {
            match v {
                Some(v) => fsconfig_set_string(&fsfd, k.as_str(), v.as_str()),
                None => fsconfig_set_flag(&fsfd, k.as_str()),
            }
            .map_err(|e| refused(&format!("option {k}"), e))?;
        }
        rustix::mount::fsconfig_create(&fsfd).map_err(|e| {
            Error::because(
                ErrorKind::FailedPrecondition,
                Reason::KernelRefused,
                format!("the NFS mount of {source:?} failed ({e}): is the server reachable from the workspace's network and does it export that path to it?"),
            )
            .with_errno(e)
        })?;
        rustix::mount::fsmount(&fsfd, rustix::mount::FsMountFlags::FSMOUNT_CLOEXEC, opts.attrs)
            .map_err(|e| kernel("fsmount(nfs4)", e))
    })?;
    let id = mount::place_unlocked(&at, who.as_ref(), mnt, target, ms)?;
    Ok(MountOutcome { mount_id: id, made_for: who.as_ref().map(|w| w.id()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_options_pass_and_addr_is_added() {
        let o = parse("10.0.5.1:/export", "vers=4.2,clientaddr=10.0.5.2,hard,timeo=600,ro,noexec,nosuid").unwrap();
        assert!(o.fs.contains(&("addr".into(), Some("10.0.5.1".into()))));
        assert!(o.fs.contains(&("hard".into(), None)));
        assert!(!o.fs.iter().any(|(k, _)| k == "nosuid" || k == "noexec"));
        assert!(o.attrs.contains(MountAttrFlags::MOUNT_ATTR_NOSUID | MountAttrFlags::MOUNT_ATTR_NODEV));
        assert!(o.attrs.contains(MountAttrFlags::MOUNT_ATTR_RDONLY | MountAttrFlags::MOUNT_ATTR_NOEXEC));
        assert!(parse("[fd00::1]:/x", "").is_ok());
        assert!(parse("server:/x", "addr=10.0.0.1").is_ok());
        assert!(parse("", "").is_err());
    }

    #[test]
    fn dangerous_or_unknown_options_are_refused() {
        for bad in [
            "suid",
            "dev",
            "fsc",
            "sec=krb5",
            "context=system_u:object_r:nfs_t:s0",
            "vers=3",
            "proto=udp",
            "addr=host.example",
            "nconnect=64",
            "hard=1",
            "bogus",
            "vers=4,vers=4.1",
            "timeo=1;rm",
            "mountaddr=1.2.3.4",
        ] {
            let e = parse("10.0.5.1:/export", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{bad}");
            assert_eq!(e.reason(), Some(Reason::OptionNotAllowed), "{bad}");
        }
        for bad in ["server:/x", "10.0.5.1", "10.0.5.1:relative", "a b:/x", "1.2.3.4:/x,y", "[fd00::1/x"] {
            assert!(parse(bad, "").is_err(), "{bad}");
        }
    }
}

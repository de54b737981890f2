//! `/dev/fuse` (c 10:229) and `/dev/net/tun` (c 10:200) made in a
//! container at PrepareForUserNS, as Gitpod's ws-daemon did (mode 0666).
//!
//! Every path is resolved inside the container's root (the pinned init's
//! `/proc/<pid>/root`) with `openat2(RESOLVE_IN_ROOT | NO_SYMLINKS |
//! NO_MAGICLINKS)`, and the nodes are made with `mknodat` relative to the
//! checked `/dev` (or `/dev/net`) directory fd: a symlinked `/dev` or
//! `/dev/net` is refused, an existing node of the right type and device
//! number is fine, anything else at the name is left alone and reported.
//! The mode is set through the node's own fd (`/proc/self/fd/N`), never by
//! name, so swapping the new node for a symlink cannot redirect the chmod.
//! On a v1 devices cgroup of the container's own, `c 10:229 rwm` and
//! `c 10:200 rwm` are allowed there; on v2 (a BPF device program) nothing is
//! changed and the result says so.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::fs::{chmod, mkdirat, mknodat, statx, AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;

use crate::error::Result;
use crate::pidns::Container;
use crate::resolve::openat2_scoped;

/// What happened to one device node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceOutcome {
    /// `/dev/fuse` or `/dev/net/tun`.
    pub path: String,
    /// `created`, `present` or `refused`.
    pub state: String,
    /// Why it was refused (or what was odd), empty otherwise.
    pub detail: String,
}

/// What [`make_devices`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DevicesOutcome {
    pub devices: Vec<DeviceOutcome>,
    /// `v1 <path>: allowed`, `v1 <path>: <error>`, `v2: not changed (...)` or `none`.
    pub cgroup: String,
}

struct Dev {
    dir: &'static str,
    name: &'static str,
    major: u32,
    minor: u32,
}

const DEVICES: [Dev; 2] = [
    Dev { dir: "dev", name: "fuse", major: 10, minor: 229 },
    Dev { dir: "dev/net", name: "tun", major: 10, minor: 200 },
];

const HOW: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_SYMLINKS).union(ResolveFlags::NO_MAGICLINKS);

fn open_dir(root: impl AsFd, rel: &str) -> std::result::Result<OwnedFd, Errno> {
    openat2_scoped(root, rel, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty(), HOW)
}

fn why(e: Errno) -> String {
    match e {
        Errno::LOOP => "is or passes through a symlink".into(),
        Errno::NOTDIR => "is not a directory".into(),
        Errno::NOENT => "does not exist".into(),
        Errno::XDEV => "escapes the container's root".into(),
        e => e.to_string(),
    }
}

/// The directory a node goes in: `/dev` must exist; `/dev/net` is made (0755) if missing.
fn dir_for(root: &OwnedFd, d: &Dev) -> std::result::Result<OwnedFd, String> {
    match open_dir(root, d.dir) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) if d.dir == "dev/net" => {
            let dev = open_dir(root, "dev").map_err(|e| format!("/dev {}", why(e)))?;
            match mkdirat(&dev, "net", Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(format!("could not make /dev/net: {e}")),
            }
            open_dir(&dev, "net").map_err(|e| format!("/dev/net {}", why(e)))
        }
        Err(e) => Err(format!("/{} {}", d.dir, why(e))),
    }
}

fn make_one(root: &OwnedFd, d: &Dev) -> DeviceOutcome {
    let path = format!("/{}/{}", d.dir, d.name);
    let done = |state: &str, detail: String| DeviceOutcome { path: path.clone(), state: state.into(), detail };
    let dir = match dir_for(root, d) {
        Ok(dir) => dir,
        Err(detail) => return done("refused", format!("{detail}; nothing was made there")),
    };
    let rdev = rustix::fs::makedev(d.major, d.minor);
    let created = match mknodat(&dir, d.name, FileType::CharacterDevice, Mode::from_raw_mode(0o666), rdev) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(e) => return done("refused", format!("mknodat failed: {e}")),
    };
    // Look at what is there now, by a fd of its own (no symlink followed).
    let node = match openat2_scoped(&dir, d.name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty(), HOW)
    {
        Ok(fd) => fd,
        Err(e) => return done("refused", format!("{path} {}; left alone", why(e))),
    };
    let st = match statx(&node, "", AtFlags::EMPTY_PATH, StatxFlags::TYPE | StatxFlags::MODE) {
        Ok(st) => st,
        Err(e) => return done("refused", format!("statx failed: {e}")),
    };
    let is_dev = FileType::from_raw_mode(st.stx_mode as u32) == FileType::CharacterDevice
        && st.stx_rdev_major == d.major
        && st.stx_rdev_minor == d.minor;
    if !is_dev {
        return done(
            "refused",
            format!("{path} exists and is not the character device {}:{}; left alone", d.major, d.minor),
        );
    }
    if !created {
        return done("present", String::new());
    }
    // The umask may have cut the mode: set it on this very inode.
    if let Err(e) = chmod(format!("/proc/self/fd/{}", node.as_raw_fd()).as_str(), Mode::from_raw_mode(0o666)) {
        return done("created", format!("could not set mode 0666: {e}"));
    }
    done("created", String::new())
}

/// Makes `/dev/fuse` and `/dev/net/tun` in the container (see the module
/// docs) and allows them in its v1 devices cgroup. Problems are reported
/// per device, not as errors; an error means the container could not be
/// looked at at all.
pub fn make_devices(container: &Container) -> Result<DevicesOutcome> {
    let root = container.init().open("root", OFlags::PATH | OFlags::DIRECTORY)?;
    container.init().ensure_alive()?;
    let devices = DEVICES.iter().map(|d| make_one(&root, d)).collect();
    let rules: Vec<String> = DEVICES.iter().map(|d| format!("c {}:{} rwm", d.major, d.minor)).collect();
    let refs: Vec<&str> = rules.iter().map(String::as_str).collect();
    let cgroup = match crate::cgroup::allow_devices_v1(container, &refs) {
        Ok(Some(path)) => format!("v1 {path}: allowed {}", rules.join(", ")),
        Ok(None) => {
            "v2 or none: not changed (a v2 device filter is a BPF program of the runtime's; iwsd leaves it as is)"
                .into()
        }
        Err(e) => format!("devices cgroup not changed: {}", e.message()),
    };
    Ok(DevicesOutcome { devices, cgroup })
}

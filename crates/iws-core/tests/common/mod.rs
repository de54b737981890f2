//! Fixtures for root-only tests: throwaway PID namespaces made with
//! `unshare`, killed (with everything in them) on drop, also on panic.

#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// True when the test may run. Not root: prints a visible SKIPPED line (past
/// libtest's output capture) and returns false, or panics when
/// IWSD_REQUIRE_ROOT=1 says a skip is a failure.
pub fn root_or_skip(name: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    if std::env::var("IWSD_REQUIRE_ROOT").as_deref() == Ok("1") {
        panic!("{name} needs root, and IWSD_REQUIRE_ROOT=1 forbids skipping it");
    }
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {name}: needs root (run as root to test against real namespaces)");
    false
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

pub fn nspid(host_pid: i32) -> Vec<i32> {
    let s = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    iws_core::pidns::parse_nspid(&s).unwrap()
}

pub fn ns_ino(host_pid: i32, ns: &str) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{host_pid}/ns/{ns}")).unwrap().ino()
}

/// A container: a new PID namespace whose init is `sleep`, with one child
/// process that sits in a new user namespace with no map written yet.
pub struct Container {
    unshare: Child,
    /// Host PID of the container's init (PID 1 inside).
    pub init: i32,
    /// Host PID of the user-namespaced child.
    pub child: i32,
    /// The child's PID as seen inside the container.
    pub child_in_ns: i32,
}

impl Container {
    pub fn start() -> Container {
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--", "sh", "-c", "unshare --user sleep 1000 & exec sleep 1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let upid = unshare.id() as i32;
        let mut c = Container { unshare, init: 0, child: 0, child_in_ns: 0 };
        c.init = wait_for("container init", || children(upid).first().copied());
        let own_userns = ns_ino(std::process::id() as i32, "user");
        c.child = wait_for("user-namespaced child", || {
            let kid = *children(c.init).first()?;
            let in_new_userns = std::fs::metadata(format!("/proc/{kid}/ns/user")).ok().map(|_| ns_ino(kid, "user"))? != own_userns;
            let is_sleep = std::fs::read_to_string(format!("/proc/{kid}/comm")).ok()?.trim() == "sleep";
            (in_new_userns && is_sleep).then_some(kid)
        });
        c.child_in_ns = *nspid(c.child).last().unwrap();
        c
    }

    pub fn uid_map(&self, pid: i32, file: &str) -> Vec<(u32, u32, u32)> {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: Vec<u32> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
                (v[0], v[1], v[2])
            })
            .collect()
    }
}

/// A sibling container (same PID-namespace depth as [`Container`]) whose PID 2
/// is a zombie: its `status` still shows `NSpid:` but its ns links are gone.
pub struct ZombieContainer {
    unshare: Child,
    pub init: i32,
    pub zombie: i32,
}

impl ZombieContainer {
    pub fn start() -> ZombieContainer {
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--", "sh", "-c", "sleep 0 & exec sleep 1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let upid = unshare.id() as i32;
        let mut z = ZombieContainer { unshare, init: 0, zombie: 0 };
        z.init = wait_for("zombie container init", || children(upid).first().copied());
        z.zombie = wait_for("zombie", || {
            let kid = *children(z.init).first()?;
            let st = std::fs::read_to_string(format!("/proc/{kid}/status")).ok()?;
            st.lines().any(|l| l.starts_with("State:") && l.contains('Z')).then_some(kid)
        });
        z
    }
}

impl Drop for ZombieContainer {
    fn drop(&mut self) {
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // --kill-child: init (and with it the whole namespace) dies with unshare.
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
    }
}

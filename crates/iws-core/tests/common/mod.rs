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
    let _ =
        writeln!(std::io::stderr().lock(), "SKIPPED {name}: needs root (run as root to test against real namespaces)");
    false
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        // Generous: on a busy 2-core node a container can take seconds to start.
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
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
        let own_userns = ns_ino(std::process::id() as i32, "user");
        let (unshare, init, child) =
            start_with_child("unshare --user sleep 1000 & exec sleep 1000", "user-namespaced child", |kid| {
                let in_new_userns =
                    std::fs::metadata(format!("/proc/{kid}/ns/user")).ok().map(|_| ns_ino(kid, "user"))? != own_userns;
                let is_sleep = std::fs::read_to_string(format!("/proc/{kid}/comm")).ok()?.trim() == "sleep";
                Some(in_new_userns && is_sleep)
            });
        Container { unshare, init, child, child_in_ns: *nspid(child).last().unwrap() }
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

/// `unshare` running the shell `script` as PID 1 of a new PID namespace
/// (killed with it).
fn in_new_pid_ns(script: &str) -> Child {
    Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "--", "sh", "-c", script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn unshare (util-linux)")
}

/// Kills (and reaps) `unshare` on drop: a start-up that panics leaves no container behind.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// [`in_new_pid_ns`] `script`, once its init runs and init's first child is
/// the one `is_it` names (`what`, for a timeout): (unshare, init, that child),
/// all host PIDs.
fn start_with_child(script: &str, what: &str, is_it: impl Fn(i32) -> Option<bool>) -> (Child, i32, i32) {
    let mut guard = KillOnDrop(Some(in_new_pid_ns(script)));
    let upid = guard.0.as_ref().unwrap().id() as i32;
    let init = wait_for(&format!("{what}: container init"), || children(upid).first().copied());
    let kid = wait_for(what, || {
        let kid = *children(init).first()?;
        is_it(kid)?.then_some(kid)
    });
    (guard.0.take().unwrap(), init, kid)
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
        let (unshare, init, zombie) = start_with_child("sleep 0 & exec sleep 1000", "zombie", |kid| {
            let st = std::fs::read_to_string(format!("/proc/{kid}/status")).ok()?;
            Some(st.lines().any(|l| l.starts_with("State:") && l.contains('Z')))
        });
        ZombieContainer { unshare, init, zombie }
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

/// `nsenter --target host_pid <namespaces> --root --wd=/ busybox sh -c script`:
/// Ok(stdout) or Err(stderr).
fn busybox_sh(host_pid: i32, namespaces: &[&str], script: &str) -> Result<String, String> {
    let out = Command::new("nsenter")
        .args(["--target", &host_pid.to_string()])
        .args(namespaces)
        .args(["--root", "--wd=/", "--", "/bin/busybox", "sh", "-c", script])
        .output()
        .expect("nsenter");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A container with its own root: a busybox-static rootfs in a temp dir, its
/// own PID, mount (private propagation) and network namespaces; PID 1 is
/// `busybox sleep`. The rootfs holds traps for escape tests: `escape` (a
/// symlink to a host dir), `file`, `work/target` (a plain dir).
pub struct RootfsContainer {
    unshare: Child,
    pub init: i32,
    pub rootfs: std::path::PathBuf,
    /// A host directory outside the rootfs that symlinks point at.
    pub outside: std::path::PathBuf,
    base: std::path::PathBuf,
}

impl RootfsContainer {
    pub fn start() -> RootfsContainer {
        Self::start_in(&std::env::temp_dir(), "private")
    }

    /// A container whose rootfs lives under `parent`, with the given mount
    /// propagation (`unshare --propagation`).
    pub fn start_in(parent: &std::path::Path, propagation: &str) -> RootfsContainer {
        use std::os::unix::fs::symlink;
        let base = parent.join(format!(
            "iwsd-rs-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let rootfs = base.join("rootfs");
        let outside = base.join("outside");
        for d in ["bin", "proc", "sys", "work/target", "work/sub", "tmp"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::create_dir_all(&outside).unwrap();
        // Copied by a `cp` process, not std::fs::copy: the tests run on many threads, and a child
        // forked by another thread while our write fd was open would hold it until its exec, so the
        // container's exec of busybox failed with ETXTBSY ("Text file busy"). cp's fd is its own.
        let cp = Command::new("cp").arg("/bin/busybox").arg(rootfs.join("bin/busybox")).status().expect("cp");
        assert!(cp.success(), "cp /bin/busybox: busybox-static must be installed");
        std::fs::write(rootfs.join("file"), b"x").unwrap();
        symlink(&outside, rootfs.join("escape")).unwrap();
        symlink("/work/target", rootfs.join("work/inner-link")).unwrap();
        symlink(&outside, rootfs.join("work/sub/out")).unwrap();
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child", "--mount", "--propagation", propagation, "--net"])
            // As OCI runtimes do, the root is a mount of its own (a bind of
            // the rootfs onto itself, then chroot); the container's own tmpfs
            // at /tmp is there for "not ours" tests.
            .args(["--", "sh", "-c"])
            .arg(if propagation == "private" {
                // pivot_root, not chroot: the kernel refuses new user
                // namespaces to chrooted processes. (pivot_root needs a
                // private parent, hence only with private propagation.)
                format!(
                    "mount --bind {r} {r} && cd {r} && mkdir -p .old && pivot_root . .old && exec /bin/busybox sh -c 'cd / && /bin/busybox umount -l /.old && /bin/busybox rmdir /.old && /bin/busybox mount -t tmpfs tmpfs /tmp && exec /bin/busybox sleep 1000'",
                    r = rootfs.display()
                )
            } else {
                format!(
                    "mount --bind {r} {r} && exec unshare --root={r} -- /bin/busybox sh -c '/bin/busybox mount -t tmpfs tmpfs /tmp && exec /bin/busybox sleep 1000'",
                    r = rootfs.display()
                )
            })
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn unshare (util-linux)");
        let upid = unshare.id() as i32;
        let mut c = RootfsContainer { unshare, init: 0, rootfs, outside, base };
        // PID 1 of the container (sh, then unshare, then busybox: one process).
        c.init = wait_for("rootfs container init", || {
            let kid = *children(upid).first()?;
            let cmd = std::fs::read_to_string(format!("/proc/{kid}/cmdline")).ok()?;
            (cmd == "/bin/busybox\0sleep\x001000\0").then_some(kid)
        });
        c
    }

    /// The container's mount table, as mount points relative to its root,
    /// with fs type and mount options: (mount point, fstype, options).
    pub fn mounts(&self) -> Vec<(String, String, String)> {
        mounts_of(self.init)
    }

    /// Runs a busybox shell command inside the container (its root, mount,
    /// PID and network namespaces). Ok(stdout) or Err(stderr).
    pub fn sh(&self, script: &str) -> Result<String, String> {
        busybox_sh(self.init, &["--mount", "--pid", "--net"], script)
    }

    /// Starts a process inside the container (its root, mount and PID
    /// namespaces) in a new user namespace with no maps yet; returns its host
    /// PID and its PID inside the container. It dies with the container.
    pub fn spawn_userns(&self) -> (i32, i32) {
        let child = Command::new("nsenter")
            .args(["--target", &self.init.to_string(), "--mount", "--pid", "--root", "--wd=/"])
            .args(["--", "/bin/busybox", "unshare", "-U", "/bin/busybox", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .expect("nsenter");
        let own_userns = ns_ino(std::process::id() as i32, "user");
        let nsenter = child.id() as i32;
        // nsenter forks into the PID namespace; busybox unshare execs sleep.
        let host = wait_for("user-namespaced process in the container", || {
            let kid = *children(nsenter).first()?;
            let in_new =
                std::fs::metadata(format!("/proc/{kid}/ns/user")).ok().map(|_| ns_ino(kid, "user"))? != own_userns;
            let cmd = std::fs::read_to_string(format!("/proc/{kid}/cmdline")).ok()?;
            (in_new && cmd.starts_with("/bin/busybox\0sleep")).then_some(kid)
        });
        std::mem::forget(child); // reaped by init's death (--kill-child) and our exit
        (host, *nspid(host).last().unwrap())
    }

    /// Runs a busybox shell command as root of `host_pid`'s user namespace,
    /// in its mount namespace and root.
    pub fn sh_as(&self, host_pid: i32, script: &str) -> Result<String, String> {
        busybox_sh(host_pid, &["--user", "--mount"], script)
    }

    /// A path seen through the container's root (and mount namespace).
    pub fn inside(&self, path: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!("/proc/{}/root{}", self.init, path))
    }
}

/// (mount point, fstype, per-mount options) of every mount `pid` sees.
pub fn mounts_of(pid: i32) -> Vec<(String, String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-").unwrap();
            (f[4].to_string(), f[sep + 1].to_string(), f[5].to_string())
        })
        .collect()
}

pub fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

impl Drop for RootfsContainer {
    fn drop(&mut self) {
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        // The mounts lived only in the container's namespace, gone with it.
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

//! Root-only: the attacks of "Hostile workspace, part 1" that act through
//! mount namespaces, each run as the attacker it names against a real
//! container. Every one of them succeeded before the fix it names.

mod common;

use std::process::{Child, Command, Stdio};

use common::{children, mounts_of, nspid, root_or_skip, RootfsContainer};
use iws_core::masks::Masks;
use iws_core::mount::{self, MountStrategy, SysfsOptions};
use iws_core::pidns::{self, PidStrategy};
use iws_core::{ErrorKind, Reason};

fn strategy() -> PidStrategy {
    pidns::choose_strategy(None).unwrap()
}

const STRATEGIES: [MountStrategy; 2] = [MountStrategy::Detached, MountStrategy::Fallback];

/// A process started by `cmd` (whose last process is `sleep 1000`), killed on drop.
struct Proc {
    child: Child,
    /// Host PID of the sleeping process.
    host: i32,
}

impl Proc {
    fn start(args: &[&str]) -> Proc {
        let child = Command::new(args[0]).args(&args[1..]).stdin(Stdio::null()).spawn().expect("spawn");
        let top = child.id() as i32;
        let start = std::time::Instant::now();
        let host = loop {
            // The sleeper: the first descendant (or the process itself) running sleep.
            let mut todo = vec![top];
            let mut found = None;
            while let Some(p) = todo.pop() {
                let cmd = std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
                let argv: Vec<&str> = cmd.split('\0').collect();
                let prog = argv[0].rsplit('/').next().unwrap_or("");
                let sleeping = prog == "sleep" || (prog == "busybox" && argv.get(1) == Some(&"sleep"));
                if sleeping && argv.contains(&"1000") {
                    found = Some(p);
                    break;
                }
                todo.extend(children(p));
            }
            if let Some(p) = found {
                break p;
            }
            assert!(start.elapsed().as_secs() < 30, "process of {args:?} did not start");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        Proc { child, host }
    }

    /// Its PID as seen in the container's PID namespace.
    fn in_container(&self) -> i64 {
        *nspid(self.host).last().unwrap() as i64
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-9").arg(self.host.to_string()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mount points under `dir` in the test's own (the "host's") mount namespace.
fn host_mounts_under(dir: &str) -> Vec<String> {
    mounts_of(std::process::id() as i32).into_iter().map(|m| m.0).filter(|m| m.starts_with(dir)).collect()
}

/// Asserts that `e` is a PERMISSION_DENIED refusal for `reason`.
fn assert_denied(e: iws_core::Error, reason: Reason) {
    assert_eq!((e.kind(), e.reason()), (ErrorKind::PermissionDenied, Some(reason)), "{e}");
}

/// MountProc (default masks) of `target` for process `pid` with `ms`, which must fail: its error.
fn proc_refusal(ws: &pidns::Container, ms: MountStrategy, pid: i64, target: &str) -> iws_core::Error {
    mount::mount_proc(ws, strategy(), ms, None, pid, target, &Masks::proc_default()).unwrap_err()
}

/// Asserts that MountProc and MountSysfs of `target` for process `pid` are
/// both refused (PERMISSION_DENIED, `reason`) with every mount strategy.
fn assert_proc_and_sysfs_refused(ws: &pidns::Container, pid: i64, target: &str, reason: Reason) {
    for ms in STRATEGIES {
        assert_denied(proc_refusal(ws, ms, pid, target), reason);
        let e = mount::mount_sysfs(ws, strategy(), ms, None, pid, target, &SysfsOptions::default()).unwrap_err();
        assert_denied(e, reason);
    }
}

/// Attack: a workspace names a process that joined only the container's PID
/// namespace (as `nsenter --target <init> --pid` does) and so lives in the
/// host's mount namespace. Before the fix, proc and sysfs were mounted there,
/// at a host path.
#[test]
fn mount_ops_refuse_a_process_in_the_host_mount_namespace() {
    if !root_or_skip("mount_ops_refuse_a_process_in_the_host_mount_namespace") {
        return;
    }
    let c = RootfsContainer::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let init = c.init.to_string();
    let p = Proc::start(&["nsenter", "--target", &init, "--pid", "--", "sleep", "1000"]);
    let target = c.outside.to_str().unwrap().to_string();
    assert_proc_and_sysfs_refused(&ws, p.in_container(), &target, Reason::HostMountNamespace);
    // UmountProc of a host mount (the temp dir's own mount) is refused too.
    let e = mount::umount(&ws, strategy(), None, p.in_container(), "/", &[]).unwrap_err();
    assert_eq!(e.reason(), Some(Reason::HostMountNamespace), "{e}");
    assert_eq!(host_mounts_under(&target), Vec::<String>::new(), "nothing mounted on the host");
}

/// Attack: a process in the container's PID namespace but in a mount
/// namespace that is neither the container's nor made inside it.
#[test]
fn mount_ops_refuse_a_foreign_mount_namespace() {
    if !root_or_skip("mount_ops_refuse_a_foreign_mount_namespace") {
        return;
    }
    let c = RootfsContainer::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let init = c.init.to_string();
    // A new mount namespace owned by the host's user namespace.
    let p = Proc::start(&[
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "nsenter",
        "--target",
        &init,
        "--pid",
        "--",
        "sleep",
        "1000",
    ]);
    assert_denied(proc_refusal(&ws, MountStrategy::Detached, p.in_container(), "/tmp"), Reason::ForeignMountNamespace);
}

/// Attack: a process in the container's own mount namespace whose root is
/// not at or below the container's root (a container made with chroot keeps
/// the host's tree in its namespace; `nsenter --mount` without `--root` puts
/// a process at its top).
#[test]
fn mount_ops_refuse_a_root_outside_the_container() {
    if !root_or_skip("mount_ops_refuse_a_root_outside_the_container") {
        return;
    }
    let c = RootfsContainer::start_in(&std::env::temp_dir(), "slave");
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let init = c.init.to_string();
    let p = Proc::start(&["nsenter", "--target", &init, "--mount", "--pid", "--", "sleep", "1000"]);
    let target = c.outside.to_str().unwrap().to_string();
    assert_denied(proc_refusal(&ws, MountStrategy::Detached, p.in_container(), &target), Reason::EscapesRoot);
    assert!(mounts_of(p.host).iter().all(|m| !m.0.starts_with(&target)), "nothing mounted in its namespace");
}

/// Not an attack: a ring that pivot_root()s (into the mark, or a container
/// nested in the ring into its rootfs) has no path back to the container's
/// root; its root is mounted in its own namespace, which came from the
/// container, and it is served.
#[test]
fn a_ring_that_pivot_roots_is_served() {
    if !root_or_skip("a_ring_that_pivot_roots_is_served") {
        return;
    }
    let c = RootfsContainer::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let init = c.init.to_string();
    let bb = "/bin/busybox";
    let script = format!(
        "until [ \"$({bb} id -u)\" = 0 ]; do {bb} usleep 10000; done; {bb} mount -t tmpfs t /work/sub && {bb} mkdir /work/sub/old /work/sub/proc /work/sub/bin && {bb} cp {bb} /work/sub/bin/ && cd /work/sub && {bb} pivot_root . old && cd / && {bb} umount -l /old && exec {bb} sleep 1000"
    );
    let child = Command::new("nsenter")
        .args([
            "--target", &init, "--mount", "--pid", "--root", "--wd=/", "--", bb, "unshare", "-U", "-m", bb, "sh", "-c",
        ])
        .arg(&script)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let own = common::ns_ino(std::process::id() as i32, "user");
    let top = child.id() as i32;
    let start = std::time::Instant::now();
    let host = loop {
        if let Some(k) = children(top).first().copied() {
            if std::fs::metadata(format!("/proc/{k}/ns/user")).is_ok() && common::ns_ino(k, "user") != own {
                break k;
            }
        }
        assert!(start.elapsed().as_secs() < 30, "ring did not start");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let ring = Proc { child, host };
    for f in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{host}/{f}"), "0 0 1\n").unwrap();
    }
    let start = std::time::Instant::now();
    // Until the shell has exec'ed sleep, i.e. after the pivot (the script's
    // own text names sleep too).
    while !std::fs::read_to_string(format!("/proc/{host}/cmdline"))
        .unwrap_or_default()
        .starts_with("/bin/busybox\0sleep")
    {
        assert!(start.elapsed().as_secs() < 30, "ring did not pivot");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let id = mount::mount_proc(
        &ws,
        strategy(),
        MountStrategy::Detached,
        None,
        ring.in_container(),
        "/proc",
        &Masks::proc_default(),
    )
    .unwrap()
    .mount_id;
    assert!(mounts_of(host).iter().any(|m| m.0 == "/proc" && m.1 == "proc"));
    mount::umount(&ws, strategy(), None, ring.in_container(), "/proc", &[(id, None)]).unwrap();
}

/// Attack: ring root (uid 0 of a user namespace made inside the container,
/// owning its mount namespace) takes the masks off the proc iwsd mounted for
/// it, or makes a read-only part writable. Before the fix every mask was a
/// plain mount it could unmount.
#[test]
fn ring_root_cannot_remove_masks_or_remount_read_only_parts() {
    if !root_or_skip("ring_root_cannot_remove_masks_or_remount_read_only_parts") {
        return;
    }
    for ms in STRATEGIES {
        let c = RootfsContainer::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let ring = start_ring(&c);
        let sh = |script: &str| c.sh_as(ring.host, script);
        mount::mount_proc(&ws, strategy(), ms, None, ring.in_container(), "/work/target", &Masks::proc_default())
            .unwrap();
        mount::mount_sysfs(&ws, strategy(), ms, None, ring.in_container(), "/work/sub", &SysfsOptions::default())
            .unwrap();
        assert_eq!(sh("/bin/busybox id -u").unwrap().trim(), "0", "ring root");
        assert_eq!(sh("/bin/busybox cat /work/target/keys | /bin/busybox wc -c").unwrap().trim(), "0");
        for mask in ["keys", "timer_list", "sys", "bus", "fs", "irq"] {
            if sh(&format!("test -e /work/target/{mask}")).is_err() {
                continue;
            }
            assert!(sh(&format!("/bin/busybox umount /work/target/{mask}")).is_err(), "{ms:?}: umount {mask}");
            assert!(sh(&format!("/bin/busybox umount -l /work/target/{mask}")).is_err(), "{ms:?}: umount -l {mask}");
        }
        for ro in ["sys", "bus", "fs", "irq"] {
            if sh(&format!("test -e /work/target/{ro}")).is_err() {
                continue;
            }
            assert!(
                sh(&format!("/bin/busybox mount -o remount,bind,rw /work/target/{ro}")).is_err(),
                "{ms:?}: rw {ro}"
            );
        }
        let e = sh("echo pwned > /work/target/sys/kernel/hostname").unwrap_err();
        assert!(e.contains("Read-only"), "{ms:?}: {e}");
        assert_eq!(
            sh("/bin/busybox cat /work/target/keys | /bin/busybox wc -c").unwrap().trim(),
            "0",
            "{ms:?}: keys still masked"
        );
        // The proc itself keeps nosuid,nodev,noexec; the sysfs stays read-only.
        assert!(sh("/bin/busybox mount -o remount,bind,exec /work/target").is_err(), "{ms:?}: exec proc");
        assert!(sh("/bin/busybox mount -o remount,bind,rw /work/sub").is_err(), "{ms:?}: rw sysfs");
        for mask in ["firmware", "devices/virtual/powercap"] {
            if sh(&format!("test -e /work/sub/{mask}")).is_ok() {
                assert!(
                    sh(&format!("/bin/busybox umount -l /work/sub/{mask}")).is_err(),
                    "{ms:?}: umount sysfs {mask}"
                );
            }
        }
        // A non-recursive bind (which would drop the masks) is refused.
        assert!(
            sh("/bin/busybox mkdir -p /tmp/x && /bin/busybox mount --bind /work/target /tmp/x").is_err(),
            "{ms:?}: bind proc"
        );
        // iwsd itself can still take its whole proc away.
        let ours = mounts_of(ring.host).into_iter().filter(|m| m.0 == "/work/target").count();
        assert_eq!(ours, 1);
    }
}

/// A ring whose maps (uid and gid 0 -> 0) are written from outside, as
/// workspacekit's ring1 gets them through WriteIDMapping.
fn start_ring(c: &RootfsContainer) -> Proc {
    let init = c.init.to_string();
    let ring = Proc::start(&[
        "nsenter",
        "--target",
        &init,
        "--mount",
        "--pid",
        "--root",
        "--wd=/",
        "--",
        "/bin/busybox",
        "unshare",
        "-U",
        "-m",
        "/bin/busybox",
        "sleep",
        "1000",
    ]);
    for f in ["uid_map", "gid_map"] {
        std::fs::write(format!("/proc/{}/{f}", ring.host), "0 0 1\n").unwrap();
    }
    ring
}

/// Attack: ring root mounts a file of its own *on top of* a `/dev/null`
/// mask (locking forbids unmounting, not mounting on top). Under systemd the
/// host's `/dev` is shared; a mask cloned from it was its peer, and the mount
/// propagated onto the host's `/dev/null`. Runs itself again in a private
/// mount namespace whose `/dev` is made shared, as on such a host.
#[test]
fn ring_root_cannot_reach_the_hosts_dev_null_through_a_mask() {
    const NAME: &str = "ring_root_cannot_reach_the_hosts_dev_null_through_a_mask";
    if !root_or_skip(NAME) {
        return;
    }
    if std::env::var("IWSD_TEST_SHARED_DEV").as_deref() != Ok("1") {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(format!("mount --make-shared /dev && exec \"$0\" --exact {NAME} --nocapture --test-threads=1"))
            .arg(exe)
            .env("IWSD_TEST_SHARED_DEV", "1")
            .output()
            .unwrap();
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && log.contains("1 passed"), "{log}");
        return;
    }
    let shared = mounts_of(std::process::id() as i32).into_iter().any(|m| m.0 == "/dev");
    assert!(shared, "no /dev here");
    for ms in STRATEGIES {
        let c = RootfsContainer::start();
        std::fs::write(c.rootfs.join("evil"), b"attacker content\n").unwrap();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let ring = start_ring(&c);
        mount::mount_proc(&ws, strategy(), ms, None, ring.in_container(), "/work/target", &Masks::proc_default())
            .unwrap();
        // Nothing placed joins a peer group (of the host's /dev or anything).
        for m in std::fs::read_to_string(format!("/proc/{}/mountinfo", ring.host)).unwrap().lines() {
            if m.split(' ').nth(4).is_some_and(|mp| mp.starts_with("/work/target")) {
                assert!(!m.contains("shared:") && !m.contains("master:"), "{ms:?}: {m}");
            }
        }
        let _ = c.sh_as(ring.host, "/bin/busybox mount --bind /evil /work/target/keys");
        let on_dev_null: Vec<_> =
            mounts_of(std::process::id() as i32).into_iter().filter(|m| m.0 == "/dev/null").collect();
        assert_eq!(on_dev_null, vec![], "{ms:?}: a mount reached the host's /dev/null");
        assert_eq!(std::fs::read_to_string("/dev/null").unwrap(), "", "{ms:?}");
    }
}

/// Attack: MountProc calls by the thousand, most of them refused, must not
/// fill the lock namespace (each call's carrier leaked there before: after
/// about 4,000 calls every MountProc on the node failed).
#[test]
fn the_lock_namespace_does_not_grow() {
    if !root_or_skip("the_lock_namespace_does_not_grow") {
        return;
    }
    let c = RootfsContainer::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let ring = start_ring(&c);
    for ms in STRATEGIES {
        for _ in 0..20 {
            let id = mount::mount_proc(
                &ws,
                strategy(),
                ms,
                None,
                ring.in_container(),
                "/work/target",
                &Masks::proc_default(),
            )
            .unwrap()
            .mount_id;
            mount::umount(&ws, strategy(), None, ring.in_container(), "/work/target", &[(id, None)]).unwrap();
            let e =
                mount::mount_proc(&ws, strategy(), ms, None, ring.in_container(), "/no/such", &Masks::proc_default())
                    .unwrap_err();
            assert_eq!(e.reason(), Some(Reason::Missing), "{e}");
        }
        // Other tests of this binary may be mid-call (a carrier lives for
        // one call): wait for a quiet moment rather than count theirs.
        let mut n = 0;
        for _ in 0..200 {
            n = mount::lock_namespace_mounts().unwrap();
            if n == 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        assert_eq!(n, 1, "{ms:?}: carriers left in the lock namespace");
    }
}

/// Attack: ring root keeps mounting something onto the proc iwsd made for it
/// while asking iwsd to unmount that proc. umount2 takes the top of the
/// stack, so the racing mount could go instead of ours, and ours would have
/// been reported removed (dropped from the workspace's count) while still
/// mounted. Whenever iwsd reports a mount removed, it must be gone.
#[test]
fn an_unmount_reported_done_is_done_even_under_a_racing_mount() {
    if !root_or_skip("an_unmount_reported_done_is_done_even_under_a_racing_mount") {
        return;
    }
    let c = RootfsContainer::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let ring = start_ring(&c);
    let racer = Command::new("nsenter")
        .args(["--target", &ring.host.to_string(), "--user", "--mount", "--root", "--wd=/", "--"])
        .args([
            "/bin/busybox",
            "sh",
            "-c",
            "while :; do /bin/busybox mount -t tmpfs race /work/target; /bin/busybox umount /work/target/.; done",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _racer = Kill(racer);
    let (mut done, mut other) = (0, 0);
    for _ in 0..1000 {
        let Ok(m) = mount::mount_proc(
            &ws,
            strategy(),
            MountStrategy::Detached,
            None,
            ring.in_container(),
            "/work/target",
            &Masks::proc_default(),
        ) else {
            other += 1;
            continue;
        };
        match mount::umount(&ws, strategy(), None, ring.in_container(), "/work/target", &[(m.mount_id, None)]) {
            Ok(id) => {
                done += 1;
                assert_eq!(id, m.mount_id);
                assert!(!unique_id_mounted(ring.host, id), "reported removed, still mounted");
            }
            Err(_) => other += 1,
        }
    }
    eprintln!("{done} unmounts done, {other} refused or raced");
    assert!(done > 0);
}

/// Whether a mount with unique id `id` is in `pid`'s mount namespace (listmount
/// is not needed: statmount from a thread that joined the namespace).
fn unique_id_mounted(pid: i32, id: u64) -> bool {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/mnt")).unwrap();
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_FS).unwrap();
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNS).unwrap();
        iws_core::mount::is_mounted_here(id).unwrap()
    })
    .join()
    .unwrap()
}

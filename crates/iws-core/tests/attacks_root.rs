//! Root-only: the attacks of "Hostile workspace, part 1" that act through
//! mount namespaces, each run as the attacker it names against a real
//! container. Every one of them succeeded before the fix it names.

mod common;

use std::process::{Child, Command, Stdio};

use common::{children, mounts_of, nspid, root_or_skip, RootfsContainer};
use iws_core::mount::{self, Masks, MountStrategy, SysfsOptions};
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
            assert!(start.elapsed().as_secs() < 10, "process of {args:?} did not start");
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
    for ms in STRATEGIES {
        let e = mount::mount_proc(&ws, strategy(), ms, p.in_container(), &target, &Masks::proc_default()).unwrap_err();
        assert_eq!((e.kind(), e.reason()), (ErrorKind::PermissionDenied, Some(Reason::HostMountNamespace)), "{e}");
        let e =
            mount::mount_sysfs(&ws, strategy(), ms, p.in_container(), &target, &SysfsOptions::default()).unwrap_err();
        assert_eq!((e.kind(), e.reason()), (ErrorKind::PermissionDenied, Some(Reason::HostMountNamespace)), "{e}");
    }
    // UmountProc of a host mount (the temp dir's own mount) is refused too.
    let e = mount::umount(&ws, strategy(), p.in_container(), "/", &[]).unwrap_err();
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
    let e =
        mount::mount_proc(&ws, strategy(), MountStrategy::Detached, p.in_container(), "/tmp", &Masks::proc_default())
            .unwrap_err();
    assert_eq!((e.kind(), e.reason()), (ErrorKind::PermissionDenied, Some(Reason::ForeignMountNamespace)), "{e}");
}

/// Attack: a process whose mount namespace is owned by a user namespace below
/// the container's (the host's, for a container without one) but whose root
/// is the host's root, not at or below the container's.
#[test]
fn mount_ops_refuse_a_root_outside_the_container() {
    if !root_or_skip("mount_ops_refuse_a_root_outside_the_container") {
        return;
    }
    let c = RootfsContainer::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let init = c.init.to_string();
    let p = Proc::start(&[
        "nsenter",
        "--target",
        &init,
        "--pid",
        "--",
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "sleep",
        "1000",
    ]);
    let target = c.outside.to_str().unwrap().to_string();
    let e =
        mount::mount_proc(&ws, strategy(), MountStrategy::Detached, p.in_container(), &target, &Masks::proc_default())
            .unwrap_err();
    assert_eq!((e.kind(), e.reason()), (ErrorKind::PermissionDenied, Some(Reason::EscapesRoot)), "{e}");
    assert!(mounts_of(p.host).iter().all(|m| !m.0.starts_with(&target)), "nothing mounted in its namespace");
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
        // Its maps, written from outside (the container has no /proc).
        for f in ["uid_map", "gid_map"] {
            std::fs::write(format!("/proc/{}/{f}", ring.host), "0 0 1\n").unwrap();
        }
        let sh = |script: &str| c.sh_as(ring.host, script);
        mount::mount_proc(&ws, strategy(), ms, ring.in_container(), "/work/target", &Masks::proc_default()).unwrap();
        mount::mount_sysfs(&ws, strategy(), ms, ring.in_container(), "/work/sub", &SysfsOptions::default()).unwrap();
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

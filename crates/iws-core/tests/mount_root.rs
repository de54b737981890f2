//! Root-only: masked proc and sysfs mounted into real containers with their
//! own root, PID, mount and network namespaces; escapes refused; unmount
//! limited to our own mounts; the host's mount table never changes.

mod common;

use common::{host_mountinfo, root_or_skip, RootfsContainer};
use iws_core::masks::Masks;
use iws_core::mount::{self, MountStrategy, SysfsOptions};
use iws_core::pidns::{self, PidStrategy};
use iws_core::ErrorKind;

fn strategy() -> PidStrategy {
    pidns::choose_strategy(None).unwrap()
}

/// Every mount test runs with both assembly strategies: the fd-based one and
/// the fallback for older kernels, forced.
const STRATEGIES: [MountStrategy; 2] = [MountStrategy::Detached, MountStrategy::Fallback];

#[test]
fn kernel_can_assemble_a_detached_masked_proc() {
    if !root_or_skip("kernel_can_assemble_a_detached_masked_proc") {
        return;
    }
    assert_eq!(mount::probe_detached_proc(), Ok(()));
    assert_eq!(mount::choose_strategy(None).unwrap(), MountStrategy::Detached);
    assert_eq!(mount::choose_strategy(Some(MountStrategy::Fallback)).unwrap(), MountStrategy::Fallback);
}

#[test]
fn masked_proc_lands_inside_the_container_only() {
    if !root_or_skip("masked_proc_lands_inside_the_container_only") {
        return;
    }
    for ms in STRATEGIES {
        let host_before = host_mountinfo();
        let c = RootfsContainer::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let out = mount::mount_proc(&ws, strategy(), ms, None, 1, "/proc", &Masks::proc_default()).unwrap();
        assert!(out.mount_id > 0);

        let mounts = c.mounts();
        let proc = mounts.iter().find(|m| m.0 == "/proc" && m.1 == "proc").expect("proc mounted at /proc");
        for opt in ["nosuid", "nodev", "noexec"] {
            assert!(proc.2.split(',').any(|o| o == opt), "{opt} missing in {}", proc.2);
        }
        // Seen from inside the container: PID 1 of the new proc is its init,
        // masked entries read empty, read-only ones refuse writes.
        assert_eq!(c.sh("cat /proc/1/comm").unwrap().trim(), "busybox");
        // Entries this kernel lacks (kcore, sysrq-trigger here) are skipped.
        for masked in ["kcore", "timer_list", "keys", "interrupts", "sched_debug"] {
            if std::path::Path::new("/proc").join(masked).exists() {
                assert_eq!(c.sh(&format!("cat /proc/{masked} | wc -c")).unwrap().trim(), "0", "{masked}");
            }
        }
        assert_ne!(c.sh("cat /proc/version | wc -c").unwrap().trim(), "0", "unmasked entries still work");
        let keys = mounts.iter().find(|m| m.0 == "/proc/keys").expect("keys masked");
        assert_eq!(keys.1, "devtmpfs", "a file is masked by a bind of /dev/null: {keys:?}");
        let e = c.sh("echo pwned > /proc/sys/kernel/hostname").unwrap_err();
        assert!(e.contains("Read-only file system"), "{e}");
        if std::path::Path::new("/proc/sysrq-trigger").exists() {
            let e = c.sh("echo b > /proc/sysrq-trigger").unwrap_err();
            assert!(e.contains("Read-only file system"), "{e}");
        }
        for ro in ["/proc/sys", "/proc/sysrq-trigger", "/proc/bus", "/proc/fs", "/proc/irq"] {
            if !std::path::Path::new(ro).exists() {
                continue;
            }
            let m = mounts.iter().find(|m| m.0 == ro).unwrap_or_else(|| panic!("{ro} not read-only mounted"));
            assert!(m.2.starts_with("ro"), "{ro}: {m:?}");
        }
        // acpi and others, if the kernel has them, are masked by empty directories.
        if let Some(acpi) = mounts.iter().find(|m| m.0 == "/proc/acpi") {
            assert_eq!(acpi.1, "tmpfs");
            assert_eq!(c.sh("ls -A /proc/acpi | wc -l").unwrap().trim(), "0");
            assert!(c.sh("touch /proc/acpi/x").is_err(), "a directory mask is not writable");
            // Read-only as a superblock too, not only as a mount: every
            // directory mask is a clone of one tmpfs instance, which no
            // container may turn into a shared scratch space.
            let line = std::fs::read_to_string(format!("/proc/{}/mountinfo", c.init))
                .unwrap()
                .lines()
                .find(|l| l.split(' ').nth(4) == Some("/proc/acpi"))
                .map(str::to_owned)
                .unwrap();
            let super_opts = line.rsplit(' ').next().unwrap();
            assert!(super_opts.split(',').next() == Some("ro"), "superblock of the acpi mask: {line}");
        }
        assert_eq!(host_mountinfo(), host_before, "the host's mount table must not change");
    }
}

#[test]
fn escapes_are_refused_and_nothing_is_mounted() {
    if !root_or_skip("escapes_are_refused_and_nothing_is_mounted") {
        return;
    }
    for ms in STRATEGIES {
        let host_before = host_mountinfo();
        let c = RootfsContainer::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let before = c.mounts();
        let cases = [
            ("/escape", "symlink"),          // symlink to a host dir
            ("/escape/", "symlink"),         // same, trailing slash
            ("/work/sub/out", "symlink"),    // intermediate dir fine, last is a symlink
            ("/work/inner-link", "symlink"), // symlink even though it stays inside
            ("/work/../../escape", "'..'"),  // climbing
            ("/file", "not a directory"),    // a file
            ("/missing", "does not exist"),
            ("work/target", "relative"),
        ];
        for (target, why) in cases {
            let e = mount::mount_proc(&ws, strategy(), ms, None, 1, target, &Masks::proc_default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{target}: {e}");
            assert!(e.message().contains(why), "{target}: {e}");
        }
        // Magic links: once a proc is inside, /proc/self/... must not be usable.
        mount::mount_proc(&ws, strategy(), ms, None, 1, "/proc", &Masks::proc_default()).unwrap();
        let with_proc = c.mounts();
        for target in ["/proc/self/root", "/proc/1/root", "/proc/self/cwd", "/proc/thread-self/root"] {
            let e = mount::mount_proc(&ws, strategy(), ms, None, 1, target, &Masks::proc_default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{target}: {e}");
        }
        assert_eq!(c.mounts(), with_proc, "refused requests mount nothing");
        assert!(with_proc.len() > before.len());
        assert_eq!(std::fs::read_dir(&c.outside).unwrap().count(), 0);
        assert_eq!(host_mountinfo(), host_before);
    }
}

#[test]
fn only_our_own_mounts_can_be_unmounted() {
    if !root_or_skip("only_our_own_mounts_can_be_unmounted") {
        return;
    }
    for ms in STRATEGIES {
        let c = RootfsContainer::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let s = strategy();
        let ours = mount::mount_proc(&ws, s, ms, None, 1, "/work/target", &Masks::proc_default()).unwrap().mount_id;
        let theirs = mount::mount_proc(&ws, s, ms, None, 1, "/proc", &Masks::proc_default()).unwrap().mount_id;

        // Not in the owned list: refused, still mounted.
        let e = mount::umount(&ws, s, None, 1, "/proc", &[(ours, None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(c.mounts().iter().any(|m| m.0 == "/proc" && m.1 == "proc"));
        // The container's own tmpfs at /tmp is a mount we did not make.
        let e = mount::umount(&ws, s, None, 1, "/tmp", &[(ours, None), (theirs, None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        assert!(c.mounts().iter().any(|m| m.0 == "/tmp" && m.1 == "tmpfs"), "left mounted");
        // The container's root mount is not ours either.
        let e = mount::umount(&ws, s, None, 1, "/", &[(ours, None), (theirs, None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        // A directory with nothing mounted on it.
        let e = mount::umount(&ws, s, None, 1, "/work/sub", &[(ours, None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        let e = mount::umount(&ws, s, None, 1, "/nope", &[(ours, None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
        // A mask (a mount inside ours) is not ours to remove on its own.
        let e = mount::umount(&ws, s, None, 1, "/work/target/sys", &[(ours, None)]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        // Ours: gone with its masks.
        assert_eq!(mount::umount(&ws, s, None, 1, "/work/target", &[(ours, None)]).unwrap(), ours);
        assert!(!c.mounts().iter().any(|m| m.0.starts_with("/work/target")), "{:?}", c.mounts());
        assert_eq!(mount::umount(&ws, s, None, 1, "/proc", &[(theirs, None)]).unwrap(), theirs);
        assert!(!c.mounts().iter().any(|m| m.1 == "proc"));
    }
}

#[test]
fn masked_sysfs_shows_the_container_network_only() {
    if !root_or_skip("masked_sysfs_shows_the_container_network_only") {
        return;
    }
    for ms in STRATEGIES {
        let host_before = host_mountinfo();
        let c = RootfsContainer::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let id = mount::mount_sysfs(&ws, strategy(), ms, None, 1, "/sys", &SysfsOptions::default()).unwrap().mount_id;
        let mounts = c.mounts();
        let sys = mounts.iter().find(|m| m.0 == "/sys" && m.1 == "sysfs").expect("sysfs at /sys");
        for opt in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(sys.2.split(',').any(|o| o == opt), "{opt} missing in {}", sys.2);
        }
        let mut nets: Vec<String> = std::fs::read_dir(c.inside("/sys/class/net"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        nets.sort();
        assert_eq!(nets, vec!["lo".to_string()], "only the container's own interfaces");
        if std::path::Path::new("/sys/firmware").exists() {
            assert_eq!(std::fs::read_dir(c.inside("/sys/firmware")).unwrap().count(), 0, "firmware masked");
        }
        assert_eq!(mount::umount(&ws, strategy(), None, 1, "/sys", &[(id, None)]).unwrap(), id);
        assert_eq!(host_mountinfo(), host_before);
    }
}

//! Root-only: a mount must never propagate back into the daemon's mount
//! namespace. Runs in a thread with a mount namespace of its own standing in
//! for the host (so the real host's mount table is never touched), holding a
//! shared tmpfs that the container's rootfs lives on.

mod common;

use common::{root_or_skip, RootfsContainer};
use iws_core::masks::Masks;
use iws_core::mount::{self, MountStrategy};
use iws_core::pidns::{self, PidStrategy};
use iws_core::ErrorKind;
use nix::mount::{mount, MsFlags};
use nix::sched::CloneFlags;

fn thread_mountinfo() -> String {
    std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap()
}

#[test]
fn mounts_never_propagate_into_the_daemon_namespace() {
    if !root_or_skip("mounts_never_propagate_into_the_daemon_namespace") {
        return;
    }
    std::thread::spawn(|| {
        // A stand-in "host" namespace for this thread only.
        nix::sched::unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS).unwrap();
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>).unwrap();
        let base = std::env::temp_dir().join(format!("iwsd-prop-{}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        // Removed also when an assertion fails (the mounts die with the
        // thread's namespace).
        struct RmOnDrop(std::path::PathBuf);
        impl Drop for RmOnDrop {
            fn drop(&mut self) {
                let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _cleanup = RmOnDrop(base.clone());
        mount(Some("none"), &base, Some("tmpfs"), MsFlags::empty(), None::<&str>).unwrap();
        mount(None::<&str>, &base, None::<&str>, MsFlags::MS_SHARED, None::<&str>).unwrap();

        for ms in [MountStrategy::Detached, MountStrategy::Fallback] {
            // Peers of our shared tmpfs: attaching there would show up here.
            let c = RootfsContainer::start_in(&base, "unchanged");
            // (The container's own tmpfs at /tmp has propagated here already:
            // compare from after its start.)
            let before = thread_mountinfo();
            let ws = pidns::Container::open(c.init as i64).unwrap();
            let e =
                mount::mount_proc(&ws, PidStrategy::Ioctl, ms, None, 1, "/proc", &Masks::proc_default()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{ms:?}: {e}");
            assert!(e.message().contains("propagation"), "{e}");
            assert_eq!(thread_mountinfo(), before, "{ms:?}: nothing may reach the daemon's namespace");
            drop(c);

            // Slaves receive but do not send: allowed, and still nothing here.
            let c = RootfsContainer::start_in(&base, "slave");
            let before = thread_mountinfo();
            let ws = pidns::Container::open(c.init as i64).unwrap();
            mount::mount_proc(&ws, PidStrategy::Ioctl, ms, None, 1, "/proc", &Masks::proc_default()).unwrap();
            assert!(c.mounts().iter().any(|m| m.0 == "/proc" && m.1 == "proc"));
            assert_eq!(thread_mountinfo(), before, "{ms:?}: a slave's mount stays in the container");
        }
    })
    .join()
    .unwrap();
}

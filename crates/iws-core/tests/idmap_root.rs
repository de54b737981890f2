//! Root-only: real id maps written into real user namespaces inside real PID
//! namespaces, through both PID strategies.

mod common;

use common::{root_or_skip, Container, ZombieContainer};
use iws_core::idmap::{IdMapping, IdPolicy};
use iws_core::idmap_write::{write_id_mapping, IdKind};
use iws_core::pidns::{self, PidStrategy};
use iws_core::ErrorKind;

fn strategies() -> Vec<PidStrategy> {
    let mut v = vec![PidStrategy::Scan];
    if pidns::probe_pidns_ioctl() {
        v.push(PidStrategy::Ioctl);
    }
    v
}

fn ring_map() -> Vec<IdMapping> {
    vec![
        IdMapping { container_id: 0, host_id: 33333, size: 1 },
        IdMapping { container_id: 1, host_id: 100000, size: 65534 },
    ]
}

#[test]
fn ioctl_strategy_is_available_on_this_kernel() {
    // DESIGN.md names Linux 6.18 as the reference kernel; the fast path must
    // not silently degrade there.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut it = release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|x| x.parse::<u32>().ok());
    let (maj, min) = (it.next().unwrap(), it.next().unwrap());
    if (maj, min) >= (6, 11) {
        assert!(pidns::probe_pidns_ioctl(), "kernel {maj}.{min} should support NS_GET_TGID_FROM_PIDNS");
    }
}

#[test]
fn writes_uid_and_gid_maps_into_a_child_user_namespace() {
    if !root_or_skip("writes_uid_and_gid_maps_into_a_child_user_namespace") {
        return;
    }
    for s in strategies() {
        let c = Container::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let out = write_id_mapping(&ws, s, None, c.child_in_ns as i64, IdKind::Uid, &ring_map(), &IdPolicy::default())
            .unwrap();
        assert_eq!(out.host_pid, c.child, "{s:?}");
        assert_eq!(c.uid_map(c.child, "uid_map"), vec![(0, 33333, 1), (1, 100000, 65534)]);
        write_id_mapping(&ws, s, None, c.child_in_ns as i64, IdKind::Gid, &ring_map(), &IdPolicy::default()).unwrap();
        assert_eq!(c.uid_map(c.child, "gid_map"), vec![(0, 33333, 1), (1, 100000, 65534)]);
        // A second write is the kernel's to refuse.
        let e = write_id_mapping(&ws, s, None, c.child_in_ns as i64, IdKind::Uid, &ring_map(), &IdPolicy::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}");
        assert!(e.message().contains("EPERM"), "{e}");
    }
}

#[test]
fn translates_container_pid_one_to_its_init() {
    if !root_or_skip("translates_container_pid_one_to_its_init") {
        return;
    }
    let c = Container::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    for s in strategies() {
        assert_eq!(ws.resolve(1, s).unwrap().host_pid(), c.init, "{s:?}");
        assert_eq!(ws.resolve(c.child_in_ns as i64, s).unwrap().host_pid(), c.child, "{s:?}");
    }
}

#[test]
fn invalid_map_leaves_nothing_written() {
    if !root_or_skip("invalid_map_leaves_nothing_written") {
        return;
    }
    let c = Container::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let bad = vec![
        IdMapping { container_id: 0, host_id: 33333, size: 1 },
        IdMapping { container_id: 1, host_id: 169999, size: 2 }, // ends outside the user range
    ];
    let e =
        write_id_mapping(&ws, PidStrategy::Scan, None, c.child_in_ns as i64, IdKind::Uid, &bad, &IdPolicy::default())
            .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(c.uid_map(c.child, "uid_map").is_empty());
    write_id_mapping(
        &ws,
        PidStrategy::Scan,
        None,
        c.child_in_ns as i64,
        IdKind::Uid,
        &ring_map(),
        &IdPolicy::default(),
    )
    .unwrap();
}

#[test]
fn refuses_processes_outside_the_workspace() {
    if !root_or_skip("refuses_processes_outside_the_workspace") {
        return;
    }
    let a = Container::start();
    let b = Container::start();
    let ws = pidns::Container::open(a.init as i64).unwrap();
    for s in strategies() {
        // b's child, named by its host PID: exists, but not in a's namespace.
        let e =
            write_id_mapping(&ws, s, None, b.child as i64, IdKind::Uid, &ring_map(), &IdPolicy::default()).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::NotFound), "{s:?}: {e}");
        // The PID oracle: our own (host) PID certainly exists on the host,
        // i32::MAX - 7 exists nowhere. Neither is in the workspace, and the
        // answers must not tell them apart (same kind, reason and message
        // shape), or a workspace could probe the host's PIDs.
        let host = ws.resolve(std::process::id() as i64, s).unwrap_err();
        let none = ws.resolve(i32::MAX as i64 - 7, s).unwrap_err();
        for e in [&host, &none] {
            assert_eq!(e.kind(), ErrorKind::NotFound, "{s:?}: {e}");
            assert_eq!(e.reason(), Some(iws_core::Reason::NoSuchProcess), "{s:?}: {e}");
        }
        assert_eq!(
            host.message().replace(&std::process::id().to_string(), "N"),
            none.message().replace(&(i32::MAX - 7).to_string(), "N"),
        );
        assert!(ws.resolve(0, s).is_err());
    }
    assert!(b.uid_map(b.child, "uid_map").is_empty(), "nothing may be written to another container");
    assert!(a.uid_map(a.child, "uid_map").is_empty());
}

#[test]
fn refuses_to_register_a_host_process() {
    if !root_or_skip("refuses_to_register_a_host_process") {
        return;
    }
    let e = pidns::Container::open(std::process::id() as i64).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::FailedPrecondition, "{e}");
    let e = pidns::Container::open(i32::MAX as i64 - 3).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
}

#[test]
fn container_liveness_follows_its_init() {
    if !root_or_skip("container_liveness_follows_its_init") {
        return;
    }
    let c = Container::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    assert!(ws.is_alive());
    drop(c);
    let start = std::time::Instant::now();
    while ws.is_alive() && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!ws.is_alive());
}

#[test]
fn scan_picks_the_workspace_process_over_a_sibling_with_the_same_pid() {
    if !root_or_skip("scan_picks_the_workspace_process_over_a_sibling_with_the_same_pid") {
        return;
    }
    // The sibling starts first so /proc lists its zombie before our target.
    let z = ZombieContainer::start();
    let c = Container::start();
    assert_eq!(*common::nspid(z.zombie).last().unwrap(), 2);
    assert_eq!(c.child_in_ns, 2, "the target must share the zombie's in-container PID");
    assert!(z.zombie < c.child);
    let ws = pidns::Container::open(c.init as i64).unwrap();
    for s in strategies() {
        assert_eq!(ws.resolve(2, s).unwrap().host_pid(), c.child, "{s:?}");
    }
}

#[test]
fn the_watcher_reports_each_container_exit_once() {
    if !root_or_skip("the_watcher_reports_each_container_exit_once") {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let mut w = iws_core::watch::Watcher::start(move |token| tx.send(token).unwrap()).unwrap();
    let a = Container::start();
    let b = Container::start();
    let c = Container::start();
    let (wa, wb, wc) = (
        pidns::Container::open(a.init as i64).unwrap(),
        pidns::Container::open(b.init as i64).unwrap(),
        pidns::Container::open(c.init as i64).unwrap(),
    );
    w.watch(1, &wa).unwrap();
    w.watch(2, &wb).unwrap();
    w.watch(3, &wc).unwrap();
    w.unwatch(3);
    assert_eq!(w.len(), 2);
    let t0 = std::time::Instant::now();
    drop(b);
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(1)).unwrap(), 2);
    assert!(t0.elapsed() < std::time::Duration::from_secs(1));
    drop(c); // unwatched: no report
    drop(a);
    assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(1)).unwrap(), 1);
    assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err());
    assert!(w.is_empty());
    w.stop();
}

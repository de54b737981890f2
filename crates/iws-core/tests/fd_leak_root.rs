//! Root-only: no fd outlives an operation, on success or failure. Alone in
//! its own test binary so no other test opens fds concurrently.

mod common;

use common::{root_or_skip, Container};
use iws_core::idmap::IdMapping;
use iws_core::idmap::IdPolicy;
use iws_core::idmap_write::{write_id_mapping, IdKind};
use iws_core::pidns::{self, PidStrategy};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn operations_leave_no_fds_behind() {
    if !root_or_skip("operations_leave_no_fds_behind") {
        return;
    }
    let c = Container::start();
    let policy = IdPolicy::default();
    let ring = [
        IdMapping { container_id: 0, host_id: 33333, size: 1 },
        IdMapping { container_id: 1, host_id: 100000, size: 65534 },
    ];
    let bad = [IdMapping { container_id: 1, host_id: 5, size: 1 }];
    // Warm up lazily opened fds (none expected, but be fair to the runtime).
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let _ = ws.resolve(1, PidStrategy::Scan);
    let before = open_fds();
    for _ in 0..50 {
        for s in [PidStrategy::Ioctl, PidStrategy::Scan] {
            let _ = ws.resolve(1, s).unwrap();
            let _ = ws.resolve(2_000_000_000, s).unwrap_err();
            let _ = ws.resolve(std::process::id() as i64, s).unwrap_err();
            let _ = write_id_mapping(&ws, s, None, c.child_in_ns as i64, IdKind::Uid, &bad, &policy).unwrap_err();
            // succeeds once, then the kernel refuses: both paths exercised
            let _ = write_id_mapping(&ws, s, None, c.child_in_ns as i64, IdKind::Uid, &ring, &policy);
        }
        let extra = pidns::Container::open(c.init as i64).unwrap();
        drop(extra);
    }
    assert_eq!(open_fds(), before, "fds leaked by operations");
    drop(ws);
    assert_eq!(
        open_fds(),
        before - 3,
        "a container holds exactly three fds: its init's pidfd, /proc dir and PID namespace"
    );
}

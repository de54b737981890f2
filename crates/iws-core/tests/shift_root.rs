//! Root-only: ID-shifted marks of a container's root (idmapped and FUSE),
//! seen from the host and from a user namespace with the shift mapping.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{host_mountinfo, root_or_skip, RootfsContainer};
use iws_core::idmap::{IdMapping, IdPolicy};
use iws_core::idmap_write::{write_id_mapping, IdKind};
use iws_core::pidns::{self, PidStrategy};
use iws_core::shift::{self, FuseOptions, MethodChoice, ShiftMethod};
use iws_core::ErrorKind;

const MARK: &str = "/.workspace/mark";

/// The user-namespace cache and the FUSE registry are process-wide: these
/// tests assert on them, so they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn shift_map() -> Vec<IdMapping> {
    vec![
        IdMapping { container_id: 0, host_id: 33333, size: 1 },
        IdMapping { container_id: 1, host_id: 100000, size: 65534 },
    ]
}

fn fuse_opts(c: &RootfsContainer) -> FuseOptions {
    let d = c.rootfs.parent().unwrap().join("fuse");
    FuseOptions {
        binary: "/usr/bin/fuse-overlayfs".into(),
        upper: d.join("upper").display().to_string(),
        work: d.join("work").display().to_string(),
        staging: d.join("mnt").display().to_string(),
        upper_bytes: 64 << 20,
    }
}

/// PrepareForUserNS of [`MARK`] in `c` (ws) with the test's map, the
/// default id policy and the test's FUSE options.
fn prepare(ws: &pidns::Container, c: &RootfsContainer, method: MethodChoice) -> iws_core::Result<shift::Mark> {
    shift::prepare_mark(ws, MARK, &shift_map(), &IdPolicy::default(), method, &fuse_opts(c))
}

fn check_shifted_view(c: &RootfsContainer, method: ShiftMethod, fuse_pid: Option<i32>) {
    // From the host: on-disk uid 0 shows as 33333 through the mark.
    let through = std::fs::metadata(c.inside(&format!("{MARK}/bin/busybox"))).unwrap();
    assert_eq!(through.uid(), 33333, "{method:?}");
    assert_eq!(std::fs::metadata(c.rootfs.join("bin/busybox")).unwrap().uid(), 0);
    // From a user namespace with the shift mapping: uid 0, and a file it
    // creates through the mark is owned by uid 0 on disk.
    let (host, inside) = c.spawn_userns();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    for kind in [IdKind::Uid, IdKind::Gid] {
        write_id_mapping(&ws, PidStrategy::Ioctl, None, inside as i64, kind, &shift_map(), &IdPolicy::default())
            .unwrap();
    }
    let _ = host;
    assert_eq!(c.sh_as(host, &format!("stat -c %u {MARK}/bin/busybox")).unwrap().trim(), "0", "{method:?}");
    c.sh_as(host, &format!("echo hi > {MARK}/created")).unwrap();
    let on_disk = match method {
        // The upper dir is on the helper's private tmpfs: seen through its root.
        ShiftMethod::Fuse => {
            std::path::PathBuf::from(format!("/proc/{}/root{}/created", fuse_pid.unwrap(), fuse_opts(c).upper))
        }
        _ => c.rootfs.join("created"),
    };
    assert_eq!(std::fs::metadata(&on_disk).unwrap().uid(), 0, "{method:?}: {}", on_disk.display());
}

#[test]
fn idmapped_and_fuse_marks_shift_ownership_and_clean_up() {
    if !root_or_skip("idmapped_and_fuse_marks_shift_ownership_and_clean_up") {
        return;
    }
    let _serial = serial();
    for method in [ShiftMethod::Idmapped, ShiftMethod::Fuse] {
        let host_before = host_mountinfo();
        let c = RootfsContainer::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let mark = prepare(&ws, &c, MethodChoice::Only(method)).unwrap();
        assert_eq!(mark.method, method);
        assert_eq!(mark.fuse_pid.is_some(), method == ShiftMethod::Fuse);
        // The container's root is shared now; the mark is in its namespace only.
        let root = c.mounts().into_iter().find(|m| m.0 == "/").unwrap();
        let root_line = std::fs::read_to_string(format!("/proc/{}/mountinfo", c.init)).unwrap();
        assert!(
            root_line.lines().any(|l| l.split(' ').nth(4) == Some("/") && l.contains(" shared:")),
            "{root:?}\n{root_line}"
        );
        assert!(c.mounts().iter().any(|m| m.0 == MARK), "{:?}", c.mounts());
        // The namespace thread starts pinned to its caller's CPU; a helper it
        // starts must not inherit that pin, and the caller keeps its own.
        let allowed = |pid: &str| {
            let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            st.lines().find(|l| l.starts_with("Cpus_allowed_list:")).unwrap().to_string()
        };
        assert_eq!(allowed("thread-self"), allowed("self"), "the calling thread's affinity is restored");
        if let Some(pid) = mark.fuse_pid {
            assert_eq!(allowed(&pid.to_string()), allowed("self"), "the FUSE helper is not pinned to one CPU");
        }
        check_shifted_view(&c, method, mark.fuse_pid);
        if method == ShiftMethod::Idmapped {
            assert_eq!(shift::userns_cached(), 1);
        }
        let (ok, problems) = shift::remove_mark(&ws, PidStrategy::Ioctl, MARK, &mark, &shift_map(), &fuse_opts(&c));
        assert!(ok, "{problems:?}");
        assert!(!c.mounts().iter().any(|m| m.0 == MARK));
        assert_eq!(shift::userns_cached(), 0);
        if let Some(pid) = mark.fuse_pid {
            assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "fuse-overlayfs {pid} still runs");
            assert!(shift::fuse_pids().is_empty());
        }
        drop(c);
        assert_eq!(host_mountinfo(), host_before, "{method:?}: the host's mount table changed");
    }
}

#[test]
fn auto_picks_idmapped_here_and_shiftfs_is_a_precondition() {
    if !root_or_skip("auto_picks_idmapped_here_and_shiftfs_is_a_precondition") {
        return;
    }
    let _serial = serial();
    let c = RootfsContainer::start();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    if !shift::shiftfs_available() {
        let e = prepare(&ws, &c, MethodChoice::Only(ShiftMethod::Shiftfs)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::FailedPrecondition);
        assert!(e.message().contains("shiftfs is not available"), "{e}");
    }
    let mark = prepare(&ws, &c, MethodChoice::Auto).unwrap();
    assert_eq!(mark.method, ShiftMethod::Idmapped, "ext4 supports idmapped mounts");
    assert!(shift::remove_mark(&ws, PidStrategy::Ioctl, MARK, &mark, &shift_map(), &fuse_opts(&c)).0);
}

#[test]
fn a_symlinked_mark_path_is_refused() {
    if !root_or_skip("a_symlinked_mark_path_is_refused") {
        return;
    }
    let _serial = serial();
    let c = RootfsContainer::start();
    std::os::unix::fs::symlink(&c.outside, c.rootfs.join(".workspace")).unwrap();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let before = c.mounts();
    for method in [ShiftMethod::Idmapped, ShiftMethod::Fuse] {
        let e = prepare(&ws, &c, MethodChoice::Only(method)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{method:?}: {e}");
        assert!(e.message().contains("symlink"), "{e}");
    }
    assert_eq!(c.mounts(), before);
    assert_eq!(std::fs::read_dir(&c.outside).unwrap().count(), 0, "nothing created behind the symlink");
    assert!(shift::fuse_pids().is_empty(), "a failed FUSE mark leaves no helper");
    assert_eq!(shift::userns_cached(), 0);
}

/// Runs `argv` on the host with a deadline: a read through a FUSE mark that
/// hangs fails the test instead of hanging it. (A request already sent to a
/// stuck FUSE server cannot be killed, so the child is not waited for.)
fn bounded(secs: u64, argv: &[&str]) -> Result<String, String> {
    let mut child = std::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return if status.success() {
                Ok(String::from_utf8_lossy(&out.stdout).into_owned())
            } else {
                Err(format!("{argv:?} failed ({status}): {}", String::from_utf8_lossy(&out.stderr).trim()))
            };
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("{argv:?} hung (no answer within {secs} s)"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_fuse_marks_lower_layer_is_the_root_mount_alone_so_reads_never_recurse() {
    if !root_or_skip("a_fuse_marks_lower_layer_is_the_root_mount_alone_so_reads_never_recurse") {
        return;
    }
    let _serial = serial();
    let c = RootfsContainer::start();
    // The container has a submount (its tmpfs at /tmp, holding a file) over a
    // directory of its root mount that holds another file.
    c.sh("echo sub > /tmp/on-submount").unwrap();
    std::fs::write(c.rootfs.join("tmp/under-submount"), b"root").unwrap();
    // The mark's directory exists before the helper starts (as the runtime's
    // /.workspace bind holds it): a lower layer following the container's
    // mount tree would hold the mark itself.
    std::fs::create_dir_all(c.rootfs.join(MARK.trim_start_matches('/'))).unwrap();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let mark = prepare(&ws, &c, MethodChoice::Only(ShiftMethod::Fuse)).unwrap();
    let pid = mark.fuse_pid.unwrap();
    let m = |p: &str| c.inside(&format!("{MARK}{p}")).display().to_string();
    let results = [
        ("ls /tmp", bounded(20, &["ls", "-a", &m("/tmp")])),
        ("cat /tmp/under-submount", bounded(20, &["cat", &m("/tmp/under-submount")])),
        ("ls the mark's own path", bounded(20, &["ls", "-a", &m(MARK)])),
        ("stat the mark's own path", bounded(20, &["stat", "-c", "%u %F", &m(MARK)])),
        ("ls /", bounded(20, &["ls", "-a", &m("/")])),
    ];
    let failed: Vec<String> =
        results.iter().filter_map(|(what, r)| r.as_ref().err().map(|e| format!("{what}: {e}"))).collect();
    if !failed.is_empty() {
        // Unblock (and end) a hung helper before failing, so nothing stays stuck.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        let _ = shift::remove_mark(&ws, PidStrategy::Ioctl, MARK, &mark, &shift_map(), &fuse_opts(&c));
    }
    assert!(failed.is_empty(), "reads through the FUSE mark: {failed:?}");
    let listed = |i: usize| results[i].1.as_ref().unwrap().lines().map(str::to_string).collect::<Vec<_>>();
    // The root mount's files, not the submount's.
    assert!(listed(0).contains(&"under-submount".to_string()), "{:?}", listed(0));
    assert!(!listed(0).contains(&"on-submount".to_string()), "the submount is not in the lower layer: {:?}", listed(0));
    assert_eq!(results[1].1.as_ref().unwrap(), "root");
    // The mark's own path inside the mark is the root mount's (empty) directory.
    assert_eq!(listed(2).iter().filter(|n| *n != "." && *n != "..").count(), 0, "{:?}", listed(2));
    assert!(listed(4).contains(&"bin".to_string()), "{:?}", listed(4));
    // The helper's lower layer is mounted in its private namespace only.
    assert!(!c.mounts().iter().any(|m| m.0.ends_with("/lower")), "{:?}", c.mounts());
    assert!(!host_mountinfo().contains("/lower "), "the lower layer is not in the host's mount table");
    let (ok, problems) = shift::remove_mark(&ws, PidStrategy::Ioctl, MARK, &mark, &shift_map(), &fuse_opts(&c));
    assert!(ok, "{problems:?}");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "fuse-overlayfs {pid} still runs");
    // Nothing of this test's (rootfs, FUSE store, lower layer) is in the
    // host's mount table (other programs on a busy node change the rest).
    let base = c.rootfs.parent().unwrap().display().to_string();
    let ours: Vec<String> = host_mountinfo()
        .lines()
        .filter(|l| l.contains(&base) || l.contains("iwsd-fuse-store") || l.contains("fuse-overlayfs"))
        .map(str::to_string)
        .collect();
    assert!(ours.is_empty(), "left in the host's mount table: {ours:?}");
}

#[test]
fn teardown_of_a_fuse_mark_whose_helper_is_stopped_or_killed_returns_and_leaves_nothing() {
    if !root_or_skip("teardown_of_a_fuse_mark_whose_helper_is_stopped_or_killed_returns_and_leaves_nothing") {
        return;
    }
    let _serial = serial();
    use nix::sys::signal::{kill, Signal};
    for signal in [Signal::SIGSTOP, Signal::SIGKILL] {
        let c = RootfsContainer::start();
        let ws = pidns::Container::open(c.init as i64).unwrap();
        let opts = fuse_opts(&c);
        let mark = shift::prepare_mark(
            &ws,
            MARK,
            &shift_map(),
            &IdPolicy::default(),
            MethodChoice::Only(ShiftMethod::Fuse),
            &opts,
        )
        .unwrap();
        let pid = mark.fuse_pid.unwrap();
        let m = |p: &str| c.inside(&format!("{MARK}{p}")).display().to_string();
        bounded(20, &["ls", &m("/bin")]).expect("the mark works before the helper is stopped");
        kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
        // Mid-use: a reader in the workspace is blocked on the stopped server
        // (SIGSTOP) or fails (SIGKILL: the kernel aborts the connection).
        let reader = std::process::Command::new("stat")
            .arg(m("/file"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if signal == Signal::SIGSTOP {
            assert!(bounded(2, &["cat", &m("/file")]).unwrap_err().contains("hung"), "the stopped server answers");
        }
        // Teardown's kernel work, on a thread the test does not wait for
        // past a deadline (a regression fails instead of hanging).
        let (tx, rx) = std::sync::mpsc::channel();
        let (ws2, opts2, mark2) = (pidns::Container::open(c.init as i64).unwrap(), opts.clone(), mark.clone());
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let r = shift::remove_mark(&ws2, PidStrategy::Ioctl, MARK, &mark2, &shift_map(), &opts2);
            let _ = tx.send((r, started.elapsed()));
        });
        let ((ok, problems), took) = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{signal:?}: remove_mark did not return within 60 s"));
        eprintln!("{signal:?}: remove_mark took {took:?}: ok={ok} {problems:?}");
        // Everything could be cleaned: the connection is aborted (SIGSTOP) or
        // was by the kernel (SIGKILL), so nothing blocks the unmount.
        assert!(ok, "{signal:?}: {problems:?}");
        assert!(!c.mounts().iter().any(|m| m.0 == MARK), "{signal:?}: the mark is still mounted: {:?}", c.mounts());
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{signal:?}: fuse-overlayfs {pid} still runs");
        assert!(shift::fuse_pids().is_empty(), "{signal:?}");
        // The blocked reader was released (with an error) by the abort.
        let mut reader = reader;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while reader.try_wait().unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "{signal:?}: the reader stays blocked");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let base = c.rootfs.parent().unwrap().display().to_string();
        drop(c);
        assert!(!host_mountinfo().contains(&base), "{signal:?}: left in the host's mount table");
    }
}

/// The caller `host_pid` as a connection would have identified it.
fn caller(host_pid: i32, uid: u32) -> iws_core::authz::Caller {
    let start = pidns::PinnedProcess::pin(host_pid).unwrap().start_time().unwrap();
    iws_core::authz::Caller { host_pid, start_time: Some(start), uid }
}

/// Attack (ring root): PrepareForUserNS and Teardown as one core call each
/// authorize before any work: a caller the rule refuses gets `Refused` (the
/// daemon then gives the one shot back) and nothing was mounted or removed;
/// the rightful caller's calls then make and remove the mark.
#[test]
fn lifecycle_calls_refuse_before_any_work_and_work_for_the_rightful_caller() {
    use iws_core::authz::LifecycleRule;
    use iws_core::lifecycle::{prepare_for_user_ns, teardown, LifecycleError, PrepareRequest, TeardownRequest};
    if !root_or_skip("lifecycle_calls_refuse_before_any_work_and_work_for_the_rightful_caller") {
        return;
    }
    let _serial = serial();
    let c = RootfsContainer::start();
    std::fs::create_dir_all(c.rootfs.join("dev")).unwrap();
    let ws = pidns::Container::open(c.init as i64).unwrap();
    let (ring_root, _) = c.spawn_userns();
    let (map, policy, fuse) = (shift_map(), IdPolicy::default(), fuse_opts(&c));
    let prep = PrepareRequest {
        rule: LifecycleRule::RootOrInitUid,
        mark_path: MARK,
        shift: &map,
        policy: &policy,
        choice: MethodChoice::Only(ShiftMethod::Idmapped),
        fuse: &fuse,
        devices: true,
    };
    let before = c.mounts();
    match prepare_for_user_ns(&ws, &caller(ring_root, 0), &prep) {
        Err(LifecycleError::Refused(e)) => assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}"),
        other => panic!("ring root's PrepareForUserNS was not refused before any work: {other:?}"),
    }
    assert_eq!(c.mounts(), before, "a refused PrepareForUserNS mounted nothing");
    assert!(!c.rootfs.join("dev/fuse").exists(), "nor made a device node");
    assert_eq!(shift::userns_cached(), 0);

    let root = caller(c.init, 0);
    let done = prepare_for_user_ns(&ws, &root, &prep).unwrap();
    assert_eq!(done.mark.method, ShiftMethod::Idmapped);
    assert!(c.mounts().iter().any(|m| m.0 == MARK), "{:?}", c.mounts());
    let devices = done.devices.expect("devices were asked for").unwrap();
    assert!(devices.devices.iter().all(|d| d.state == "created"), "{devices:?}");

    let td = TeardownRequest {
        rule: LifecycleRule::RootOrInitUid,
        strategy: PidStrategy::Ioctl,
        mark_path: MARK,
        mark: Some(&done.mark),
        shift: &map,
        fuse: &fuse,
    };
    match teardown(&ws, &caller(ring_root, 0), &td) {
        Err(LifecycleError::Refused(e)) => assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}"),
        other => panic!("ring root's Teardown was not refused before any work: {other:?}"),
    }
    assert!(c.mounts().iter().any(|m| m.0 == MARK), "a refused Teardown left the mark");
    assert_eq!(shift::userns_cached(), 1, "and its user namespace");
    let (ok, problems) = teardown(&ws, &root, &td).unwrap();
    assert!(ok, "{problems:?}");
    assert!(!c.mounts().iter().any(|m| m.0 == MARK));
    assert_eq!(shift::userns_cached(), 0);
}

//! Root-only: connections are attributed to the connecting process through
//! SO_PEERPIDFD/SO_PEERCRED and accepted only from inside the workspace.

mod common;

use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};

use common::{root_or_skip, Container};
use iws_core::pidns;
use iws_core::ErrorKind;

#[test]
fn only_processes_inside_the_workspace_pass_the_peer_check() {
    if !root_or_skip("only_processes_inside_the_workspace_pass_the_peer_check") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("iwsd-peer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let a = Container::start();
    let b = Container::start();
    let ws = pidns::Container::open(a.init as i64).unwrap();

    // From inside container a (its PID namespace): accepted, attributed.
    let connect = |target: i32| {
        Command::new("nsenter")
            .args(["--target", &target.to_string(), "--pid", "--", "python3", "-c"])
            .arg(format!(
                "import socket,time; s=socket.socket(socket.AF_UNIX); s.connect({:?}); time.sleep(5)",
                path.display().to_string()
            ))
            .stdin(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut inside = connect(a.init);
    let (conn, _) = listener.accept().unwrap();
    let peer = ws.check_peer(conn.as_fd()).unwrap();
    assert_eq!(peer.uid, 0);
    assert_ne!(peer.pid, inside.id() as i32, "the peer is nsenter's child in the namespace, not nsenter");
    assert!(common::nspid(peer.pid).len() >= 2, "the peer sits in a nested PID namespace");

    // From another container: refused.
    let mut other = connect(b.init);
    let (conn_b, _) = listener.accept().unwrap();
    let e = ws.check_peer(conn_b.as_fd()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    // From the host (this process): refused.
    let _client = UnixStream::connect(&path).unwrap();
    let (conn_h, _) = listener.accept().unwrap();
    let e = ws.check_peer(conn_h.as_fd()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");

    for c in [&mut inside, &mut other] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

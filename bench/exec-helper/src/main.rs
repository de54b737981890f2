//! The baseline iwsd is measured against: the design it replaces ran one
//! helper process per step, with a staging directory in the daemon's own mount
//! namespace. Each subcommand is one such step; the benchmark execs it once per
//! step, exactly as that design did. Not part of iwsd.
//!
//!   mount-proc <target-host-pid> <staging>   enter the target's PID and net namespaces, mount proc at <staging>
//!   mask <staging> <masked,...> <readonly,...>  bind /dev/null / empty tmpfs over masked entries, remount read-only ones
//!   move <staging> <target-host-pid> <path>  clone the staged tree, enter the target's mount namespace, move it to <path>
//!   umount <path>                            detach the mount at <path> (staging cleanup)
//!   umount-in <target-host-pid> <path>       enter the target's mount namespace and detach <path>

use std::fs::File;
use std::os::fd::AsFd;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, ForkResult};
use rustix::mount::{move_mount, open_tree, MoveMountFlags, OpenTreeFlags};

fn die(msg: String) -> ! {
    eprintln!("iwsd-exec-helper: {msg}");
    std::process::exit(1)
}

fn ns(pid: &str, kind: &str) -> File {
    File::open(format!("/proc/{pid}/ns/{kind}")).unwrap_or_else(|e| die(format!("open ns/{kind} of {pid}: {e}")))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let a = |i: usize| args.get(i).cloned().unwrap_or_else(|| die(format!("missing argument {i}")));
    let nosuid = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    match a(0).as_str() {
        "mount-proc" => {
            let (pid, staging) = (a(1), a(2));
            setns(ns(&pid, "pid").as_fd(), CloneFlags::CLONE_NEWPID).unwrap_or_else(|e| die(format!("setns pid: {e}")));
            setns(ns(&pid, "net").as_fd(), CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| die(format!("setns net: {e}")));
            // A PID namespace applies to children: fork one to mount proc.
            // SAFETY: single-threaded process; the child only mounts and exits.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    let r = mount(Some("proc"), staging.as_str(), Some("proc"), nosuid, None::<&str>);
                    std::process::exit(if r.is_ok() { 0 } else { 1 });
                }
                Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
                    Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {}
                    other => die(format!("mount proc failed: {other:?}")),
                },
                Err(e) => die(format!("fork: {e}")),
            }
        }
        "mask" => {
            let staging = a(1);
            for name in a(2).split(',').filter(|s| !s.is_empty()) {
                let p = format!("{staging}/{name}");
                let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
                let r = if meta.is_dir() {
                    mount(Some("tmpfs"), p.as_str(), Some("tmpfs"), nosuid | MsFlags::MS_RDONLY, Some("size=4k"))
                } else {
                    mount(Some("/dev/null"), p.as_str(), None::<&str>, MsFlags::MS_BIND, None::<&str>)
                };
                r.unwrap_or_else(|e| die(format!("mask {name}: {e}")));
            }
            for name in a(3).split(',').filter(|s| !s.is_empty()) {
                let p = format!("{staging}/{name}");
                if std::fs::symlink_metadata(&p).is_err() {
                    continue;
                }
                mount(Some(p.as_str()), p.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                    .and_then(|_| {
                        mount(
                            None::<&str>,
                            p.as_str(),
                            None::<&str>,
                            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
                            None::<&str>,
                        )
                    })
                    .unwrap_or_else(|e| die(format!("read-only {name}: {e}")));
            }
        }
        "move" => {
            let (staging, pid, path) = (a(1), a(2), a(3));
            let tree = open_tree(
                rustix::fs::CWD,
                staging.as_str(),
                OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::AT_RECURSIVE | OpenTreeFlags::OPEN_TREE_CLOEXEC,
            )
            .unwrap_or_else(|e| die(format!("open_tree: {e}")));
            setns(ns(&pid, "mnt").as_fd(), CloneFlags::CLONE_NEWNS).unwrap_or_else(|e| die(format!("setns mnt: {e}")));
            move_mount(&tree, "", rustix::fs::CWD, path.as_str(), MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
                .unwrap_or_else(|e| die(format!("move_mount: {e}")));
        }
        "umount" => umount2(a(1).as_str(), MntFlags::MNT_DETACH).unwrap_or_else(|e| die(format!("umount: {e}"))),
        "umount-in" => {
            let (pid, path) = (a(1), a(2));
            setns(ns(&pid, "mnt").as_fd(), CloneFlags::CLONE_NEWNS).unwrap_or_else(|e| die(format!("setns mnt: {e}")));
            umount2(path.as_str(), MntFlags::MNT_DETACH).unwrap_or_else(|e| die(format!("umount: {e}")));
        }
        other => die(format!("unknown step {other}")),
    }
}

//! Who calls: the peer of a connection, who a mount was made for, and the
//! lifecycle rule (PrepareForUserNS, Teardown, EvacuateCGroup).

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::container::{handle, Container};
use crate::mirror::mirror;
use crate::task::{job, same, Job};

/// A connection's peer, as the core verified it.
#[napi(object, js_name = "Peer")]
pub struct JsPeer {
    /// Host PID of the connecting process.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// Its start time (clock ticks after boot): with `pid`, the caller of
    /// every call on the connection. A caller without it is refused.
    pub start_time: Option<i64>,
}

impl From<&JsPeer> for core::authz::Caller {
    fn from(p: &JsPeer) -> Self {
        // A negative start time is none: the core refuses such a caller.
        core::authz::Caller {
            host_pid: p.pid,
            start_time: p.start_time.and_then(|t| u64::try_from(t).ok()),
            uid: p.uid,
        }
    }
}

impl From<core::pidns::Peer> for JsPeer {
    fn from(p: core::pidns::Peer) -> Self {
        JsPeer { pid: p.pid, uid: p.uid, gid: p.gid, start_time: Some(p.start_time as i64) }
    }
}

/// The caller of an operation: the peer, or none (the embedding program's
/// own authority, for `iwsd/native`).
pub fn caller(p: Option<JsPeer>) -> Option<core::authz::Caller> {
    p.as_ref().map(core::authz::Caller::from)
}

/// Who a mount was made for: the caller's kernel euid and user namespace.
#[napi(object, js_name = "MountOwner")]
pub struct JsMountOwner {
    pub euid: u32,
    /// "DEV:INO" of its user namespace.
    pub userns: String,
}

impl From<core::authz::CallerId> for JsMountOwner {
    fn from(id: core::authz::CallerId) -> Self {
        JsMountOwner { euid: id.euid, userns: id.userns_string() }
    }
}

impl TryFrom<&JsMountOwner> for core::authz::CallerId {
    type Error = core::Error;

    fn try_from(o: &JsMountOwner) -> core::Result<Self> {
        Ok(core::authz::CallerId { euid: o.euid, userns: core::authz::CallerId::parse_userns(&o.userns)? })
    }
}

/// Who may call PrepareForUserNS and Teardown (config `authz.lifecycle`).
#[napi(string_enum, js_name = "LifecycleRule")]
#[derive(Clone, Copy)]
pub enum JsLifecycleRule {
    /// Container root, or the uid the container's init runs as.
    #[napi(value = "root-or-init-uid")]
    RootOrInitUid,
    /// Container root only.
    #[napi(value = "root")]
    Root,
}

mirror!(JsLifecycleRule => core::authz::LifecycleRule { RootOrInitUid, Root });

/// Checks that the process connected on unix socket `fd` is inside the
/// container (PERMISSION_DENIED otherwise). The fd is duplicated right away,
/// so the check owns its own reference while it runs.
#[napi(ts_return_type = "Promise<Peer>")]
pub fn check_peer(container: &Container, fd: i32) -> Result<AsyncTask<Job<core::pidns::Peer, JsPeer>>> {
    let c = handle(container)?;
    let sock = core::pidns::dup_socket(fd);
    Ok(job(
        move || {
            use std::os::fd::AsFd;
            c.check_peer(sock?.as_fd())
        },
        JsPeer::from,
    ))
}

/// Whether `caller` may call PrepareForUserNS or Teardown under `rule`;
/// rejects PERMISSION_DENIED otherwise. Side-effect free: call it before the
/// one-shot is used.
#[napi(ts_return_type = "Promise<void>")]
pub fn authorize_lifecycle(
    container: &Container,
    caller: JsPeer,
    rule: JsLifecycleRule,
) -> Result<AsyncTask<Job<(), ()>>> {
    let c = handle(container)?;
    let who = core::authz::Caller::from(&caller);
    Ok(job(move || core::authz::authorize_lifecycle_call(&c, &who, rule.into()), same))
}

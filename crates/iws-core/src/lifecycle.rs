//! PrepareForUserNS and Teardown as one operation each: the caller pinned
//! and authorized, then the work, in one call of the core.
//!
//! The daemon runs each as a single pool task, so a call holds its slot of
//! the long lane for its own work only: split into separate calls (authorize,
//! mark, devices), every step went back to the daemon's JS thread in between
//! and waited there behind every other workspace's answers, which in a start
//! storm made the long lane, not the kernel, the bottleneck.
//!
//! A one-shot RPC uses its shot before any work (a failed call still uses
//! it), and an unauthorized caller must not use it up for the workspace:
//! the daemon takes the shot before this call and gives it back when the call
//! was [`LifecycleError::Refused`], which it is exactly when nothing was done.

use crate::authz::{authorize_lifecycle_call, Caller, LifecycleRule};
use crate::devices::{make_devices, DevicesOutcome};
use crate::error::{Error, Result};
use crate::idmap::{IdMapping, IdPolicy};
use crate::pidns::{Container, PidStrategy};
use crate::shift::{prepare_mark, remove_mark, FuseOptions, Mark, MethodChoice};

/// Why a lifecycle call did not succeed.
#[derive(Debug)]
pub enum LifecycleError {
    /// Refused before anything was done (the caller is not allowed, has
    /// exited, or could not be identified): the one shot may be given back.
    Refused(Error),
    /// The caller was authorized and the work failed (whatever it did is
    /// undone where the work says so; the shot stays used).
    Failed(Error),
}

impl LifecycleError {
    pub fn error(&self) -> &Error {
        match self {
            LifecycleError::Refused(e) | LifecycleError::Failed(e) => e,
        }
    }
}

/// What PrepareForUserNS does.
pub struct PrepareRequest<'a> {
    /// Who may call it (config `authz.lifecycle`).
    pub rule: LifecycleRule,
    pub mark_path: &'a str,
    pub shift: &'a [IdMapping],
    pub policy: &'a IdPolicy,
    pub choice: MethodChoice,
    pub fuse: &'a FuseOptions,
    /// Make `/dev/fuse` and `/dev/net/tun` too (config `devices.create`).
    pub devices: bool,
}

/// What PrepareForUserNS did.
#[derive(Debug)]
pub struct Prepared {
    pub mark: Mark,
    /// The device nodes' outcome when asked for; an error here (the
    /// container could not be looked at) does not fail the call, as Gitpod's
    /// clients check for the devices themselves.
    pub devices: Option<Result<DevicesOutcome>>,
}

/// PrepareForUserNS for `caller`: authorized by `req.rule`, then the mark
/// (see [`prepare_mark`]) and, when asked, the device nodes (see
/// [`make_devices`]), the two side by side on threads of their own: they
/// touch different things (a mount namespace; `/dev` and the devices
/// cgroup) and neither waits for the other. The devices are made also when
/// the mark fails: the caller was allowed both.
pub fn prepare_for_user_ns(
    container: &Container,
    caller: &Caller,
    req: &PrepareRequest<'_>,
) -> std::result::Result<Prepared, LifecycleError> {
    authorize_lifecycle_call(container, caller, req.rule).map_err(LifecycleError::Refused)?;
    let (mark, devices) = std::thread::scope(|s| {
        let devices = req.devices.then(|| {
            std::thread::Builder::new().name("iws-devices".into()).spawn_scoped(s, || make_devices(container))
        });
        let mark = prepare_mark(container, req.mark_path, req.shift, req.policy, req.choice, req.fuse);
        let devices = devices.map(|spawned| match spawned {
            Ok(h) => h.join().unwrap_or_else(|_| Err(Error::internal("device nodes", "the thread panicked"))),
            // No thread to be had: make them here, after the mark.
            Err(_) => make_devices(container),
        });
        (mark, devices)
    });
    Ok(Prepared { mark: mark.map_err(LifecycleError::Failed)?, devices })
}

/// What Teardown removes: the mark PrepareForUserNS recorded, if any.
pub struct TeardownRequest<'a> {
    pub rule: LifecycleRule,
    pub strategy: PidStrategy,
    pub mark_path: &'a str,
    /// `None`: there is no mark (never prepared, or already removed): only
    /// the caller is checked.
    pub mark: Option<&'a Mark>,
    pub shift: &'a [IdMapping],
    pub fuse: &'a FuseOptions,
}

/// Teardown for `caller`: authorized by `req.rule`, then the mark removed
/// (see [`remove_mark`]): whether everything was cleaned, and what was not.
pub fn teardown(
    container: &Container,
    caller: &Caller,
    req: &TeardownRequest<'_>,
) -> std::result::Result<(bool, Vec<String>), LifecycleError> {
    authorize_lifecycle_call(container, caller, req.rule).map_err(LifecycleError::Refused)?;
    Ok(match req.mark {
        Some(mark) => remove_mark(container, req.strategy, req.mark_path, mark, req.shift, req.fuse),
        None => (true, vec![]),
    })
}

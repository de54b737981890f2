//! Supervision: the state-dir lock, sd_notify, RLIMIT_NOFILE.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// An exclusive lock on `<state>/iwsd.lock`, or the PID of whoever holds it.
#[napi]
pub struct StateLock {
    inner: Option<core::supervise::StateLock>,
    holder: Option<u32>,
}

#[napi]
impl StateLock {
    /// Tries to take the lock without waiting; see `locked` and `holderPid`.
    #[napi(factory)]
    pub fn acquire(path: String) -> Result<Self> {
        match core::supervise::StateLock::acquire(std::path::Path::new(&path)) {
            Ok(core::supervise::Acquire::Locked(l)) => Ok(StateLock { inner: Some(l), holder: None }),
            Ok(core::supervise::Acquire::Held { pid }) => Ok(StateLock { inner: None, holder: pid }),
            Err(e) => Err(Error::new(Status::GenericFailure, format!("cannot lock {path}: {e}"))),
        }
    }

    /// Whether this process now holds the lock.
    #[napi(getter)]
    pub fn locked(&self) -> bool {
        self.inner.is_some()
    }

    /// When not locked: the PID the holder wrote into the lock file, if any.
    #[napi(getter)]
    pub fn holder_pid(&self) -> Option<u32> {
        self.holder
    }

    /// Releases the lock. Idempotent.
    #[napi]
    pub fn release(&mut self) {
        self.inner.take();
    }
}

/// Sends one sd_notify datagram (e.g. "READY=1") to `socket` ($NOTIFY_SOCKET).
#[napi]
pub fn sd_notify(socket: String, state: String) -> Result<()> {
    core::supervise::sd_notify(&socket, &state)
        .map_err(|e| Error::new(Status::GenericFailure, format!("sd_notify to {socket}: {e}")))
}

/// `RLIMIT_NOFILE` after [`raise_nofile_limit`].
#[napi(object)]
pub struct NofileLimit {
    /// The soft limit before the call.
    pub before: f64,
    pub soft: f64,
    pub hard: f64,
}

/// Raises the daemon's soft RLIMIT_NOFILE to its hard limit (never lowers it).
#[napi]
pub fn raise_nofile_limit() -> Result<NofileLimit> {
    let l = core::supervise::raise_nofile_limit()
        .map_err(|e| Error::new(Status::GenericFailure, format!("RLIMIT_NOFILE: {e}")))?;
    // u64::MAX (RLIM_INFINITY) is not exact as f64, and need not be.
    Ok(NofileLimit { before: l.before as f64, soft: l.soft as f64, hard: l.hard as f64 })
}

//! The container handle (its init pinned by a pidfd, its PID namespace held
//! open) and the exit watcher.

use std::sync::{Arc, Mutex};

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::{js_error, settle};
use crate::task::{job, Job};

/// A registered container: its init pinned by a pidfd and its PID namespace
/// held open. Release the fds with `close()`; further operations then fail.
///
/// Every method takes `&self` (the handle sits behind a mutex): napi-rs keeps
/// a shared borrow of the object for as long as an async task that got it
/// is pending, so a `&mut self` close() while, say, a MountProc runs failed
/// with a borrow error. A task in flight holds its own `Arc`: close() lets it
/// finish, and the fds are released when the last user is done.
#[napi]
pub struct Container {
    inner: Mutex<Option<Arc<core::pidns::Container>>>,
}

impl Container {
    fn get(&self) -> Option<Arc<core::pidns::Container>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl From<core::pidns::Container> for Container {
    fn from(c: core::pidns::Container) -> Self {
        Container { inner: Mutex::new(Some(Arc::new(c))) }
    }
}

/// The core container behind a handle, for a task to hold; fails once the
/// handle is closed.
pub fn handle(c: &Container) -> Result<Arc<core::pidns::Container>> {
    c.get().ok_or_else(|| Error::new(Status::InvalidArg, "container handle is closed"))
}

#[napi]
impl Container {
    /// Host PID of the container's init. Null after close().
    #[napi(getter)]
    pub fn host_pid(&self) -> Option<i32> {
        self.get().map(|c| c.host_pid())
    }

    /// The init's start time in clock ticks after boot: with `hostPid`, the
    /// container's identity across daemon restarts. Throws when the handle
    /// is closed or the start time cannot be read (the init exited: NOT_FOUND).
    #[napi(getter)]
    pub fn start_time(&self, env: Env) -> Result<i64> {
        let c = self.get().ok_or_else(|| {
            Error::new(
                Status::InvalidArg,
                "container handle is closed; open the container again to read its start time",
            )
        })?;
        settle(&env, c.start_time(), |t| t as i64)
    }

    /// Whether the container's init still runs (false after close()).
    #[napi]
    pub fn is_alive(&self) -> bool {
        self.get().is_some_and(|c| c.is_alive())
    }

    /// Releases the pidfd and namespace fd. Idempotent.
    #[napi]
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// Opens the container whose init has host PID `hostPid`.
#[napi(ts_return_type = "Promise<Container>")]
pub fn open_container(host_pid: i64) -> AsyncTask<Job<core::pidns::Container, Container>> {
    job(move || core::pidns::Container::open(host_pid), Container::from)
}

type ExitCallback = napi::threadsafe_function::ThreadsafeFunction<u32, Unknown<'static>, u32, Status, false, true>;

/// One native thread watching every registered container's init (pidfds in
/// one epoll set); calls `onExit(token)` on the JS thread once per exit.
#[napi]
pub struct ExitWatcher {
    inner: Option<core::watch::Watcher>,
}

#[napi]
impl ExitWatcher {
    #[napi(constructor, ts_args_type = "onExit: (token: number) => void")]
    pub fn new(on_exit: ExitCallback) -> Result<Self> {
        let w = core::watch::Watcher::start(move |token| {
            on_exit.call(token as u32, napi::threadsafe_function::ThreadsafeFunctionCallMode::NonBlocking);
        });
        match w {
            Ok(w) => Ok(ExitWatcher { inner: Some(w) }),
            Err(e) => Err(Error::new(Status::GenericFailure, e.to_string())),
        }
    }

    /// Reports `token` when the container's init exits.
    #[napi]
    pub fn watch(&self, env: Env, container: &Container, token: u32) -> Result<()> {
        let c = handle(container)?;
        let w = self.inner.as_ref().ok_or_else(|| Error::new(Status::InvalidArg, "watcher is closed"))?;
        w.watch(token as u64, &c).map_err(|e| js_error(&env, &e))
    }

    #[napi]
    pub fn unwatch(&self, token: u32) {
        if let Some(w) = &self.inner {
            w.unwatch(token as u64);
        }
    }

    /// Stops the watcher thread. Idempotent.
    #[napi]
    pub fn close(&mut self) {
        if let Some(mut w) = self.inner.take() {
            w.stop();
        }
    }
}

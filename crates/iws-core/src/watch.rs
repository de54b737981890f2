//! One native thread that watches the pidfds of every registered container
//! and reports each exit once, so the daemon can tear the workspace down
//! without parking a pool thread per workspace.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustix::event::{epoll, eventfd, EventfdFlags};

use crate::error::{Error, Result};
use crate::pidns::Container;

const WAKE: u64 = u64::MAX;

struct Shared {
    epoll: OwnedFd,
    wake: OwnedFd,
    stop: AtomicBool,
    watched: Mutex<HashMap<u64, OwnedFd>>,
}

/// Watches containers' init processes; `on_exit(token)` runs on the watcher
/// thread once per exited container.
pub struct Watcher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    pub fn start(on_exit: impl Fn(u64) + Send + 'static) -> Result<Watcher> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| Error::internal("epoll_create", e))?;
        let wake =
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(|e| Error::internal("eventfd", e))?;
        epoll::add(&epoll, &wake, epoll::EventData::new_u64(WAKE), epoll::EventFlags::IN)
            .map_err(|e| Error::internal("epoll_ctl(eventfd)", e))?;
        let shared =
            Arc::new(Shared { epoll, wake, stop: AtomicBool::new(false), watched: Mutex::new(HashMap::new()) });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("iws-watch".into())
            .spawn(move || {
                let mut events = Vec::with_capacity(64);
                while !s.stop.load(Ordering::Acquire) {
                    events.clear();
                    if epoll::wait(&s.epoll, spare(&mut events), None).is_err() {
                        continue; // EINTR
                    }
                    for ev in events.iter() {
                        let token = ev.data.u64();
                        if token == WAKE {
                            continue;
                        }
                        let fd = s.watched.lock().unwrap_or_else(|e| e.into_inner()).remove(&token);
                        if let Some(fd) = fd {
                            let _ = epoll::delete(&s.epoll, &fd);
                            on_exit(token);
                        }
                    }
                }
            })
            .map_err(|e| Error::internal("spawn watcher thread", e))?;
        Ok(Watcher { shared, thread: Some(thread) })
    }

    /// Reports `token` when `container`'s init exits (at once if it already has).
    pub fn watch(&self, token: u64, container: &Container) -> Result<()> {
        let pidfd = rustix::io::fcntl_dupfd_cloexec(container.init().pidfd(), 0)
            .map_err(|e| Error::internal("dup(pidfd)", e))?;
        let mut watched = self.shared.watched.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = watched.remove(&token) {
            let _ = epoll::delete(&self.shared.epoll, &old);
        }
        epoll::add(&self.shared.epoll, &pidfd, epoll::EventData::new_u64(token), epoll::EventFlags::IN)
            .map_err(|e| Error::internal("epoll_ctl(pidfd)", e))?;
        watched.insert(token, pidfd);
        Ok(())
    }

    /// Stops watching `token` (no report follows).
    pub fn unwatch(&self, token: u64) {
        if let Some(fd) = self.shared.watched.lock().unwrap_or_else(|e| e.into_inner()).remove(&token) {
            let _ = epoll::delete(&self.shared.epoll, &fd);
        }
    }

    /// How many containers are watched.
    pub fn len(&self) -> usize {
        self.shared.watched.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the thread and releases every fd. Idempotent.
    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        let _ = rustix::io::write(&self.shared.wake, &1u64.to_ne_bytes());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.watched.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spare(v: &mut Vec<epoll::Event>) -> rustix::buffer::SpareCapacity<'_, epoll::Event> {
    rustix::buffer::spare_capacity(v)
}

//! The one way to change namespaces: a thread made for it.
//!
//! Node is multi-threaded and the daemon's work runs on libuv's pool, so a
//! `setns` or `unshare` on whatever thread a function happens to run on
//! would move a pool thread (and everything it later does) into a workspace's
//! namespace. Here a namespace change needs an [`NsThread`], and only
//! [`on_fresh_thread`] hands one out: to a closure running on a thread that
//! was created for it, has done `unshare(CLONE_FS)` (so root, cwd and mount
//! namespace are its own) and exits when the closure returns. `NsThread` is
//! neither `Send` nor `Sync` and cannot be constructed elsewhere, so it cannot
//! leave that thread.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use nix::sched::CloneFlags;

use crate::error::{Error, Result};

/// Proof that the current thread was made by [`on_fresh_thread`] and dies
/// after its closure: the only holder of `setns`/`unshare`.
///
/// It cannot be made anywhere else:
///
/// ```compile_fail
/// let t = iws_core::nsthread::NsThread { _here: std::marker::PhantomData };
/// ```
///
/// nor sent to another thread:
///
/// ```compile_fail
/// fn send<T: Send>(_: T) {}
/// let _ = iws_core::nsthread::on_fresh_thread(|t| {
///     send(t);
///     Ok(())
/// });
/// ```
pub struct NsThread {
    /// Not Send, not Sync: the token stays on its thread.
    _here: PhantomData<*const ()>,
}

impl NsThread {
    /// `setns(fd, flag)` on this thread; `what` names the namespace in errors.
    pub fn setns(&self, fd: BorrowedFd<'_>, flag: CloneFlags, what: &str) -> Result<()> {
        nix::sched::setns(fd, flag).map_err(|e| Error::internal(&format!("setns({what})"), e))
    }

    /// `unshare(flags)` on this thread.
    pub fn unshare(&self, flags: CloneFlags) -> Result<()> {
        nix::sched::unshare(flags).map_err(|e| Error::internal(&format!("unshare({flags:?})"), e))
    }
}

/// Runs `f` on a thread created for it, after `unshare(CLONE_FS)` so that
/// namespace changes stay private to that thread; the thread exits after.
///
/// The thread starts on the caller's CPU (the caller only waits for it): a
/// new thread placed on another, idle CPU first waits for that CPU to wake
/// up, which on a VM can cost more than the whole operation (here: spawn and
/// join p50 ~120 us unpinned, ~70 us pinned; p99 ~500 us vs ~200 us). The
/// thread widens its affinity back before doing anything, so nothing it
/// starts (a FUSE helper, a forked proc helper) inherits the pin.
pub fn on_fresh_thread<T: Send>(f: impl FnOnce(&NsThread) -> Result<T> + Send) -> Result<T> {
    let pin = CpuPin::here();
    let widen = pin.as_ref().map(|p| p.saved);
    std::thread::scope(|s| {
        let h = std::thread::Builder::new()
            .name("iws-ns".into())
            .spawn_scoped(s, move || {
                #[cfg(test)]
                tests::record_start_affinity();
                if let Some(all) = widen {
                    let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
                }
                nix::sched::unshare(CloneFlags::CLONE_FS).map_err(|e| Error::internal("unshare(CLONE_FS)", e))?;
                f(&NsThread { _here: PhantomData })
            })
            .map_err(|e| Error::internal("spawn namespace thread", e));
        drop(pin);
        h?.join().unwrap_or_else(|_| Err(Error::internal("namespace thread", "panicked")))
    })
}

/// The calling thread pinned to the CPU it runs on, until dropped (best
/// effort: None, and nothing changed, if the kernel refuses).
struct CpuPin {
    saved: nix::sched::CpuSet,
}

impl CpuPin {
    fn here() -> Option<CpuPin> {
        use nix::sched::{sched_getaffinity, sched_getcpu, sched_setaffinity, CpuSet};
        let me = nix::unistd::Pid::from_raw(0);
        let saved = sched_getaffinity(me).ok()?;
        let mut one = CpuSet::new();
        one.set(sched_getcpu().ok()?).ok()?;
        sched_setaffinity(me, &one).ok()?;
        Some(CpuPin { saved })
    }
}

impl Drop for CpuPin {
    fn drop(&mut self) {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &self.saved);
    }
}

/// A directory of a private tmpfs in a mount namespace private to the
/// calling (fresh) thread, made `rprivate` first so nothing propagates to or
/// from it. The namespace dies with the thread.
pub(crate) fn private_staging(t: &NsThread) -> Result<&'static str> {
    use nix::mount::{mount, MsFlags};
    t.unshare(CloneFlags::CLONE_NEWNS)?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| Error::internal("mount(/, MS_REC|MS_PRIVATE) in staging ns", e))?;
    let base = staging_dir()?;
    mount(Some("none"), base, Some("tmpfs"), MsFlags::MS_NOSUID | MsFlags::MS_NODEV, Some("size=64k,mode=0700"))
        .map_err(|e| Error::internal("mount(staging tmpfs)", e))?;
    Ok(base)
}

/// An existing directory of the daemon's mount namespace that a private
/// namespace may cover with a tmpfs of its own.
pub(crate) fn staging_dir() -> Result<&'static str> {
    ["/tmp", "/mnt", "/run", "/dev"]
        .into_iter()
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
        .ok_or_else(|| Error::internal("staging", "no directory to stage under"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sched::{sched_getaffinity, CpuSet};
    use std::cell::Cell;

    thread_local! {
        /// The CPUs a namespace thread was allowed when it started (before
        /// it widened its affinity), recorded on that thread.
        static STARTED_ON: Cell<Option<Vec<usize>>> = const { Cell::new(None) };
    }

    pub(super) fn record_start_affinity() {
        STARTED_ON.set(sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok().map(|s| cpus(&s)));
    }

    fn cpus(set: &CpuSet) -> Vec<usize> {
        (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()
    }

    fn allowed() -> Vec<usize> {
        cpus(&sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap())
    }

    /// This thread's CPUs, or None (saying the test `name` skips) when it
    /// may run on one only: then a pin changes nothing to observe.
    fn several_cpus(name: &str) -> Option<Vec<usize>> {
        let mine = allowed();
        if mine.len() < 2 {
            eprintln!("SKIPPED {name}: this thread may run on one CPU only ({mine:?})");
            return None;
        }
        Some(mine)
    }

    #[test]
    fn namespace_threads_start_pinned_to_one_cpu_then_run_with_the_callers_affinity() {
        let Some(mine) = several_cpus("namespace_threads_start_pinned_to_one_cpu") else { return };
        let (started, running) = on_fresh_thread(|_| Ok((STARTED_ON.take(), allowed()))).unwrap();
        let started = started.expect("the namespace thread recorded its start affinity");
        assert_eq!(started.len(), 1, "the thread starts pinned to the caller's CPU, not on {started:?}");
        assert!(mine.contains(&started[0]), "pinned to {started:?}, outside the caller's {mine:?}");
        assert_eq!(running, mine, "anything the thread starts must not inherit the pin");
        assert_eq!(allowed(), mine, "the caller's affinity is restored");
        // Errors and panics in the thread restore it too.
        let _ = on_fresh_thread(|_| -> Result<()> { Err(Error::internal("test", "boom")) });
        assert_eq!(allowed(), mine);
    }

    #[test]
    fn the_pin_holds_one_cpu_until_dropped() {
        let Some(mine) = several_cpus("the_pin_holds_one_cpu_until_dropped") else { return };
        let pin = CpuPin::here().expect("the kernel lets a thread narrow its own affinity");
        let pinned = allowed();
        assert_eq!(pinned.len(), 1, "{pinned:?}");
        assert_eq!(cpus(&pin.saved), mine);
        drop(pin);
        assert_eq!(allowed(), mine);
    }
}

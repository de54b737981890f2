//! The napi-rs binding: converts types, schedules each operation on libuv's
//! pool as an `AsyncTask`, and turns core errors into JS errors whose `code`
//! is the core's stable error code. No logic lives here.
//!
//! Operations that enter namespaces (later issues) must run on a thread the
//! core creates and throws away, never on the pool thread `compute` runs on.

#![deny(clippy::all)]

use std::sync::Arc;

use iws_core as core;
use napi::bindgen_prelude::*;
use napi::{JsValue, Task};
use napi_derive::napi;

// ---- errors ----------------------------------------------------------------

/// A JS `Error` with `code` (stable, e.g. "INVALID_ARGUMENT"), `message`
/// (for the caller) and, when present, `detail` (operator-only), `reason`
/// (the core's structured reason, e.g. "HostMountNamespace") and `errno`.
fn js_error(env: &Env, e: &core::Error) -> Error {
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::from_reason(e.message()))?;
        obj.set_named_property("code", e.code())?;
        if let Some(d) = e.detail() {
            obj.set_named_property("detail", d)?;
        }
        if let Some(r) = e.reason() {
            obj.set_named_property("reason", r.name())?;
        }
        if let Some(n) = e.errno() {
            obj.set_named_property("errno", n)?;
        }
        Ok(Error::from(obj.to_unknown()))
    };
    build().unwrap_or_else(|err| err)
}

fn settle<T, U>(env: &Env, r: core::Result<T>, f: impl FnOnce(T) -> U) -> Result<U> {
    r.map(f).map_err(|e| js_error(env, &e))
}

// ---- mirror types ------------------------------------------------------------

#[napi(object)]
pub struct IdRange {
    pub start: u32,
    pub size: u32,
}

#[napi(object)]
pub struct IdPolicy {
    /// Host ids container id 0 may map to.
    pub root_range: IdRange,
    /// Host ids every other container id may map to.
    pub user_ranges: Vec<IdRange>,
    /// Whether host id 0 may be mapped at all (default false).
    pub allow_host_root: Option<bool>,
    /// Whether rings keep setgroups(2) (default false: `deny` is written
    /// before a gid map).
    pub allow_setgroups: Option<bool>,
}

#[napi(object)]
pub struct IdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

#[napi(object)]
pub struct WriteIdMappingOptions {
    /// The target process, as a PID in the container's view.
    pub pid: i64,
    /// Write gid_map instead of uid_map.
    pub gid: bool,
    pub mappings: Vec<IdMapping>,
    pub policy: IdPolicy,
    /// "auto", "ioctl" or "scan".
    pub pid_strategy: String,
}

#[napi(object)]
pub struct WriteIdMappingResult {
    pub message: String,
    /// Host PID the map was written for (for logs; never send to a workspace).
    pub host_pid: i32,
}

#[napi(object)]
pub struct KernelFeatures {
    /// NS_GET_TGID_FROM_PIDNS (Linux 6.11+).
    pub pidns_ioctl: bool,
    /// pidfd_open (Linux 5.3+).
    pub pidfd: bool,
    /// A masked proc can be assembled detached (new mount API, proc pidns
    /// option, mounts onto detached trees, unique mount ids).
    pub detached_proc: bool,
    /// Why not, when `detachedProc` is false.
    pub detached_proc_error: Option<String>,
    /// SO_PEERPIDFD (Linux 6.5+).
    pub peer_pidfd: bool,
    /// STATX_MNT_ID_UNIQUE (Linux 6.8+).
    pub mnt_id_unique: bool,
    /// shiftfs listed in /proc/filesystems.
    pub shiftfs: bool,
    /// /dev/fuse present.
    pub fuse: bool,
}

fn range(r: &IdRange) -> core::idmap::IdRange {
    core::idmap::IdRange::new(r.start, r.size)
}

fn policy(p: &IdPolicy) -> core::idmap::IdPolicy {
    core::idmap::IdPolicy {
        root_range: range(&p.root_range),
        user_ranges: p.user_ranges.iter().map(range).collect(),
        allow_host_root: p.allow_host_root.unwrap_or(false),
        allow_setgroups: p.allow_setgroups.unwrap_or(false),
    }
}

fn strategy(s: &str) -> core::Result<core::pidns::PidStrategy> {
    core::pidns::choose_strategy(core::pidns::PidStrategy::parse(s)?)
}

// ---- container handle ----------------------------------------------------------

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
    inner: std::sync::Mutex<Option<Arc<core::pidns::Container>>>,
}

impl Container {
    fn get(&self) -> Option<Arc<core::pidns::Container>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[napi]
impl Container {
    /// Host PID of the container's init.
    #[napi(getter)]
    pub fn host_pid(&self) -> Option<i32> {
        self.get().map(|c| c.host_pid())
    }

    /// The init's start time in clock ticks after boot: with `hostPid`, the
    /// container's identity across daemon restarts. Null after close().
    #[napi(getter)]
    pub fn start_time(&self) -> Option<i64> {
        self.get().and_then(|c| c.start_time().ok()).map(|t| t as i64)
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

fn handle(c: &Container) -> Result<Arc<core::pidns::Container>> {
    c.get().ok_or_else(|| Error::new(Status::InvalidArg, "container handle is closed"))
}

pub struct OpenContainerTask {
    host_pid: i64,
}

impl Task for OpenContainerTask {
    type Output = core::Result<core::pidns::Container>;
    type JsValue = Container;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::pidns::Container::open(self.host_pid))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |c| Container { inner: std::sync::Mutex::new(Some(Arc::new(c))) })
    }
}

/// Opens the container whose init has host PID `hostPid`.
#[napi(ts_return_type = "Promise<Container>")]
pub fn open_container(host_pid: i64) -> AsyncTask<OpenContainerTask> {
    AsyncTask::new(OpenContainerTask { host_pid })
}

// ---- WriteIDMapping ----------------------------------------------------------------

pub struct WriteIdMappingTask {
    container: Arc<core::pidns::Container>,
    caller: Option<core::authz::Caller>,
    pid: i64,
    kind: core::idmap_write::IdKind,
    lines: Vec<core::idmap::IdMapping>,
    policy: core::idmap::IdPolicy,
    strategy: String,
}

impl Task for WriteIdMappingTask {
    type Output = core::Result<core::idmap_write::WriteIdMappingOutcome>;
    type JsValue = WriteIdMappingResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(strategy(&self.strategy).and_then(|s| {
            core::idmap_write::write_id_mapping(
                &self.container,
                s,
                self.caller.as_ref(),
                self.pid,
                self.kind,
                &self.lines,
                &self.policy,
            )
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |o| WriteIdMappingResult { message: o.message, host_pid: o.host_pid })
    }
}

/// Validates `options.mappings` against `options.policy`, authorizes
/// `caller` (the connection's peer; null: the embedding program's own
/// authority, for `iwsd/native`) and writes them as the uid (or gid) map
/// of process `options.pid` (container view) in one write.
#[napi(ts_return_type = "Promise<WriteIdMappingResult>")]
pub fn write_id_mapping(
    container: &Container,
    caller: Option<Peer>,
    options: WriteIdMappingOptions,
) -> Result<AsyncTask<WriteIdMappingTask>> {
    Ok(AsyncTask::new(WriteIdMappingTask {
        container: handle(container)?,
        caller: caller.as_ref().map(self::caller),
        pid: options.pid,
        kind: if options.gid { core::idmap_write::IdKind::Gid } else { core::idmap_write::IdKind::Uid },
        lines: mappings(&options.mappings),
        policy: policy(&options.policy),
        strategy: options.pid_strategy,
    }))
}

// ---- pure checks and probes ----------------------------------------------------------

/// Throws (code INVALID_ARGUMENT) when the policy is unsound. Pure; no syscalls.
#[napi]
pub fn validate_id_policy(env: Env, p: IdPolicy) -> Result<()> {
    settle(&env, policy(&p).validate(), |_| ())
}

pub struct ProbeTask;

impl Task for ProbeTask {
    type Output = core::KernelFeatures;
    type JsValue = KernelFeatures;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::probe())
    }

    fn resolve(&mut self, _env: Env, f: Self::Output) -> Result<Self::JsValue> {
        Ok(KernelFeatures {
            pidns_ioctl: f.pidns_ioctl,
            pidfd: f.pidfd,
            detached_proc: f.detached_proc.is_ok(),
            detached_proc_error: f.detached_proc.err(),
            peer_pidfd: f.peer_pidfd,
            mnt_id_unique: f.mnt_id_unique,
            shiftfs: f.shiftfs,
            fuse: f.fuse,
        })
    }
}

/// Probes the kernel features iwsd uses.
#[napi(ts_return_type = "Promise<KernelFeatures>")]
pub fn probe_kernel() -> AsyncTask<ProbeTask> {
    AsyncTask::new(ProbeTask)
}

pub struct StrategyTask(String);

impl Task for StrategyTask {
    type Output = core::Result<core::pidns::PidStrategy>;
    type JsValue = String;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(strategy(&self.0))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |s| s.name().to_string())
    }
}

/// Resolves a configured PID strategy ("auto", "ioctl", "scan") to the one that
/// will be used on this kernel; rejects (FAILED_PRECONDITION) a forced strategy
/// the kernel lacks.
#[napi(ts_return_type = "Promise<string>")]
pub fn resolve_pid_strategy(requested: String) -> AsyncTask<StrategyTask> {
    AsyncTask::new(StrategyTask(requested))
}

// ---- masked proc and sysfs ----------------------------------------------------------

#[napi(object)]
pub struct Masks {
    /// Entries hidden (files: /dev/null bind; directories: empty read-only tmpfs).
    pub masked: Vec<String>,
    /// Entries made read-only.
    pub read_only: Vec<String>,
}

#[napi(object)]
pub struct MountProcOptions {
    /// The requesting process, as a PID in the container's view.
    pub pid: i64,
    /// Absolute path in that process's mount namespace, inside its root.
    pub target: String,
    pub masks: Masks,
    pub pid_strategy: String,
    /// "auto", "detached" or "fallback".
    pub mount_strategy: String,
    /// The workspace's FUSE mark, if it has one (see FuseMark).
    pub fuse_mark: Option<FuseMark>,
}

/// A workspace's FUSE mark, for the deadline of operations that may walk
/// through it: past `deadlineMs` its FUSE connection is aborted and the call
/// fails (UNAVAILABLE) instead of blocking on a stuck server.
#[napi(object)]
pub struct FuseMark {
    pub pid: i32,
    pub staging: String,
    pub deadline_ms: u32,
}

fn fuse_mark(m: Option<FuseMark>) -> Option<(core::shift::FuseMarkRef, std::time::Duration)> {
    m.map(|m| {
        (
            core::shift::FuseMarkRef { pid: m.pid, staging: m.staging },
            std::time::Duration::from_millis(m.deadline_ms.max(1) as u64),
        )
    })
}

#[napi(object)]
pub struct MountSysfsOptions {
    pub pid: i64,
    pub target: String,
    pub read_only: bool,
    pub masks: Masks,
    pub pid_strategy: String,
    /// "auto", "detached" or "fallback".
    pub mount_strategy: String,
    pub fuse_mark: Option<FuseMark>,
}

#[napi(object)]
pub struct UmountOptions {
    pub pid: i64,
    pub target: String,
    /// The mounts of this kind iwsd made for this workspace; only these may
    /// be unmounted, each only by whom it was made for or container root.
    pub owned: Vec<OwnedMount>,
    pub pid_strategy: String,
    pub fuse_mark: Option<FuseMark>,
}

#[napi(object)]
pub struct OwnedMount {
    /// Unique mount id (decimal string).
    pub mount_id: String,
    /// Who it was made for; absent in records made before callers were
    /// recorded (then only container root may unmount it).
    pub made_for: Option<MountOwner>,
}

#[napi(object)]
pub struct MountResult {
    /// Unique mount id (decimal string; u64 does not fit a JS number).
    pub mount_id: String,
    /// Who the mount was made for (MountProc/MountSysfs; record it).
    pub made_for: Option<MountOwner>,
}

fn mount_strategy(s: &str) -> core::Result<core::mount::MountStrategy> {
    core::mount::choose_strategy(core::mount::MountStrategy::parse(s)?)
}

fn masks(m: Masks) -> core::mount::Masks {
    core::mount::Masks { masked: m.masked, read_only: m.read_only }
}

pub enum MountOp {
    Proc { pid: i64, target: String, masks: core::mount::Masks, strategy: String },
    Sysfs { pid: i64, target: String, opts: core::mount::SysfsOptions, strategy: String },
    Umount { pid: i64, target: String, owned: Vec<OwnedMount> },
    Nfs { pid: i64, source: String, target: String, args: String, strategy: String },
}

pub struct MountTask {
    container: Arc<core::pidns::Container>,
    caller: Option<core::authz::Caller>,
    op: Option<MountOp>,
    strategy: String,
    fuse: Option<(core::shift::FuseMarkRef, std::time::Duration)>,
}

type MountOut = (u64, Option<core::authz::CallerId>);

fn run_mount_op(
    c: &core::pidns::Container,
    who: Option<&core::authz::Caller>,
    op: &MountOp,
    strategy: &str,
) -> core::Result<MountOut> {
    let s = self::strategy(strategy)?;
    match op {
        MountOp::Proc { pid, target, masks, strategy } => {
            core::mount::mount_proc(c, s, mount_strategy(strategy)?, who, *pid, target, masks)
                .map(|o| (o.mount_id, o.made_for))
        }
        MountOp::Sysfs { pid, target, opts, strategy } => {
            core::mount::mount_sysfs(c, s, mount_strategy(strategy)?, who, *pid, target, opts)
                .map(|o| (o.mount_id, o.made_for))
        }
        MountOp::Umount { pid, target, owned } => {
            let owned = owned
                .iter()
                .map(|m| Ok((mount_id(&m.mount_id)?, m.made_for.as_ref().map(owner_in).transpose()?)))
                .collect::<core::Result<Vec<_>>>()?;
            core::mount::umount(c, s, who, *pid, target, &owned).map(|id| (id, None))
        }
        MountOp::Nfs { pid, source, target, args, strategy } => {
            core::nfs::mount_nfs(c, s, mount_strategy(strategy)?, who, *pid, source, target, args)
                .map(|o| (o.mount_id, o.made_for))
        }
    }
}

impl Task for MountTask {
    type Output = core::Result<MountOut>;
    type JsValue = MountResult;

    fn compute(&mut self) -> Result<Self::Output> {
        let Some(op) = self.op.take() else { return Ok(Err(core::Error::internal("mount task", "ran twice"))) };
        let Some((fuse, deadline)) = self.fuse.take() else {
            return Ok(run_mount_op(&self.container, self.caller.as_ref(), &op, &self.strategy));
        };
        let (c, who, strategy) = (self.container.clone(), self.caller, self.strategy.clone());
        Ok(core::shift::with_mark_deadline(deadline, Some(fuse), move || {
            run_mount_op(&c, who.as_ref(), &op, &strategy)
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |(id, made_for)| MountResult { mount_id: id.to_string(), made_for: made_for.map(owner_out) })
    }
}

fn mount_task(
    container: &Container,
    caller: Option<Peer>,
    op: MountOp,
    strategy: String,
    fuse: Option<FuseMark>,
) -> Result<AsyncTask<MountTask>> {
    Ok(AsyncTask::new(MountTask {
        container: handle(container)?,
        caller: caller.as_ref().map(self::caller),
        op: Some(op),
        strategy,
        fuse: fuse_mark(fuse),
    }))
}

/// Mounts a new masked proc for the PID namespace of `options.pid` at
/// `options.target` inside that process's root and mount namespace.
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn mount_proc(
    container: &Container,
    caller: Option<Peer>,
    options: MountProcOptions,
) -> Result<AsyncTask<MountTask>> {
    let op = MountOp::Proc {
        pid: options.pid,
        target: options.target,
        masks: masks(options.masks),
        strategy: options.mount_strategy,
    };
    mount_task(container, caller, op, options.pid_strategy, options.fuse_mark)
}

/// Mounts a new masked sysfs of the network namespace of `options.pid`.
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn mount_sysfs(
    container: &Container,
    caller: Option<Peer>,
    options: MountSysfsOptions,
) -> Result<AsyncTask<MountTask>> {
    let opts = core::mount::SysfsOptions { read_only: options.read_only, masks: masks(options.masks) };
    let op = MountOp::Sysfs { pid: options.pid, target: options.target, opts, strategy: options.mount_strategy };
    mount_task(container, caller, op, options.pid_strategy, options.fuse_mark)
}

/// Unmounts the mount at `options.target` if it is one of `options.owned`.
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn umount(container: &Container, caller: Option<Peer>, options: UmountOptions) -> Result<AsyncTask<MountTask>> {
    let op = MountOp::Umount { pid: options.pid, target: options.target, owned: options.owned };
    mount_task(container, caller, op, options.pid_strategy, options.fuse_mark)
}

pub struct MountStrategyTask(String);

impl Task for MountStrategyTask {
    type Output = core::Result<core::mount::MountStrategy>;
    type JsValue = String;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(mount_strategy(&self.0))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |s| s.name().to_string())
    }
}

/// Resolves a configured mount strategy ("auto", "detached", "fallback") to
/// the one used on this kernel; rejects (FAILED_PRECONDITION) a forced one the
/// kernel lacks.
#[napi(ts_return_type = "Promise<string>")]
pub fn resolve_mount_strategy(requested: String) -> AsyncTask<MountStrategyTask> {
    AsyncTask::new(MountStrategyTask(requested))
}

// ---- PrepareForUserNS / Teardown marks ---------------------------------------------

#[napi(object)]
pub struct FuseOptions {
    /// The host's fuse-overlayfs binary (absolute path).
    pub binary: String,
    /// Host directories private to iwsd: overlay upper and work dirs, and a
    /// staging mount point in the helper's own mount namespace.
    pub upper: String,
    pub work: String,
    pub staging: String,
    /// Size in bytes of the private tmpfs holding upper and work (copy-ups).
    pub upper_bytes: i64,
}

#[napi(object)]
pub struct PrepareMarkOptions {
    /// Absolute path inside the container's root, e.g. "/.workspace/mark".
    pub mark_path: String,
    /// The workspace's shift mapping (validated against `policy`).
    pub shift: Vec<IdMapping>,
    pub policy: IdPolicy,
    /// "auto", "idmapped", "fuse" or "shiftfs".
    pub method: String,
    pub fuse: FuseOptions,
}

#[napi(object)]
pub struct MarkInfo {
    /// "idmapped", "fuse" or "shiftfs".
    pub method: String,
    /// Unique id of the mount at the mark path (decimal string).
    pub mount_id: String,
    /// PID of the supervised fuse-overlayfs, for "fuse".
    pub fuse_pid: Option<i32>,
}

#[napi(object)]
pub struct RemoveMarkOptions {
    pub mark_path: String,
    pub mark: MarkInfo,
    pub shift: Vec<IdMapping>,
    pub fuse: FuseOptions,
    pub pid_strategy: String,
}

#[napi(object)]
pub struct RemoveMarkResult {
    /// True only when everything was cleaned.
    pub success: bool,
    /// What could not be cleaned, for the log.
    pub problems: Vec<String>,
}

fn mappings(v: &[IdMapping]) -> Vec<core::idmap::IdMapping> {
    v.iter()
        .map(|m| core::idmap::IdMapping { container_id: m.container_id, host_id: m.host_id, size: m.size })
        .collect()
}

fn fuse_opts(f: &FuseOptions) -> core::shift::FuseOptions {
    core::shift::FuseOptions {
        binary: f.binary.clone(),
        upper: f.upper.clone(),
        work: f.work.clone(),
        staging: f.staging.clone(),
        upper_bytes: u64::try_from(f.upper_bytes).unwrap_or(0),
    }
}

fn mark_from(m: &MarkInfo) -> core::Result<core::shift::Mark> {
    let mount_id = mount_id(&m.mount_id)?;
    Ok(core::shift::Mark { method: core::shift::ShiftMethod::parse(&m.method)?, mount_id, fuse_pid: m.fuse_pid })
}

fn mount_id(s: &str) -> core::Result<u64> {
    s.parse().map_err(|_| core::Error::invalid(format!("mount id {s:?} is not a decimal number")))
}

pub struct PrepareMarkTask {
    container: Arc<core::pidns::Container>,
    mark_path: String,
    shift: Vec<core::idmap::IdMapping>,
    policy: core::idmap::IdPolicy,
    method: String,
    fuse: core::shift::FuseOptions,
}

impl Task for PrepareMarkTask {
    type Output = core::Result<core::shift::Mark>;
    type JsValue = MarkInfo;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::shift::MethodChoice::parse(&self.method).and_then(|choice| {
            core::shift::prepare_mark(&self.container, &self.mark_path, &self.shift, &self.policy, choice, &self.fuse)
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |m| MarkInfo {
            method: m.method.name().into(),
            mount_id: m.mount_id.to_string(),
            fuse_pid: m.fuse_pid,
        })
    }
}

/// PrepareForUserNS's kernel work: makes the container's root mount shared
/// and mounts an ID-shifted view of it at `options.markPath`.
#[napi(ts_return_type = "Promise<MarkInfo>")]
pub fn prepare_shift_mark(container: &Container, options: PrepareMarkOptions) -> Result<AsyncTask<PrepareMarkTask>> {
    Ok(AsyncTask::new(PrepareMarkTask {
        container: handle(container)?,
        mark_path: options.mark_path,
        shift: mappings(&options.shift),
        policy: policy(&options.policy),
        method: options.method,
        fuse: fuse_opts(&options.fuse),
    }))
}

pub struct RemoveMarkTask {
    container: Arc<core::pidns::Container>,
    mark_path: String,
    mark: core::Result<core::shift::Mark>,
    shift: Vec<core::idmap::IdMapping>,
    fuse: core::shift::FuseOptions,
    strategy: String,
}

impl Task for RemoveMarkTask {
    type Output = core::Result<(bool, Vec<String>)>;
    type JsValue = RemoveMarkResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(self.mark.clone().and_then(|mark| {
            let s = strategy(&self.strategy)?;
            Ok(core::shift::remove_mark(&self.container, s, &self.mark_path, &mark, &self.shift, &self.fuse))
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |(success, problems)| RemoveMarkResult { success, problems })
    }
}

/// Teardown's kernel work: unmounts the mark (only the mount iwsd made),
/// stops its FUSE helper, releases its cached user namespace.
#[napi(ts_return_type = "Promise<RemoveMarkResult>")]
pub fn remove_shift_mark(container: &Container, options: RemoveMarkOptions) -> Result<AsyncTask<RemoveMarkTask>> {
    Ok(AsyncTask::new(RemoveMarkTask {
        container: handle(container)?,
        mark_path: options.mark_path,
        mark: mark_from(&options.mark),
        shift: mappings(&options.shift),
        fuse: fuse_opts(&options.fuse),
        strategy: options.pid_strategy,
    }))
}

// ---- peer credentials ------------------------------------------------------------

#[napi(object)]
pub struct Peer {
    /// Host PID of the connecting process.
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
    /// Its start time (clock ticks after boot): with `pid`, the caller of
    /// every call on the connection. A caller without it is refused.
    pub start_time: Option<i64>,
}

fn caller(p: &Peer) -> core::authz::Caller {
    core::authz::Caller { host_pid: p.pid, start_time: p.start_time.and_then(|t| u64::try_from(t).ok()), uid: p.uid }
}

/// Who a mount was made for: the caller's kernel euid and user namespace.
#[napi(object)]
pub struct MountOwner {
    pub euid: u32,
    /// "DEV:INO" of its user namespace.
    pub userns: String,
}

fn owner_out(id: core::authz::CallerId) -> MountOwner {
    MountOwner { euid: id.euid, userns: id.userns_string() }
}

fn owner_in(o: &MountOwner) -> core::Result<core::authz::CallerId> {
    Ok(core::authz::CallerId { euid: o.euid, userns: core::authz::CallerId::parse_userns(&o.userns)? })
}

pub struct CheckPeerTask {
    container: Arc<core::pidns::Container>,
    sock: core::Result<std::os::fd::OwnedFd>,
}

impl Task for CheckPeerTask {
    type Output = core::Result<core::pidns::Peer>;
    type JsValue = Peer;

    fn compute(&mut self) -> Result<Self::Output> {
        use std::os::fd::AsFd;
        Ok(match &self.sock {
            Ok(fd) => self.container.check_peer(fd.as_fd()),
            Err(e) => Err(e.clone()),
        })
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |p| Peer { pid: p.pid, uid: p.uid, gid: p.gid, start_time: Some(p.start_time as i64) })
    }
}

/// Checks that the process connected on unix socket `fd` is inside the
/// container (PERMISSION_DENIED otherwise). The fd is duplicated right away,
/// so the check owns its own reference while it runs.
#[napi(ts_return_type = "Promise<Peer>")]
pub fn check_peer(container: &Container, fd: i32) -> Result<AsyncTask<CheckPeerTask>> {
    Ok(AsyncTask::new(CheckPeerTask { container: handle(container)?, sock: core::pidns::dup_socket(fd) }))
}

pub struct AuthorizeLifecycleTask {
    container: Arc<core::pidns::Container>,
    caller: core::authz::Caller,
    rule: String,
}

impl Task for AuthorizeLifecycleTask {
    type Output = core::Result<()>;
    type JsValue = ();

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::authz::LifecycleRule::parse(&self.rule)
            .and_then(|rule| core::authz::authorize_lifecycle_call(&self.container, &self.caller, rule)))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |_| ())
    }
}

/// Whether `caller` may call PrepareForUserNS or Teardown under `rule`
/// ("root-or-init-uid" or "root"); rejects PERMISSION_DENIED otherwise.
/// Side-effect free: call it before the one-shot is used.
#[napi(ts_return_type = "Promise<void>")]
pub fn authorize_lifecycle(
    container: &Container,
    caller: Peer,
    rule: String,
) -> Result<AsyncTask<AuthorizeLifecycleTask>> {
    Ok(AsyncTask::new(AuthorizeLifecycleTask { container: handle(container)?, caller: self::caller(&caller), rule }))
}

// ---- container exit watcher ----------------------------------------------------

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
        settle(&env, w.watch(token as u64, &c), |_| ())
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

pub struct StopFuseTask {
    pid: i32,
    staging: String,
}

impl Task for StopFuseTask {
    type Output = core::Result<bool>;
    type JsValue = bool;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::shift::stop_fuse(self.pid, &self.staging))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |b| b)
    }
}

/// Stops a fuse-overlayfs helper of iwsd's (also one a previous daemon
/// process started: it must be fuse-overlayfs serving `staging`).
/// Resolves false when no such helper runs.
#[napi(ts_return_type = "Promise<boolean>")]
pub fn stop_fuse_helper(pid: i32, staging: String) -> AsyncTask<StopFuseTask> {
    AsyncTask::new(StopFuseTask { pid, staging })
}

// ---- workspace directories ----------------------------------------------------

#[napi(object)]
pub struct RemoveTreeResult {
    /// The tree is gone (or was never there).
    pub removed: bool,
    /// Entries looked at.
    pub entries: f64,
    /// What was left and why, for the log (e.g. a mount point inside).
    pub problems: Vec<String>,
}

#[napi(object)]
pub struct SealResult {
    /// The directory (and its mark directory) carry FS_IMMUTABLE_FL.
    pub immutable: bool,
    /// Foreign entries removed.
    pub pruned: Vec<String>,
    /// What could not be removed, for the log.
    pub problems: Vec<String>,
}

fn seal_result(o: core::fsops::SealOutcome) -> SealResult {
    SealResult { immutable: o.immutable, pruned: o.pruned, problems: o.problems }
}

pub enum SealOp {
    Prepare { parent: String, name: String, mark: Option<String> },
    Install { src_dir: String, src_name: String, parent: String, name: String, mark: Option<String> },
}

pub struct RemoveTreeTask {
    parent: String,
    name: String,
    /// Empty the directory, keep it (`empty_tree`).
    keep_top: bool,
}

impl Task for RemoveTreeTask {
    type Output = core::Result<core::fsops::RemoveOutcome>;
    type JsValue = RemoveTreeResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(if self.keep_top {
            core::fsops::empty_tree(&self.parent, &self.name)
        } else {
            core::fsops::remove_tree(&self.parent, &self.name)
        })
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |o| RemoveTreeResult { removed: o.removed, entries: o.entries as f64, problems: o.problems })
    }
}

/// Removes `parent/name` and everything below it by file descriptor (no
/// symlink followed, no mount crossed, bounded). `parent` must be a
/// daemon-owned directory.
#[napi(ts_return_type = "Promise<RemoveTreeResult>")]
pub fn remove_tree(parent: String, name: String) -> AsyncTask<RemoveTreeTask> {
    AsyncTask::new(RemoveTreeTask { parent, name, keep_top: false })
}

/// Empties the directory `parent/name` as `removeTree` removes it, but keeps
/// the directory (flags cleared): a bind-mount source the runtime made.
#[napi(ts_return_type = "Promise<RemoveTreeResult>")]
pub fn empty_tree(parent: String, name: String) -> AsyncTask<RemoveTreeTask> {
    AsyncTask::new(RemoveTreeTask { parent, name, keep_top: true })
}

pub struct SealTask(SealOp);

impl Task for SealTask {
    type Output = core::Result<core::fsops::SealOutcome>;
    type JsValue = SealResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(match &self.0 {
            SealOp::Prepare { parent, name, mark } => core::fsops::prepare_workspace_dir(parent, name, mark.as_deref()),
            SealOp::Install { src_dir, src_name, parent, name, mark } => {
                core::fsops::install_socket(src_dir, src_name, parent, name, mark.as_deref())
            }
        })
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, seal_result)
    }
}

/// Creates (if missing) and prepares workspace directory `parent/name`: the
/// mark directory `mark` made, foreign entries pruned, immutable where the
/// filesystem supports it.
#[napi(ts_return_type = "Promise<SealResult>")]
pub fn prepare_workspace_dir(parent: String, name: String, mark: Option<String>) -> AsyncTask<SealTask> {
    AsyncTask::new(SealTask(SealOp::Prepare { parent, name, mark }))
}

/// Renames the socket `srcDir/srcName` to `parent/name/daemon.sock`
/// (replacing whatever is there), then seals the directory again.
#[napi(ts_return_type = "Promise<SealResult>")]
pub fn install_socket(
    src_dir: String,
    src_name: String,
    parent: String,
    name: String,
    mark: Option<String>,
) -> AsyncTask<SealTask> {
    AsyncTask::new(SealTask(SealOp::Install { src_dir, src_name, parent, name, mark }))
}

// ---- supervision: state-dir lock, sd_notify -----------------------------------

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

// ---- Gitpod's network RPCs: SetupPairVeths, MountNfs ---------------------------

#[napi(object)]
pub struct MountNfsOptions {
    /// The requesting process, as a PID in the container's view.
    pub pid: i64,
    /// `server:/path`.
    pub source: String,
    /// Absolute path in that process's mount namespace, inside its root.
    pub target: String,
    /// NFS options (comma-separated, checked against the allow-list).
    pub args: String,
    pub pid_strategy: String,
    pub mount_strategy: String,
}

/// Mounts an NFS share at `options.target`, connecting from the container's
/// network namespace (see crates/iws-core/src/nfs.rs).
#[napi(ts_return_type = "Promise<MountResult>")]
pub fn mount_nfs(
    container: &Container,
    caller: Option<Peer>,
    options: MountNfsOptions,
) -> Result<AsyncTask<MountTask>> {
    let op = MountOp::Nfs {
        pid: options.pid,
        source: options.source,
        target: options.target,
        args: options.args,
        strategy: options.mount_strategy,
    };
    mount_task(container, caller, op, options.pid_strategy, None)
}

#[napi(object)]
pub struct SetupPairVethsOptions {
    /// A process (container view) in the network namespace that gets the peer.
    pub pid: i64,
    /// IPv4 network of the pair, e.g. "10.0.5.0/30".
    pub workspace_cidr: String,
    pub pid_strategy: String,
}

#[napi(object)]
pub struct PairVethsResult {
    pub container_if: String,
    pub peer_if: String,
    pub container_addr: String,
    pub peer_addr: String,
    pub prefix: u32,
}

pub struct PairTask {
    container: Arc<core::pidns::Container>,
    caller: Option<core::authz::Caller>,
    pid: i64,
    cidr: String,
    strategy: String,
}

impl Task for PairTask {
    type Output = core::Result<core::netns::PairOutcome>;
    type JsValue = PairVethsResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok((|| {
            let net = core::netns::WorkspaceNet::parse(&self.cidr)?;
            core::netns::setup_pair_veths(
                &self.container,
                strategy(&self.strategy)?,
                self.caller.as_ref(),
                self.pid,
                &net,
            )
        })())
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |o| PairVethsResult {
            container_if: o.container_if,
            peer_if: o.peer_if,
            container_addr: o.net.container_addr.to_string(),
            peer_addr: o.net.peer_addr.to_string(),
            prefix: o.net.prefix as u32,
        })
    }
}

/// Creates the veth pair between the container's network namespace and that
/// of `options.pid` (see crates/iws-core/src/netns.rs).
#[napi(ts_return_type = "Promise<PairVethsResult>")]
pub fn setup_pair_veths(
    container: &Container,
    caller: Option<Peer>,
    options: SetupPairVethsOptions,
) -> Result<AsyncTask<PairTask>> {
    Ok(AsyncTask::new(PairTask {
        container: handle(container)?,
        caller: caller.as_ref().map(self::caller),
        pid: options.pid,
        cidr: options.workspace_cidr,
        strategy: options.pid_strategy,
    }))
}

/// Checks a workspace network CIDR (config `network.workspaceCidr`); throws INVALID_ARGUMENT.
#[napi]
pub fn validate_workspace_cidr(env: Env, cidr: String) -> Result<()> {
    settle(&env, core::netns::WorkspaceNet::parse(&cidr), |_| ())
}

// ---- cgroups and devices (WorkspaceInfo, EvacuateCGroup, /dev/fuse, /dev/net/tun) ----

/// A container's raw CPU and memory figures, from its own cgroups.
#[napi(object)]
pub struct CgroupResources {
    /// CPU time used since the cgroup was made, nanoseconds.
    pub cpu_usage_ns: f64,
    /// CFS quota and period (µs); absent when unlimited.
    pub cpu_quota_us: Option<f64>,
    pub cpu_period_us: Option<f64>,
    pub memory_used: f64,
    /// Bytes; absent when unlimited.
    pub memory_limit: Option<f64>,
    /// Where each figure came from.
    pub sources: Vec<String>,
    /// CLOCK_BOOTTIME when read, nanoseconds.
    pub at_ns: f64,
    /// The container init's start (CLOCK_BOOTTIME), nanoseconds.
    pub started_ns: f64,
    /// Online CPUs of the node.
    pub cpus: u32,
    /// The node's memory, bytes.
    pub mem_total: f64,
}

pub struct ReadResourcesTask {
    container: Arc<core::pidns::Container>,
}

impl Task for ReadResourcesTask {
    type Output = core::Result<core::cgroup::Resources>;
    type JsValue = CgroupResources;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::cgroup::read_resources(&self.container))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |r| CgroupResources {
            cpu_usage_ns: r.cpu_usage_ns as f64,
            cpu_quota_us: r.cpu_quota.map(|q| q.0 as f64),
            cpu_period_us: r.cpu_quota.map(|q| q.1 as f64),
            memory_used: r.memory_used as f64,
            memory_limit: r.memory_limit.map(|m| m as f64),
            sources: r.sources,
            at_ns: r.at_ns as f64,
            started_ns: r.started_ns as f64,
            cpus: r.cpus,
            mem_total: r.mem_total as f64,
        })
    }
}

/// Reads the container's CPU and memory figures from its own cgroups (v1 or v2).
#[napi(ts_return_type = "Promise<CgroupResources>")]
pub fn read_cgroup_resources(container: &Container) -> Result<AsyncTask<ReadResourcesTask>> {
    Ok(AsyncTask::new(ReadResourcesTask { container: handle(container)? }))
}

#[napi(object)]
pub struct EvacuateResult {
    pub unified: bool,
    pub cgroup: String,
    pub moved: u32,
    pub controllers: Vec<String>,
    pub problems: Vec<String>,
}

pub struct EvacuateTask {
    container: Arc<core::pidns::Container>,
    caller: core::authz::Caller,
    rule: String,
}

impl Task for EvacuateTask {
    type Output = core::Result<core::cgroup::EvacuateOutcome>;
    type JsValue = EvacuateResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::authz::LifecycleRule::parse(&self.rule)
            .and_then(|rule| core::authz::authorize_lifecycle_call(&self.container, &self.caller, rule))
            .and_then(|()| core::cgroup::evacuate(&self.container)))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |o| EvacuateResult {
            unified: o.unified,
            cgroup: o.cgroup,
            moved: o.moved,
            controllers: o.controllers,
            problems: o.problems,
        })
    }
}

/// EvacuateCGroup for `caller` (allowed by the lifecycle `rule`): on v2 the
/// workspace's processes move to `<cgroup>/workspace/user`; on v1 nothing.
#[napi(ts_return_type = "Promise<EvacuateResult>")]
pub fn evacuate_cgroup(container: &Container, caller: Peer, rule: String) -> Result<AsyncTask<EvacuateTask>> {
    Ok(AsyncTask::new(EvacuateTask { container: handle(container)?, caller: self::caller(&caller), rule }))
}

#[napi(object)]
pub struct DeviceNode {
    pub path: String,
    /// `created`, `present` or `refused`.
    pub state: String,
    pub detail: String,
}

#[napi(object)]
pub struct DevicesResult {
    pub devices: Vec<DeviceNode>,
    pub cgroup: String,
}

pub struct MakeDevicesTask {
    container: Arc<core::pidns::Container>,
}

impl Task for MakeDevicesTask {
    type Output = core::Result<core::devices::DevicesOutcome>;
    type JsValue = DevicesResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(core::devices::make_devices(&self.container))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        settle(&env, out, |o| DevicesResult {
            devices: o
                .devices
                .into_iter()
                .map(|d| DeviceNode { path: d.path, state: d.state, detail: d.detail })
                .collect(),
            cgroup: o.cgroup,
        })
    }
}

/// Makes /dev/fuse and /dev/net/tun in the container (and allows them in its v1 devices cgroup).
#[napi(ts_return_type = "Promise<DevicesResult>")]
pub fn make_container_devices(container: &Container) -> Result<AsyncTask<MakeDevicesTask>> {
    Ok(AsyncTask::new(MakeDevicesTask { container: handle(container)? }))
}

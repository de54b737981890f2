//! A container's cgroups, found and read (and for EvacuateCGroup changed) on
//! the host's cgroupfs.
//!
//! Where: the container init's `/proc/<pid>/cgroup`, read through the pinned
//! `/proc/<pid>` directory of the registered init. The daemon reads it as a
//! host process, so the paths are relative to the daemon's cgroup namespace
//! root; a path that leaves it (the kernel writes `/..` then), a `.` or empty
//! component, or a removed cgroup (` (deleted)`) is refused. The path is
//! resolved with `openat2(RESOLVE_BENEATH | NO_SYMLINKS | NO_MAGICLINKS |
//! NO_XDEV)` below the mount point of the hierarchy found in the daemon's own
//! `/proc/self/mountinfo` (a mount whose root is `/` and whose filesystem is
//! cgroupfs by `fstatfs`), never through a path a workspace can redirect.
//!
//! Which: the container init's cgroup *at call time*. Container root that can
//! write a cgroupfs can move its init into another cgroup; so a cgroup is
//! only used while it and every cgroup below it hold workspace processes
//! only (the init among them): a parent (which holds the pod's or other
//! workspaces' processes), another workspace's or the daemon's cgroup is
//! refused (PERMISSION_DENIED), and so is the root cgroup of a hierarchy.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{fstatfs, mkdirat, openat, Mode, OFlags, ResolveFlags, CWD};
use rustix::io::Errno;

use crate::error::{Error, ErrorKind, Result};
use crate::pidns::{Container, PinnedProcess};
use crate::resolve::openat2_scoped;
use crate::sys;

const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// Most cgroups looked at below a container's cgroup.
const MAX_SUBTREE: usize = 4096;

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupLine {
    /// Hierarchy id; 0 is the unified (v2) hierarchy.
    pub id: u32,
    /// Controllers bound to it (v1), e.g. `["cpu", "cpuacct"]`, `["name=systemd"]`.
    pub controllers: Vec<String>,
    pub path: String,
}

/// Parses `/proc/<pid>/cgroup`. Lines that are not `id:controllers:path` are skipped.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupLine> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let ctrl = it.next()?;
            let path = it.next()?;
            let controllers = if ctrl.is_empty() { vec![] } else { ctrl.split(',').map(str::to_owned).collect() };
            Some(CgroupLine { id, controllers, path: path.to_owned() })
        })
        .collect()
}

/// The components of a cgroup path from the kernel, checked: absolute, no
/// `.`/`..`/empty components, not removed, not the root cgroup.
pub fn check_cgroup_path(path: &str) -> Result<Vec<&str>> {
    let refuse = |why: &str| {
        Error::new(ErrorKind::FailedPrecondition, format!("the container's cgroup {path:?} {why}; iwsd reads only a cgroup of the container's own below the hierarchy's root"))
    };
    if path.ends_with(" (deleted)") {
        return Err(refuse("was removed"));
    }
    let Some(rel) = path.strip_prefix('/') else { return Err(refuse("is not an absolute path")) };
    if rel.is_empty() {
        return Err(refuse("is the root cgroup (the whole node)"));
    }
    let comps: Vec<&str> = rel.split('/').collect();
    if comps.iter().any(|c| c.is_empty() || *c == "." || *c == ".." || c.contains('\0')) {
        return Err(refuse("lies outside the daemon's cgroup namespace or is malformed"));
    }
    Ok(comps)
}

/// A cgroupfs mount of the daemon's: v1 with its controllers, or v2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: String,
    /// `None` for cgroup2.
    pub controllers: Option<Vec<String>>,
}

/// Cgroupfs mounts (whole hierarchies: root `/`) in a mountinfo text. The
/// first mount of each hierarchy wins.
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out: Vec<CgroupMount> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else { continue };
        let f: Vec<&str> = pre.split(' ').collect();
        let p: Vec<&str> = post.split(' ').collect();
        if f.len() < 5 || p.len() < 3 || f[3] != "/" {
            continue;
        }
        let mount_point = unescape(f[4]);
        let m = match p[0] {
            "cgroup2" => CgroupMount { mount_point, controllers: None },
            "cgroup" => {
                let ctrls = p[2]
                    .split(',')
                    .filter(|o| {
                        !matches!(*o, "rw" | "ro")
                            && !o.starts_with("release_agent")
                            && *o != "clone_children"
                            && *o != "noprefix"
                            && *o != "xattr"
                            && *o != "cpuset_v2_mode"
                            && *o != "favordynmods"
                    })
                    .map(str::to_owned)
                    .collect();
                CgroupMount { mount_point, controllers: Some(ctrls) }
            }
            _ => continue,
        };
        if !out.iter().any(|o| o.controllers == m.controllers) {
            out.push(m);
        }
    }
    out
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn daemon_mounts() -> Result<Vec<CgroupMount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::internal("read(/proc/self/mountinfo)", e))?;
    Ok(parse_mountinfo(&text))
}

/// A container's cgroup in one hierarchy, opened: the directory fd all reads
/// and writes go through.
#[derive(Debug)]
pub struct Cgroup {
    /// `v2` or the v1 controllers, for messages.
    pub hierarchy: String,
    pub path: String,
    pub dir: OwnedFd,
    pub unified: bool,
}

impl Cgroup {
    /// Reads a file of the cgroup.
    pub fn read(&self, name: &str) -> Result<String> {
        read_at(&self.dir, name)
    }

    /// Reads a file of the cgroup; `None` when the file does not exist (the
    /// controller is not enabled there).
    pub fn read_opt(&self, name: &str) -> Result<Option<String>> {
        match open_file(&self.dir, name, OFlags::RDONLY) {
            Ok(fd) => read_fd(fd, name).map(Some),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(Error::internal(&format!("openat({name}) in cgroup {}", self.path), e)),
        }
    }
}

fn open_file(dir: impl AsFd, name: &str, flags: OFlags) -> std::result::Result<OwnedFd, Errno> {
    let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS | ResolveFlags::NO_XDEV;
    openat2_scoped(dir, name, flags | OFlags::CLOEXEC, Mode::empty(), how)
}

fn read_fd(fd: OwnedFd, name: &str) -> Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::from(fd);
    let mut s = String::new();
    f.read_to_string(&mut s).map_err(|e| Error::internal(&format!("read({name})"), e))?;
    Ok(s)
}

fn read_at(dir: impl AsFd, name: &str) -> Result<String> {
    let fd = open_file(dir, name, OFlags::RDONLY).map_err(|e| Error::internal(&format!("openat({name})"), e))?;
    read_fd(fd, name)
}

/// Opens `comps` below the hierarchy mounted at `mount_point` (checked to be cgroupfs).
fn open_below(mount_point: &str, comps: &[&str]) -> Result<OwnedFd> {
    let root = openat(CWD, mount_point, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal(&format!("open({mount_point})"), e))?;
    let st = fstatfs(&root).map_err(|e| Error::internal(&format!("fstatfs({mount_point})"), e))?;
    let magic = st.f_type as i64;
    if magic != CGROUP_SUPER_MAGIC && magic != CGROUP2_SUPER_MAGIC {
        return Err(Error::new(ErrorKind::FailedPrecondition, format!("{mount_point} is not a cgroup filesystem")));
    }
    let rel = comps.join("/");
    open_file(&root, &rel, OFlags::RDONLY | OFlags::DIRECTORY).map_err(|e| match e {
        Errno::NOENT => {
            Error::new(ErrorKind::NotFound, format!("the container's cgroup {rel} is gone from {mount_point}"))
        }
        e => Error::internal(&format!("openat2({mount_point}/{rel})"), e),
    })
}

/// The container init's cgroups, by hierarchy.
#[derive(Debug)]
pub struct ContainerCgroups {
    lines: Vec<CgroupLine>,
    mounts: Vec<CgroupMount>,
}

impl ContainerCgroups {
    /// Reads the init's `/proc/<pid>/cgroup` (pinned) and the daemon's cgroup mounts.
    pub fn of(container: &Container) -> Result<ContainerCgroups> {
        Self::of_process(container.init())
    }

    pub fn of_process(p: &PinnedProcess) -> Result<ContainerCgroups> {
        let text = p.read("cgroup")?;
        p.ensure_alive()?;
        Ok(ContainerCgroups { lines: parse_proc_cgroup(&text), mounts: daemon_mounts()? })
    }

    /// The v1 hierarchy `controller` is bound to, opened, or `None` when
    /// the controller is not on a v1 hierarchy.
    pub fn v1(&self, controller: &str) -> Result<Option<Cgroup>> {
        let Some(line) = self.lines.iter().find(|l| l.id != 0 && l.controllers.iter().any(|c| c == controller)) else {
            return Ok(None);
        };
        let Some(m) =
            self.mounts.iter().find(|m| m.controllers.as_ref().is_some_and(|c| c.iter().any(|c| c == controller)))
        else {
            return Err(Error::new(ErrorKind::FailedPrecondition, format!("the daemon sees no mount of the v1 {controller} hierarchy; mount it (e.g. at /sys/fs/cgroup/{controller}) in the daemon's mount namespace")));
        };
        let comps = check_cgroup_path(&line.path)?;
        let dir = open_below(&m.mount_point, &comps)?;
        Ok(Some(Cgroup { hierarchy: line.controllers.join(","), path: line.path.clone(), dir, unified: false }))
    }

    /// The unified (v2) cgroup, opened, or `None` without a v2 hierarchy.
    pub fn v2(&self) -> Result<Option<Cgroup>> {
        let Some(line) = self.lines.iter().find(|l| l.id == 0 && l.controllers.is_empty()) else { return Ok(None) };
        let Some(m) = self.mounts.iter().find(|m| m.controllers.is_none()) else { return Ok(None) };
        let comps = check_cgroup_path(&line.path)?;
        let dir = open_below(&m.mount_point, &comps)?;
        Ok(Some(Cgroup { hierarchy: "v2".into(), path: line.path.clone(), dir, unified: true }))
    }
}

/// Host PIDs listed in `cgroup.procs` of `dir`.
fn procs(dir: impl AsFd) -> Result<Vec<i32>> {
    Ok(read_at(dir, "cgroup.procs")?.split_whitespace().filter_map(|p| p.parse().ok()).filter(|p| *p > 0).collect())
}

fn is_member(container: &Container, pid: i32) -> Result<Option<bool>> {
    match PinnedProcess::pin(pid) {
        Ok(p) => Ok(Some(container.has_member(&p)?)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// PERMISSION_DENIED unless `cg` and every cgroup below it hold workspace
/// processes only (processes that exit meanwhile are ignored).
pub fn ensure_own(container: &Container, cg: &Cgroup) -> Result<()> {
    let mut stack = vec![cg.dir.try_clone().map_err(|e| Error::internal("dup(cgroup)", e))?];
    let mut seen = 0usize;
    while let Some(dir) = stack.pop() {
        seen += 1;
        if seen > MAX_SUBTREE {
            return Err(Error::new(ErrorKind::PermissionDenied, format!("the {} cgroup {} has more than {MAX_SUBTREE} cgroups below it; iwsd does not take it for the container's own", cg.hierarchy, cg.path)));
        }
        for pid in procs(&dir)? {
            if is_member(container, pid)? == Some(false) {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("the container's {} cgroup {} (or one below it) holds a process that is not the workspace's (host pid {pid}); iwsd uses only a cgroup of the workspace's own", cg.hierarchy, cg.path),
                ));
            }
        }
        for name in subdirs(&dir)? {
            match open_file(&dir, &name, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(fd) => stack.push(fd),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(Error::internal(&format!("openat({name}) in cgroup"), e)),
            }
        }
    }
    Ok(())
}

fn subdirs(dir: impl AsFd) -> Result<Vec<String>> {
    let fd = openat(dir, ".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::internal("openat(cgroup .)", e))?;
    let d = rustix::fs::Dir::read_from(&fd).map_err(|e| Error::internal("opendir(cgroup)", e))?;
    let mut out = Vec::new();
    for ent in d {
        let ent = ent.map_err(|e| Error::internal("readdir(cgroup)", e))?;
        if ent.file_type() == rustix::fs::FileType::Directory {
            let n = ent.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// `key value` lines (memory.stat, cpu.stat).
pub fn parse_flat(text: &str) -> HashMap<&str, u64> {
    text.lines().filter_map(|l| l.split_once(' ')).filter_map(|(k, v)| Some((k, v.trim().parse().ok()?))).collect()
}

/// Raw resource figures of a container's cgroups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    /// CPU time used by the cgroup since it was made, nanoseconds.
    pub cpu_usage_ns: u64,
    /// CFS quota and period (µs); `None` when unlimited.
    pub cpu_quota: Option<(u64, u64)>,
    /// Memory in use (bytes), inactive file cache not counted.
    pub memory_used: u64,
    /// Memory limit in bytes; `None` when unlimited.
    pub memory_limit: Option<u64>,
    /// Where each figure came from, e.g. `cpu: v1 cpuacct /a/b`.
    pub sources: Vec<String>,
    /// CLOCK_BOOTTIME when read, nanoseconds.
    pub at_ns: u64,
    /// When the container's init started (CLOCK_BOOTTIME), nanoseconds.
    pub started_ns: u64,
    /// CPUs online on the node.
    pub cpus: u32,
    /// The node's memory (`MemTotal` of /proc/meminfo), bytes.
    pub mem_total: u64,
}

fn mem_total() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").map_err(|e| Error::internal("read(/proc/meminfo)", e))?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| Error::internal("parse /proc/meminfo", "no MemTotal"))
}

fn online_cpus() -> u32 {
    let n = sys::sysconf(libc::_SC_NPROCESSORS_ONLN);
    if n > 0 {
        n as u32
    } else {
        1
    }
}

fn num(text: &str, what: &str) -> Result<u64> {
    text.trim()
        .parse()
        .map_err(|_| Error::internal(&format!("parse {what}"), format!("not a number: {:?}", text.trim())))
}

/// Parses v2 `cpu.max` (`max 100000` or `quota period`).
pub fn parse_cpu_max(text: &str) -> Result<Option<(u64, u64)>> {
    let mut it = text.split_whitespace();
    let (q, p) = (it.next().unwrap_or(""), it.next().unwrap_or("100000"));
    if q == "max" {
        return Ok(None);
    }
    Ok(Some((num(q, "cpu.max")?, num(p, "cpu.max")?)))
}

/// A v1 memory limit at or above this is "unlimited" (the kernel's
/// PAGE_COUNTER_MAX rounded to pages, ~2^63).
const V1_UNLIMITED: u64 = 1 << 62;

/// Reads the container's CPU and memory figures: from the v1 hierarchy a
/// controller is bound to, else from v2. FAILED_PRECONDITION when a
/// controller is on neither (e.g. a v2 hierarchy without the memory
/// controller enabled for the container).
pub fn read_resources(container: &Container) -> Result<Resources> {
    let cgs = ContainerCgroups::of(container)?;
    // Opened only if a figure is not on v1; its refusal is the answer then.
    let v2_res = cgs.v2();
    let mut f = Figures { container, cgs: &cgs, v2_res: &v2_res, checked: Vec::new(), sources: Vec::new() };
    let cpu_usage_ns = f.cpu_usage()?;
    let cpu_quota = f.cpu_limit()?;
    let (memory_used, memory_limit) = f.memory()?;
    let at_ns = sys::boottime_ns();
    let ticks = sys::sysconf(libc::_SC_CLK_TCK).max(1) as u64;
    let started_ns = container.start_time()?.saturating_mul(1_000_000_000 / ticks);
    container.init().ensure_alive()?;
    Ok(Resources {
        cpu_usage_ns,
        cpu_quota,
        memory_used,
        memory_limit,
        sources: f.sources,
        at_ns,
        started_ns,
        cpus: online_cpus(),
        mem_total: mem_total()?,
    })
}

/// [`read_resources`]' reading of one container's figures, each from the
/// v1 hierarchy its controller is bound to, else from v2; every cgroup read
/// is checked to be the container's own (once) and named in `sources`.
struct Figures<'a> {
    container: &'a Container,
    cgs: &'a ContainerCgroups,
    v2_res: &'a Result<Option<Cgroup>>,
    checked: Vec<String>,
    sources: Vec<String>,
}

impl<'a> Figures<'a> {
    fn v2(&self) -> Option<&'a Cgroup> {
        self.v2_res.as_ref().ok().and_then(|c| c.as_ref())
    }

    /// The error for a figure on neither: v2's own refusal, if it was refused.
    fn missing(&self, what: &str) -> Error {
        if let Err(e) = self.v2_res {
            return e.clone();
        }
        Error::new(ErrorKind::FailedPrecondition, format!("the container's cgroups have no {what} figures: neither a v1 hierarchy nor its v2 cgroup has them (enable the controller for the container's cgroup)"))
    }

    /// `cg` checked to be the container's own, and named as the source of `what`.
    fn own(&mut self, cg: &Cgroup, what: &str) -> Result<()> {
        let key = format!("{}:{}", cg.hierarchy, cg.path);
        if !self.checked.contains(&key) {
            ensure_own(self.container, cg)?;
            self.checked.push(key);
        }
        self.sources.push(if cg.unified {
            format!("{what}: v2 {}", cg.path)
        } else {
            format!("{what}: v1 {} {}", cg.hierarchy, cg.path)
        });
        Ok(())
    }

    /// CPU time used, in ns.
    fn cpu_usage(&mut self) -> Result<u64> {
        if let Some(cg) = self.cgs.v1("cpuacct")? {
            self.own(&cg, "cpu usage")?;
            num(&cg.read("cpuacct.usage")?, "cpuacct.usage")
        } else if let Some(cg) = self.v2().filter(|cg| matches!(cg.read_opt("cpu.stat"), Ok(Some(_)))) {
            self.own(cg, "cpu usage")?;
            let stat = cg.read("cpu.stat")?;
            Ok(parse_flat(&stat)
                .get("usage_usec")
                .copied()
                .ok_or_else(|| self.missing("cpu usage"))?
                .saturating_mul(1000))
        } else {
            Err(self.missing("cpu usage"))
        }
    }

    /// The CPU limit: (quota, period) in µs, or none.
    fn cpu_limit(&mut self) -> Result<Option<(u64, u64)>> {
        if let Some(cg) = self.cgs.v1("cpu")? {
            self.own(&cg, "cpu limit")?;
            let quota: i64 = cg
                .read("cpu.cfs_quota_us")?
                .trim()
                .parse()
                .map_err(|_| Error::internal("parse cpu.cfs_quota_us", "not a number"))?;
            let period = num(&cg.read("cpu.cfs_period_us")?, "cpu.cfs_period_us")?;
            Ok(if quota < 0 { None } else { Some((quota as u64, period)) })
        } else if let Some((cg, max)) = match self.v2() {
            Some(cg) => cg.read_opt("cpu.max")?.map(|m| (cg, m)),
            None => None,
        } {
            self.own(cg, "cpu limit")?;
            parse_cpu_max(&max)
        } else {
            Err(self.missing("cpu limit"))
        }
    }

    /// Memory used (less inactive file cache) and the limit, in bytes.
    fn memory(&mut self) -> Result<(u64, Option<u64>)> {
        if let Some(cg) = self.cgs.v1("memory")? {
            self.own(&cg, "memory")?;
            let usage = num(&cg.read("memory.usage_in_bytes")?, "memory.usage_in_bytes")?;
            let limit = num(&cg.read("memory.limit_in_bytes")?, "memory.limit_in_bytes")?;
            let stat = cg.read("memory.stat")?;
            let inactive = parse_flat(&stat).get("total_inactive_file").copied().unwrap_or(0);
            Ok((usage.saturating_sub(inactive), (limit < V1_UNLIMITED).then_some(limit)))
        } else if let Some((cg, max)) = match self.v2() {
            Some(cg) => cg.read_opt("memory.max")?.map(|m| (cg, m)),
            None => None,
        } {
            self.own(cg, "memory")?;
            let current = num(&cg.read("memory.current")?, "memory.current")?;
            let stat = cg.read("memory.stat")?;
            let inactive = parse_flat(&stat).get("inactive_file").copied().unwrap_or(0);
            let limit = if max.trim() == "max" { None } else { Some(num(&max, "memory.max")?) };
            Ok((current.saturating_sub(inactive), limit))
        } else {
            Err(self.missing("memory"))
        }
    }
}

/// What EvacuateCGroup did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvacuateOutcome {
    /// False on a node without a v2 cgroup for the container (nothing done).
    pub unified: bool,
    /// The container's v2 cgroup path.
    pub cgroup: String,
    /// Processes moved into `<cgroup>/workspace/user`.
    pub moved: u32,
    /// Controllers enabled in `<cgroup>` and `<cgroup>/workspace`.
    pub controllers: Vec<String>,
    /// What could not be done, for the log.
    pub problems: Vec<String>,
}

fn mkdir_child(parent: impl AsFd, name: &str) -> Result<OwnedFd> {
    match mkdirat(&parent, name, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(e) => return Err(Error::internal(&format!("mkdirat({name}) in cgroup"), e)),
    }
    open_file(&parent, name, OFlags::RDONLY | OFlags::DIRECTORY)
        .map_err(|e| Error::internal(&format!("openat({name}) in cgroup"), e))
}

fn write_at(dir: impl AsFd, name: &str, value: &str) -> std::result::Result<(), Errno> {
    let fd = open_file(dir, name, OFlags::WRONLY)?;
    rustix::io::write(&fd, value.as_bytes()).map(|_| ())
}

/// Moves every workspace process of `from` into `to`; a process that is not
/// the workspace's is left where it is (and reported).
fn move_members(container: &Container, from: impl AsFd, to: impl AsFd, out: &mut EvacuateOutcome) -> Result<()> {
    for pid in procs(&from)? {
        match is_member(container, pid)? {
            Some(true) => match write_at(&to, "cgroup.procs", &pid.to_string()) {
                Ok(()) => out.moved += 1,
                Err(Errno::SRCH) => {}
                Err(e) => out.problems.push(format!("could not move host pid {pid}: {e}")),
            },
            Some(false) => out.problems.push(format!("host pid {pid} is not the workspace's: left where it is")),
            None => {}
        }
    }
    Ok(())
}

fn enable_controllers(dir: impl AsFd, out: &mut EvacuateOutcome, at: &str) -> Result<()> {
    let avail = read_at(&dir, "cgroup.controllers")?;
    for c in avail.split_whitespace() {
        match write_at(&dir, "cgroup.subtree_control", &format!("+{c}")) {
            Ok(()) => {
                if !out.controllers.iter().any(|x| x == c) {
                    out.controllers.push(c.to_owned());
                }
            }
            Err(e) => out.problems.push(format!("could not enable controller {c} in {at}: {e}")),
        }
    }
    Ok(())
}

/// EvacuateCGroup on cgroup v2: `<C>` the container init's cgroup (its own,
/// see [`ensure_own`]), its workspace processes move to `<C>/workspace/user`,
/// and the controllers `<C>` and `<C>/workspace` have are enabled for their
/// children, so the user cgroup is a domain cgroup with every controller.
/// Without a v2 cgroup (a v1-only or hybrid node without one) nothing is done.
pub fn evacuate(container: &Container) -> Result<EvacuateOutcome> {
    let cgs = ContainerCgroups::of(container)?;
    let Some(cg) = cgs.v2()? else { return Ok(EvacuateOutcome::default()) };
    ensure_own(container, &cg)?;
    let mut out = EvacuateOutcome { unified: true, cgroup: cg.path.clone(), ..Default::default() };
    let ws = mkdir_child(&cg.dir, "workspace")?;
    let user = mkdir_child(&ws, "user")?;
    // Out of <C> first (a cgroup with processes cannot enable controllers for children).
    move_members(container, &cg.dir, &user, &mut out)?;
    move_members(container, &ws, &user, &mut out)?;
    enable_controllers(&cg.dir, &mut out, &cg.path)?;
    enable_controllers(&ws, &mut out, &format!("{}/workspace", cg.path))?;
    Ok(out)
}

/// v1 `devices.allow` lines for the devices iwsd makes in a container.
pub fn allow_devices_v1(container: &Container, rules: &[&str]) -> Result<Option<String>> {
    let cgs = ContainerCgroups::of(container)?;
    let Some(cg) = cgs.v1("devices")? else { return Ok(None) };
    ensure_own(container, &cg)?;
    for r in rules {
        write_at(&cg.dir, "devices.allow", r)
            .map_err(|e| Error::internal(&format!("write(devices.allow, {r:?}) in {}", cg.path), e))?;
    }
    Ok(Some(cg.path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_cgroup() {
        let l = parse_proc_cgroup("12:cpu,cpuacct:/a/b\n0::/x\n1:name=systemd:/\nbad\n");
        assert_eq!(l.len(), 3);
        assert_eq!(l[0], CgroupLine { id: 12, controllers: vec!["cpu".into(), "cpuacct".into()], path: "/a/b".into() });
        assert_eq!(l[1], CgroupLine { id: 0, controllers: vec![], path: "/x".into() });
        // a path with ':' stays whole
        assert_eq!(parse_proc_cgroup("0::/a:b")[0].path, "/a:b");
    }

    #[test]
    fn refuses_escaping_paths() {
        assert_eq!(check_cgroup_path("/a/b").unwrap(), vec!["a", "b"]);
        for bad in ["/", "", "a", "/../../x", "/a/../b", "/a//b", "/a/./b", "/a/b (deleted)", "/a/"] {
            assert_eq!(check_cgroup_path(bad).unwrap_err().kind(), ErrorKind::FailedPrecondition, "{bad}");
        }
    }

    #[test]
    fn parses_mountinfo() {
        let t = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
                 32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                 33 31 0:30 /sub /mnt/m rw - cgroup cgroup rw,memory\n\
                 34 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                 35 31 0:31 / /sys/fs/cgroup/un\\040ified rw - cgroup2 cgroup2 rw,nsdelegate\n\
                 36 31 0:31 / /other rw - cgroup2 cgroup2 rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].controllers, Some(vec!["cpu".into(), "cpuacct".into()]));
        assert_eq!(m[1].mount_point, "/sys/fs/cgroup/memory"); // not the sub-mount
        assert_eq!(m[2], CgroupMount { mount_point: "/sys/fs/cgroup/un ified".into(), controllers: None });
    }

    #[test]
    fn parses_figures() {
        assert_eq!(parse_cpu_max("max 100000\n").unwrap(), None);
        assert_eq!(parse_cpu_max("150000 100000\n").unwrap(), Some((150000, 100000)));
        let s = parse_flat("usage_usec 123\nuser_usec 5\n");
        assert_eq!(s["usage_usec"], 123);
    }
}

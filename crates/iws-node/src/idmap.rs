//! Id maps: ranges, policies and map lines, their parsers and defaults (the
//! core's, for the TypeScript config), and WriteIDMapping.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::authz::{caller, JsPeer};
use crate::container::{handle, Container};
use crate::error::settle;
use crate::kernel::JsPidStrategy;
use crate::task::{job, Job};

/// Host ids `[start, start + size)`.
#[napi(object, js_name = "IdRange")]
pub struct JsIdRange {
    pub start: u32,
    pub size: u32,
}

impl From<&JsIdRange> for core::idmap::IdRange {
    fn from(r: &JsIdRange) -> Self {
        core::idmap::IdRange::new(r.start, r.size)
    }
}

impl From<core::idmap::IdRange> for JsIdRange {
    fn from(r: core::idmap::IdRange) -> Self {
        JsIdRange { start: r.start, size: r.size }
    }
}

/// Which host ids a workspace may map.
#[napi(object, js_name = "IdPolicy")]
pub struct JsIdPolicy {
    /// Host ids container id 0 may map to.
    pub root_range: JsIdRange,
    /// Host ids every other container id may map to.
    pub user_ranges: Vec<JsIdRange>,
    /// Whether host id 0 may be mapped at all (default: the core's, false).
    pub allow_host_root: Option<bool>,
    /// Whether rings keep setgroups(2) (default: the core's, false: `deny`
    /// is written before a gid map).
    pub allow_setgroups: Option<bool>,
}

impl From<&JsIdPolicy> for core::idmap::IdPolicy {
    fn from(p: &JsIdPolicy) -> Self {
        let d = core::idmap::IdPolicy::default();
        core::idmap::IdPolicy {
            root_range: (&p.root_range).into(),
            user_ranges: p.user_ranges.iter().map(Into::into).collect(),
            allow_host_root: p.allow_host_root.unwrap_or(d.allow_host_root),
            allow_setgroups: p.allow_setgroups.unwrap_or(d.allow_setgroups),
        }
    }
}

/// One map line: `size` ids from `containerId` map to `size` from `hostId`.
#[napi(object, js_name = "IdMapping")]
pub struct JsIdMapping {
    pub container_id: u32,
    pub host_id: u32,
    pub size: u32,
}

impl From<&JsIdMapping> for core::idmap::IdMapping {
    fn from(m: &JsIdMapping) -> Self {
        core::idmap::IdMapping { container_id: m.container_id, host_id: m.host_id, size: m.size }
    }
}

impl From<core::idmap::IdMapping> for JsIdMapping {
    fn from(m: core::idmap::IdMapping) -> Self {
        JsIdMapping { container_id: m.container_id, host_id: m.host_id, size: m.size }
    }
}

/// Map lines as the core's.
pub fn mappings(v: &[JsIdMapping]) -> Vec<core::idmap::IdMapping> {
    v.iter().map(Into::into).collect()
}

/// The core's default id policy (config `idPolicy`'s defaults) and bounds.
#[napi(object)]
pub struct IdPolicyDefaults {
    pub root_range: JsIdRange,
    pub user_ranges: Vec<JsIdRange>,
    pub allow_host_root: bool,
    pub allow_setgroups: bool,
    /// At most this many user ranges.
    pub max_user_ranges: u32,
}

/// The core's default id policy: root range 33333:1, user range 100000:70000,
/// neither host root nor setgroups allowed.
#[napi]
pub fn id_policy_defaults() -> IdPolicyDefaults {
    let d = core::idmap::IdPolicy::default();
    IdPolicyDefaults {
        root_range: d.root_range.into(),
        user_ranges: d.user_ranges.into_iter().map(Into::into).collect(),
        allow_host_root: d.allow_host_root,
        allow_setgroups: d.allow_setgroups,
        max_user_ranges: core::idmap::MAX_USER_RANGES as u32,
    }
}

/// Parses `START:SIZE` (the core's parser; INVALID_ARGUMENT saying why).
#[napi(ts_return_type = "IdRange")]
pub fn parse_id_range(env: Env, text: String) -> Result<JsIdRange> {
    settle(&env, core::idmap::IdRange::parse(&text), JsIdRange::from)
}

/// Parses `CONTAINER:HOST:SIZE` (the core's parser; INVALID_ARGUMENT saying why).
#[napi(ts_return_type = "IdMapping")]
pub fn parse_id_mapping(env: Env, text: String) -> Result<JsIdMapping> {
    settle(&env, core::idmap::IdMapping::parse(&text), JsIdMapping::from)
}

/// Throws (code INVALID_ARGUMENT) when the policy is unsound. Pure; no syscalls.
#[napi(ts_args_type = "p: IdPolicy")]
pub fn validate_id_policy(env: Env, p: JsIdPolicy) -> Result<()> {
    settle(&env, core::idmap::IdPolicy::from(&p).validate(), |_| ())
}

#[napi(object)]
pub struct WriteIdMappingOptions {
    /// The target process, as a PID in the container's view.
    pub pid: i64,
    /// Write gid_map instead of uid_map.
    pub gid: bool,
    pub mappings: Vec<JsIdMapping>,
    pub policy: JsIdPolicy,
    pub pid_strategy: JsPidStrategy,
}

#[napi(object)]
pub struct WriteIdMappingResult {
    pub message: String,
    /// Host PID the map was written for (for logs; never send to a workspace).
    pub host_pid: i32,
}

impl From<core::idmap_write::WriteIdMappingOutcome> for WriteIdMappingResult {
    fn from(o: core::idmap_write::WriteIdMappingOutcome) -> Self {
        WriteIdMappingResult { message: o.message, host_pid: o.host_pid }
    }
}

/// Validates `options.mappings` against `options.policy`, authorizes
/// `caller` (the connection's peer; null: the embedding program's own
/// authority, for `iwsd/native`) and writes them as the uid (or gid) map
/// of process `options.pid` (container view) in one write.
#[napi(ts_return_type = "Promise<WriteIdMappingResult>")]
pub fn write_id_mapping(
    container: &Container,
    caller: Option<JsPeer>,
    options: WriteIdMappingOptions,
) -> Result<AsyncTask<Job<core::idmap_write::WriteIdMappingOutcome, WriteIdMappingResult>>> {
    let c = handle(container)?;
    let who = self::caller(caller);
    let kind = if options.gid { core::idmap_write::IdKind::Gid } else { core::idmap_write::IdKind::Uid };
    let lines = mappings(&options.mappings);
    let policy = core::idmap::IdPolicy::from(&options.policy);
    let pid_strategy = options.pid_strategy;
    Ok(job(
        move || {
            let pids = pid_strategy.resolve()?;
            core::idmap_write::write_id_mapping(&c, pids, who.as_ref(), options.pid, kind, &lines, &policy)
        },
        WriteIdMappingResult::from,
    ))
}

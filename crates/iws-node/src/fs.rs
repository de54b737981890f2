//! Workspace directories: removing and emptying trees, preparing and sealing
//! a workspace directory, installing its socket.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::task::{job, Job};

#[napi(object)]
pub struct RemoveTreeResult {
    /// The tree is gone (or was never there).
    pub removed: bool,
    /// Entries looked at.
    pub entries: f64,
    /// What was left and why, for the log (e.g. a mount point inside).
    pub problems: Vec<String>,
}

impl From<core::fsops::RemoveOutcome> for RemoveTreeResult {
    fn from(o: core::fsops::RemoveOutcome) -> Self {
        RemoveTreeResult { removed: o.removed, entries: o.entries as f64, problems: o.problems }
    }
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

impl From<core::fsops::SealOutcome> for SealResult {
    fn from(o: core::fsops::SealOutcome) -> Self {
        SealResult { immutable: o.immutable, pruned: o.pruned, problems: o.problems }
    }
}

type RemoveJob = Job<core::fsops::RemoveOutcome, RemoveTreeResult>;
type SealJob = Job<core::fsops::SealOutcome, SealResult>;

/// Removes `parent/name` and everything below it by file descriptor (no
/// symlink followed, no mount crossed, bounded). `parent` must be a
/// daemon-owned directory.
#[napi(ts_return_type = "Promise<RemoveTreeResult>")]
pub fn remove_tree(parent: String, name: String) -> AsyncTask<RemoveJob> {
    job(move || core::fsops::remove_tree(&parent, &name), RemoveTreeResult::from)
}

/// Empties the directory `parent/name` as `removeTree` removes it, but keeps
/// the directory (flags cleared): a bind-mount source the runtime made.
#[napi(ts_return_type = "Promise<RemoveTreeResult>")]
pub fn empty_tree(parent: String, name: String) -> AsyncTask<RemoveJob> {
    job(move || core::fsops::empty_tree(&parent, &name), RemoveTreeResult::from)
}

/// Creates (if missing) and prepares workspace directory `parent/name`: the
/// mark directory `mark` made, foreign entries pruned, immutable where the
/// filesystem supports it.
#[napi(ts_return_type = "Promise<SealResult>")]
pub fn prepare_workspace_dir(parent: String, name: String, mark: Option<String>) -> AsyncTask<SealJob> {
    job(move || core::fsops::prepare_workspace_dir(&parent, &name, mark.as_deref()), SealResult::from)
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
) -> AsyncTask<SealJob> {
    job(move || core::fsops::install_socket(&src_dir, &src_name, &parent, &name, mark.as_deref()), SealResult::from)
}

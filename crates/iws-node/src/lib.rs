//! The napi-rs binding: converts types, schedules each operation on libuv's
//! pool as an `AsyncTask` ([`task::Job`]), and turns core errors into JS
//! errors whose `code` is the core's stable error code ([`error`]). No logic
//! lives here: every rule, default and parser is the core's.
//!
//! One module per concern, mirroring the core: each mirror type (named for
//! the binding, `Js…`, exported to JS under its public name) has its
//! `From`/`TryFrom` conversion beside it.
//!
//! Operations that enter namespaces must run on a thread the core creates and
//! throws away, never on the pool thread `compute` runs on (the core's
//! `nsthread` does that; see docs/architecture.md).

#![deny(clippy::all)]

// Modules whose types others' fields use come first, in a group of their
// own (rustfmt sorts within a group): napi's typegen learns a `js_name`
// (e.g. `JsPidStrategy` → `PidStrategy`) in declaration order, and a field of
// a type it has not learnt yet keeps its Rust name in index.d.cts (the
// package test compiles a consumer against it).
mod authz;
mod kernel;

mod cgroup;
mod container;
mod error;
mod fs;
mod idmap;
mod mirror;
mod mount;
mod net;
mod shift;
mod supervise;
mod task;

// After shift, whose `ShiftMethodChoice` its options use (see above).
mod lifecycle;

//! Core errors as JS errors: `code` (stable, e.g. "INVALID_ARGUMENT"),
//! `message` (for the caller) and, when present, `detail` (operator-only),
//! `reason` (the core's structured reason, e.g. "HostMountNamespace") and
//! `errno`. src/errors.ts (`toIwsError`) reads them.

use iws_core as core;
use napi::bindgen_prelude::*;
use napi::JsValue;

/// The JS error for a core error.
pub fn js_error(env: &Env, e: &core::Error) -> Error {
    build_error(env, e, false)
}

/// The JS error for a lifecycle call's failure: one refused before any work
/// carries `refused: true` (the daemon then gives the call's one shot back).
pub fn js_lifecycle_error(env: &Env, e: &core::lifecycle::LifecycleError) -> Error {
    build_error(env, e.error(), matches!(e, core::lifecycle::LifecycleError::Refused(_)))
}

fn build_error(env: &Env, e: &core::Error, refused: bool) -> Error {
    let build = || -> Result<Error> {
        let mut obj = env.create_error(Error::from_reason(e.message()))?;
        obj.set_named_property("code", e.code())?;
        if refused {
            obj.set_named_property("refused", true)?;
        }
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
    // Building the error object failed (out of memory, say): that error,
    // rather than none.
    build().unwrap_or_else(|err| err)
}

/// A core result as a JS result, the value converted by `f`.
pub fn settle<T, U>(env: &Env, r: core::Result<T>, f: impl FnOnce(T) -> U) -> Result<U> {
    r.map(f).map_err(|e| js_error(env, &e))
}

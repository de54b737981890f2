//! The one task every asynchronous operation runs as: `compute` (on a libuv
//! pool thread) runs the operation's closure, which calls the core and
//! returns a `core::Result`; `resolve` (on the JS thread) converts the value
//! to its mirror type or the error with [`crate::error::settle`].

use iws_core as core;
use napi::bindgen_prelude::*;
use napi::Task;

type Work<T> = Box<dyn FnOnce() -> core::Result<T> + Send>;

/// An operation `work` whose value becomes `J` through `convert`.
pub struct Job<T, J> {
    work: Option<Work<T>>,
    convert: fn(T) -> J,
}

impl<T: Send + 'static, J: ToNapiValue + TypeName> Task for Job<T, J> {
    type Output = core::Result<T>;
    type JsValue = J;

    fn compute(&mut self) -> Result<Self::Output> {
        // napi-rs calls compute once per task.
        let work = self.work.take().ok_or_else(|| Error::new(Status::GenericFailure, "native task ran twice"))?;
        Ok(work())
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        crate::error::settle(&env, out, self.convert)
    }
}

/// Schedules `work` on the pool; its value is converted with `convert`.
pub fn job<T, J>(work: impl FnOnce() -> core::Result<T> + Send + 'static, convert: fn(T) -> J) -> AsyncTask<Job<T, J>>
where
    T: Send + 'static,
    J: ToNapiValue + TypeName,
{
    AsyncTask::new(Job { work: Some(Box::new(work)), convert })
}

type Attempt<T> = Box<dyn FnOnce() -> std::result::Result<T, core::lifecycle::LifecycleError> + Send>;

/// A lifecycle operation (PrepareForUserNS, Teardown): as [`Job`], except
/// that a rejection refused before any work says so (`refused: true`; see
/// [`crate::error::js_lifecycle_error`]).
pub struct LifecycleJob<T, J> {
    work: Option<Attempt<T>>,
    convert: fn(T) -> J,
}

impl<T: Send + 'static, J: ToNapiValue + TypeName> Task for LifecycleJob<T, J> {
    type Output = std::result::Result<T, core::lifecycle::LifecycleError>;
    type JsValue = J;

    fn compute(&mut self) -> Result<Self::Output> {
        let work = self.work.take().ok_or_else(|| Error::new(Status::GenericFailure, "native task ran twice"))?;
        Ok(work())
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Self::JsValue> {
        out.map(self.convert).map_err(|e| crate::error::js_lifecycle_error(&env, &e))
    }
}

/// Schedules lifecycle `work` on the pool; its value is converted with `convert`.
pub fn lifecycle_job<T, J>(
    work: impl FnOnce() -> std::result::Result<T, core::lifecycle::LifecycleError> + Send + 'static,
    convert: fn(T) -> J,
) -> AsyncTask<LifecycleJob<T, J>>
where
    T: Send + 'static,
    J: ToNapiValue + TypeName,
{
    AsyncTask::new(LifecycleJob { work: Some(Box::new(work)), convert })
}

/// The conversion of an operation whose value already is its JS value.
pub fn same<T>(t: T) -> T {
    t
}

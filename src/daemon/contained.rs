//! Calls into user code, contained: a panic in a daemon's `process`,
//! `load`, `requirements` or `Drop`, or in a factory, becomes a value and
//! never unwinds through the runtime, wherever it runs (the writer thread
//! included).

use std::any::Any;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::MeshDaemon;

/// Runs `f`; a panic becomes `Err` with its message.
pub(crate) fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        let message = panic_message(payload.as_ref());
        drop_payload(payload);
        message
    })
}

/// Text of a caught panic payload.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Drops a panic payload, whose own `Drop` may panic too: that second
/// payload is leaked rather than dropped, so the regress ends here.
fn drop_payload(payload: Box<dyn Any + Send>) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// A daemon whose `Drop` is contained: wherever its last owner lets go of
/// it (the writer retiring its replica, or a delivery that held it), a
/// panicking `Drop` is logged and goes no further.
pub(crate) struct Daemon(Box<dyn MeshDaemon>);

impl Daemon {
    pub(crate) fn new(daemon: Box<dyn MeshDaemon>) -> Self {
        Daemon(daemon)
    }

    pub(crate) fn get(&mut self) -> &mut dyn MeshDaemon {
        &mut *self.0
    }
}

/// What stands in a [`Daemon`] while its daemon is being dropped: a unit
/// type, so putting it there allocates nothing.
struct Dropped;

impl MeshDaemon for Dropped {
    fn name(&self) -> &str {
        "dropped"
    }

    fn process(&mut self, _: &super::Event) -> Result<Vec<bytes::Bytes>, crate::DaemonError> {
        Ok(Vec::new())
    }
}

impl fmt::Debug for Daemon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Daemon").finish_non_exhaustive()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let daemon = std::mem::replace(&mut self.0, Box::new(Dropped));
        if let Err(panic) = contain(move || drop(daemon)) {
            tracing::warn!(%panic, "a daemon panicked in Drop; contained");
        }
    }
}

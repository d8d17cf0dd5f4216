//! Modules: pieces with a lifecycle (a database pool, a metrics exporter,
//! a child process) started and stopped with the app.

use std::future::Future;
use std::pin::Pin;

use crate::handle::AppHandle;

/// A boxed lifecycle future.
pub type ModuleFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ModuleError>> + Send + 'a>>;

/// A module's failure; an `init` failure stops the app from starting.
pub type ModuleError = Box<dyn std::error::Error + Send + Sync>;

/// Something with a lifecycle. `init` and `after_init` run in registration
/// order when the app starts; `before_shutdown` and `shutdown` run in
/// reverse order when it stops. Every method has a default that does
/// nothing.
pub trait Module: Send + Sync + 'static {
    /// A name for logs.
    fn name(&self) -> &str;

    /// Prepares the module; an error aborts the start.
    fn init<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Runs once every module is initialized, before clients are accepted.
    fn after_init<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Runs when shutdown begins, after the acceptors stop.
    fn before_shutdown<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async { Ok(()) })
    }

    /// Runs last, after every session closed.
    fn shutdown<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async { Ok(()) })
    }
}

//! Pipelines: hooks that run before and after every handler.
//!
//! A before hook sees the request and can reject it (its error is sent
//! instead of calling the handler) or replace it; an after hook sees the
//! result and can change the response or the error.

use std::sync::Arc;

use crate::PitayaError;
use crate::handler::{HandlerResult, Request};

type BeforeHook = Arc<dyn Fn(Request) -> Result<Request, PitayaError> + Send + Sync>;
type AfterHook = Arc<dyn Fn(HandlerResult) -> HandlerResult + Send + Sync>;

/// Before- and after-handler hooks, run in the order they were added.
#[derive(Clone, Default)]
pub struct Pipelines {
    before: Vec<BeforeHook>,
    after: Vec<AfterHook>,
}

impl std::fmt::Debug for Pipelines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipelines")
            .field("before", &self.before.len())
            .field("after", &self.after.len())
            .finish()
    }
}

impl Pipelines {
    /// Adds a hook run before the handler.
    pub fn push_before(
        &mut self,
        hook: impl Fn(Request) -> Result<Request, PitayaError> + Send + Sync + 'static,
    ) {
        self.before.push(Arc::new(hook));
    }

    /// Adds a hook run after the handler.
    pub fn push_after(
        &mut self,
        hook: impl Fn(HandlerResult) -> HandlerResult + Send + Sync + 'static,
    ) {
        self.after.push(Arc::new(hook));
    }

    /// Whether there are no hooks.
    pub fn is_empty(&self) -> bool {
        self.before.is_empty() && self.after.is_empty()
    }

    /// Runs the before hooks; the first error stops them.
    pub fn before(&self, mut request: Request) -> Result<Request, PitayaError> {
        for hook in &self.before {
            request = hook(request)?;
        }
        Ok(request)
    }

    /// Runs the after hooks.
    pub fn after(&self, mut result: HandlerResult) -> HandlerResult {
        for hook in &self.after {
            result = hook(result);
        }
        result
    }
}

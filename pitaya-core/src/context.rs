//! Per-request context: the route and propagated metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

/// What a handler knows about the call besides its payload: the route and
/// the propagated metadata (Pitaya's "propagate context").
#[derive(Clone, Debug, Default)]
pub struct Context {
    inner: Arc<ContextInner>,
}

#[derive(Debug, Default)]
struct ContextInner {
    route: String,
    metadata: BTreeMap<String, serde_json::Value>,
}

impl Context {
    /// A context for `route` without metadata.
    pub fn new(route: impl Into<String>) -> Self {
        Self::with_metadata(route, BTreeMap::new())
    }

    /// A context for `route` with metadata.
    pub fn with_metadata(
        route: impl Into<String>,
        metadata: BTreeMap<String, serde_json::Value>,
    ) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                route: route.into(),
                metadata,
            }),
        }
    }

    /// The full route of the call (`serverType.component.method` or
    /// `component.method`).
    pub fn route(&self) -> &str {
        &self.inner.route
    }

    /// A propagated metadata value.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.inner.metadata.get(key)
    }

    /// A copy of this context with `key` set to `value`, propagated to the
    /// remote calls made with it (Go's `pitaya.AddToPropagateCtx`).
    ///
    /// ```
    /// use pitaya_core::Context;
    ///
    /// let ctx = Context::new("room.room.join").with_value("match", "m-7");
    /// assert_eq!(ctx.get("match").and_then(|v| v.as_str()), Some("m-7"));
    /// assert_eq!(ctx.route(), "room.room.join");
    /// ```
    #[must_use]
    pub fn with_value(&self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        let mut metadata = self.inner.metadata.clone();
        metadata.insert(key.into(), value.into());
        Self::with_metadata(self.inner.route.clone(), metadata)
    }

    /// All propagated metadata.
    pub fn metadata(&self) -> &BTreeMap<String, serde_json::Value> {
        &self.inner.metadata
    }
}

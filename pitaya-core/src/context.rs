//! Per-request context: the route and propagated metadata.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// Propagated key: the id of the client request, a NATS nuid made by the
/// frontend that received the message (Go's `constants.RequestIDKey`). A
/// server receiving a call without one makes one, as Go does.
pub const REQUEST_ID: &str = "request.id";

/// Propagated key: the route of the call, as the client sent it on the
/// frontend, and as the receiving server was called (Go's
/// `constants.RouteKey`).
pub const REQUEST_ROUTE: &str = "req-route";

/// Propagated key: when the frontend received the client message, in unix
/// nanoseconds (a JSON integer; Go's `constants.StartTimeKey`).
pub const REQUEST_START_TIME: &str = "req-start-time";

/// What a handler knows about the call besides its payload: the route and
/// the propagated metadata (Pitaya's "propagate context").
#[derive(Clone, Debug, Default)]
pub struct Context {
    inner: Arc<ContextInner>,
}

#[derive(Debug, Default)]
struct ContextInner {
    route: String,
    /// The metadata, or for a client message just received, nothing until
    /// someone reads it (see `stamp`).
    metadata: OnceLock<BTreeMap<String, serde_json::Value>>,
    /// A client message's start time: its `request.id`, `req-route` and
    /// `req-start-time` are made the first time the metadata is read (most
    /// requests of a standalone server never read them).
    stamp: Option<i64>,
}

impl ContextInner {
    fn metadata(&self) -> &BTreeMap<String, serde_json::Value> {
        self.metadata.get_or_init(|| match self.stamp {
            Some(start_nanos) => BTreeMap::from([
                (REQUEST_START_TIME.to_owned(), start_nanos.into()),
                (REQUEST_ROUTE.to_owned(), self.route.clone().into()),
                (REQUEST_ID.to_owned(), crate::nuid::next().into()),
            ]),
            None => BTreeMap::new(),
        })
    }
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
                metadata: OnceLock::from(metadata),
                stamp: None,
            }),
        }
    }

    /// The full route of the call (`serverType.component.method` or
    /// `component.method`).
    pub fn route(&self) -> &str {
        &self.inner.route
    }

    /// The context of a client message just received by a frontend: the
    /// route, the request id and the start time, as Go's handler service
    /// sets them.
    pub(crate) fn client(route: String, start_nanos: i64) -> Self {
        Self {
            inner: Arc::new(ContextInner {
                route,
                metadata: OnceLock::new(),
                stamp: Some(start_nanos),
            }),
        }
    }

    /// The server type the route names (`room` in `room.room.join`), `None`
    /// for a `component.method` route. A hook on a frontend compares it with
    /// its own server type to tell a message it forwards from one it
    /// handles.
    ///
    /// ```
    /// use pitaya_core::Context;
    ///
    /// assert_eq!(Context::new("room.room.join").server_type(), Some("room"));
    /// assert_eq!(Context::new("room.join").server_type(), None);
    /// ```
    pub fn server_type(&self) -> Option<&str> {
        let route = self.route();
        let (server_type, rest) = route.split_once('.')?;
        rest.contains('.').then_some(server_type)
    }

    /// The id of the client request this call serves ([`REQUEST_ID`]), the
    /// same on the frontend and on the servers it calls.
    pub fn request_id(&self) -> Option<&str> {
        self.get(REQUEST_ID).and_then(serde_json::Value::as_str)
    }

    /// When the frontend received the client message, in unix nanoseconds
    /// ([`REQUEST_START_TIME`]).
    pub fn start_time_nanos(&self) -> Option<i64> {
        self.get(REQUEST_START_TIME)
            .and_then(serde_json::Value::as_i64)
    }

    /// A propagated metadata value.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.inner.metadata().get(key)
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
        let mut metadata = self.inner.metadata().clone();
        metadata.insert(key.into(), value.into());
        Self::with_metadata(self.inner.route.clone(), metadata)
    }

    /// All propagated metadata.
    pub fn metadata(&self) -> &BTreeMap<String, serde_json::Value> {
        self.inner.metadata()
    }
}

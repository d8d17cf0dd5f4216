//! Route table and dispatch: from a client route to a handler's reply.
//!
//! The table is built once, when the app is built, from the static route
//! lists `#[component]` generates; dispatching a message is one hash lookup.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;

use crate::PitayaError;
use crate::error::codes;
use crate::handler::{Component, HandlerFuture, HandlerKind, HandlerMeta, HandlerResult, Request};
use crate::pipeline::Pipelines;

/// A registered handler or remote, with its component bound in.
#[derive(Clone)]
pub struct Route {
    /// `component.method`.
    pub name: Arc<str>,
    /// Request, notify or remote.
    pub kind: HandlerKind,
    /// Argument and result type names.
    pub meta: HandlerMeta,
    call: Arc<dyn Fn(Request) -> HandlerFuture + Send + Sync>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Why a component could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("route {0} is registered twice")]
pub struct DuplicateRoute(pub String);

/// Every handler and remote of a server, by `component.method`.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    handlers: HashMap<Box<str>, Route>,
    remotes: HashMap<Box<str>, Route>,
}

impl RouteTable {
    /// Adds every route of `component`.
    pub fn register<C: Component>(&mut self, component: C) -> Result<(), DuplicateRoute> {
        self.register_arc(&Arc::new(component))
    }

    /// Adds every route of a shared `component`.
    pub fn register_arc<C: Component>(&mut self, component: &Arc<C>) -> Result<(), DuplicateRoute> {
        for entry in C::ROUTES {
            let name = format!("{}.{}", C::NAME, entry.method);
            let table = match entry.kind {
                HandlerKind::Remote => &mut self.remotes,
                HandlerKind::Request | HandlerKind::Notify => &mut self.handlers,
            };
            if table.contains_key(name.as_str()) {
                return Err(DuplicateRoute(name));
            }
            let component = component.clone();
            let call = entry.call;
            let route = Route {
                name: Arc::from(name.as_str()),
                kind: entry.kind,
                meta: entry.meta,
                call: Arc::new(move |request| call(component.clone(), request)),
            };
            table.insert(name.into_boxed_str(), route);
        }
        Ok(())
    }

    /// The client handler for `component.method`.
    pub fn handler(&self, name: &str) -> Option<&Route> {
        self.handlers.get(name)
    }

    /// The remote for `component.method`.
    pub fn remote(&self, name: &str) -> Option<&Route> {
        self.remotes.get(name)
    }

    /// All client handlers.
    pub fn handlers(&self) -> impl Iterator<Item = &Route> {
        self.handlers.values()
    }

    /// All remotes.
    pub fn remotes(&self) -> impl Iterator<Item = &Route> {
        self.remotes.values()
    }
}

/// A client route split into its parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteParts<'a> {
    /// The server type, if the route names one.
    pub server_type: Option<&'a str>,
    /// `component.method`.
    pub local: &'a str,
}

/// Splits `serverType.component.method` or `component.method`; any other
/// shape or an empty part is a `PIT-400`, as in Pitaya.
pub fn parse_route(route: &str) -> Result<RouteParts<'_>, PitayaError> {
    let mut parts = route.split('.');
    let (a, b, c, rest) = (parts.next(), parts.next(), parts.next(), parts.next());
    let invalid = || PitayaError::new(codes::BAD_REQUEST, format!("invalid route {route:?}"));
    if rest.is_some() {
        return Err(invalid());
    }
    match (a, b, c) {
        (Some(a), Some(b), None) if !a.trim().is_empty() && !b.trim().is_empty() => {
            Ok(RouteParts {
                server_type: None,
                local: route,
            })
        }
        (Some(t), Some(a), Some(b))
            if !t.trim().is_empty() && !a.trim().is_empty() && !b.trim().is_empty() =>
        {
            Ok(RouteParts {
                server_type: Some(t),
                local: &route[t.len() + 1..],
            })
        }
        _ => Err(invalid()),
    }
}

impl Route {
    /// Runs the pipelines and the handler; a panic in the handler becomes
    /// a `PIT-500` for this call only.
    pub async fn call(&self, pipelines: &Pipelines, request: Request) -> HandlerResult {
        // Hooks are user code too: a panic anywhere in the pipeline fails
        // this call only.
        let run = async {
            let request = match pipelines.before(request) {
                Ok(request) => request,
                Err(err) => return pipelines.after(Err(err)),
            };
            let result = (self.call)(request).await;
            pipelines.after(result)
        };
        match AssertUnwindSafe(run).catch_unwind().await {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                tracing::error!(route = %self.name, panic = %what, "handler or pipeline panicked");
                Err(PitayaError::new(
                    codes::INTERNAL,
                    "internal error: the handler panicked",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_like_pitaya() {
        assert_eq!(
            parse_route("room.join").unwrap(),
            RouteParts {
                server_type: None,
                local: "room.join"
            }
        );
        assert_eq!(
            parse_route("chat.room.join").unwrap(),
            RouteParts {
                server_type: Some("chat"),
                local: "room.join"
            }
        );
        for bad in [
            "", "join", "a..b", ".a.b", "a.b.", "a.b.c.d", " .a", "a. .b",
        ] {
            let err = parse_route(bad).unwrap_err();
            assert_eq!(err.code, codes::BAD_REQUEST, "{bad:?}");
        }
    }
}

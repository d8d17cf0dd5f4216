//! Route table and dispatch: from a client route to a handler's reply.
//!
//! The table is built once, when the app is built, from the static route
//! lists `#[component]` generates; dispatching a message is one hash lookup.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::codes;
use crate::handler::{
    Component, HandlerFuture, HandlerKind, HandlerMeta, HandlerResult, PayloadFormat, Request,
};
use crate::pipeline::Pipelines;
use crate::{PitayaError, SerializerKind};

/// A registered handler or remote, with its component bound in.
#[derive(Clone)]
pub struct Route {
    /// `component.method`.
    pub name: Arc<str>,
    /// Request, notify or remote.
    pub kind: HandlerKind,
    /// Argument and result type names.
    pub meta: HandlerMeta,
    /// What the payload and the reply are, from the component's
    /// [`Component::PAYLOAD`]; always [`PayloadFormat::Any`] for remotes,
    /// which carry protobuf whatever the app's serializer.
    pub payload: PayloadFormat,
    call: Arc<dyn Fn(Request) -> HandlerFuture + Send + Sync>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("meta", &self.meta)
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

/// Why a component could not be registered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("route {0} is registered twice")]
pub struct DuplicateRoute(pub String);

/// A client handler that cannot work with the app's serializer: a protobuf
/// component (`#[component(serializer = "protobuf")]`) on a JSON or
/// MessagePack app, or a serde component on a protobuf app.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "component {component:?} (route {route}) takes {payload} payloads, which need {expects}, but the app's serializer is {serializer}: {hint}",
    expects = payload.expects(),
    hint = self.hint()
)]
pub struct SerializerMismatch {
    /// The component's name.
    pub component: String,
    /// The first mismatched route, `component.method`.
    pub route: String,
    /// What the component's handlers take and return.
    pub payload: PayloadFormat,
    /// The app's serializer.
    pub serializer: SerializerKind,
}

impl SerializerMismatch {
    fn hint(&self) -> &'static str {
        match self.payload {
            PayloadFormat::Protobuf => {
                "serve it with `.serializer(SerializerKind::Protobuf)`, or drop `serializer = \"protobuf\"` and take serde types"
            }
            _ => {
                "declare it `#[component(serializer = \"protobuf\")]` with prost messages, or serve it with a json or msgpack serializer"
            }
        }
    }
}

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
            let payload = match entry.kind {
                HandlerKind::Remote => PayloadFormat::Any,
                HandlerKind::Request | HandlerKind::Notify => C::PAYLOAD,
            };
            let route = Route {
                name: Arc::from(name.as_str()),
                kind: entry.kind,
                meta: entry.meta,
                payload,
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

    /// Checks that every client handler works with `serializer`: a
    /// [`PayloadFormat::Protobuf`] component needs
    /// [`SerializerKind::Protobuf`], a [`PayloadFormat::Serde`] one JSON or
    /// MessagePack, and [`PayloadFormat::Any`] fits all. Remotes always fit
    /// (they carry protobuf whatever the serializer).
    ///
    /// # Errors
    /// The mismatched route first in name order, naming its component.
    pub fn check_serializer(&self, serializer: SerializerKind) -> Result<(), SerializerMismatch> {
        let mismatch = self
            .handlers
            .values()
            .filter(|route| !route.payload.fits(serializer))
            .min_by(|a, b| a.name.cmp(&b.name));
        match mismatch {
            None => Ok(()),
            Some(route) => Err(SerializerMismatch {
                component: route
                    .name
                    .split_once('.')
                    .map_or(&*route.name, |(component, _)| component)
                    .to_owned(),
                route: route.name.to_string(),
                payload: route.payload,
                serializer,
            }),
        }
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
    /// Runs `pipelines` around the handler: the before hooks, the handler
    /// on the request they let through, the after hooks on its result (see
    /// [`Pipelines::run`]). For a remote, a before-hook rejection is a
    /// `PIT-500` with the hook's message, as Go's remote service answers.
    /// A panic in the handler or a hook becomes a `PIT-500` for this call
    /// only.
    pub async fn call(&self, pipelines: &Pipelines, request: Request) -> HandlerResult {
        // Without hooks (the common case) the handler's future is all
        // there is: the pipeline's states are boxed on the other path only,
        // so this future stays small (one allocation per request, from the
        // allocator's fast path).
        if pipelines.is_empty() {
            return crate::pipeline::catch_panics(&self.name, (self.call)(request)).await;
        }
        let call = |request| (self.call)(request);
        // Hooks are user code too: a panic anywhere in the pipeline fails
        // this call only.
        let run: std::pin::Pin<Box<dyn Future<Output = HandlerResult> + Send + '_>> = match self
            .kind
        {
            HandlerKind::Remote => {
                Box::pin(pipelines.run_with(request, crate::pipeline::remote_rejection, call))
            }
            HandlerKind::Request | HandlerKind::Notify => Box::pin(pipelines.run(request, call)),
        };
        crate::pipeline::catch_panics(&self.name, run).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::RouteEntry;

    fn no_call<C>(_: Arc<C>, _: Request) -> HandlerFuture {
        Box::pin(async { Ok(None) })
    }

    const META: HandlerMeta = HandlerMeta {
        input: None,
        output: None,
    };

    /// A hand-written component: `PAYLOAD` keeps its default.
    struct Lobby;
    impl Component for Lobby {
        const NAME: &'static str = "lobby";
        const ROUTES: &'static [RouteEntry<Self>] = &[RouteEntry {
            method: "join",
            kind: HandlerKind::Request,
            call: no_call::<Self>,
            meta: META,
        }];
    }

    struct Proto;
    impl Component for Proto {
        const NAME: &'static str = "proto";
        const ROUTES: &'static [RouteEntry<Self>] = &[
            RouteEntry {
                method: "b",
                kind: HandlerKind::Request,
                call: no_call::<Self>,
                meta: META,
            },
            RouteEntry {
                method: "a",
                kind: HandlerKind::Notify,
                call: no_call::<Self>,
                meta: META,
            },
        ];
        const PAYLOAD: PayloadFormat = PayloadFormat::Protobuf;
    }

    struct Raw;
    impl Component for Raw {
        const NAME: &'static str = "raw";
        const ROUTES: &'static [RouteEntry<Self>] = &[RouteEntry {
            method: "echo",
            kind: HandlerKind::Request,
            call: no_call::<Self>,
            meta: META,
        }];
        const PAYLOAD: PayloadFormat = PayloadFormat::Any;
    }

    /// Only remotes, declared serde: remotes are protobuf anyway.
    struct Remotes;
    impl Component for Remotes {
        const NAME: &'static str = "remotes";
        const ROUTES: &'static [RouteEntry<Self>] = &[RouteEntry {
            method: "count",
            kind: HandlerKind::Remote,
            call: no_call::<Self>,
            meta: META,
        }];
    }

    #[test]
    fn routes_record_the_payload_format() {
        let mut table = RouteTable::default();
        table.register(Lobby).unwrap();
        table.register(Proto).unwrap();
        table.register(Remotes).unwrap();
        assert_eq!(Lobby::PAYLOAD, PayloadFormat::Serde, "the default");
        assert_eq!(
            table.handler("lobby.join").unwrap().payload,
            PayloadFormat::Serde
        );
        assert_eq!(
            table.handler("proto.a").unwrap().payload,
            PayloadFormat::Protobuf
        );
        assert_eq!(
            table.remote("remotes.count").unwrap().payload,
            PayloadFormat::Any
        );
    }

    #[test]
    fn check_serializer_pairs_components_and_serializers() {
        let all = [
            SerializerKind::Json,
            SerializerKind::MessagePack,
            SerializerKind::Protobuf,
        ];
        let mut any = RouteTable::default();
        any.register(Raw).unwrap();
        any.register(Remotes).unwrap();
        for kind in all {
            assert_eq!(any.check_serializer(kind), Ok(()), "{kind}");
        }

        let mut proto = any.clone();
        proto.register(Proto).unwrap();
        assert_eq!(proto.check_serializer(SerializerKind::Protobuf), Ok(()));
        for kind in [SerializerKind::Json, SerializerKind::MessagePack] {
            let err = proto.check_serializer(kind).unwrap_err();
            assert_eq!(
                err,
                SerializerMismatch {
                    component: "proto".into(),
                    route: "proto.a".into(),
                    payload: PayloadFormat::Protobuf,
                    serializer: kind,
                }
            );
        }
        let err = proto.check_serializer(SerializerKind::Json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "component \"proto\" (route proto.a) takes protobuf payloads, which need protobuf, \
             but the app's serializer is json: serve it with `.serializer(SerializerKind::Protobuf)`, \
             or drop `serializer = \"protobuf\"` and take serde types"
        );

        let mut serde = any;
        serde.register(Lobby).unwrap();
        assert_eq!(serde.check_serializer(SerializerKind::Json), Ok(()));
        assert_eq!(serde.check_serializer(SerializerKind::MessagePack), Ok(()));
        let err = serde
            .check_serializer(SerializerKind::Protobuf)
            .unwrap_err();
        assert_eq!(err.route, "lobby.join");
        assert_eq!(err.component, "lobby");
        assert_eq!(
            err.to_string(),
            "component \"lobby\" (route lobby.join) takes serde payloads, which need json or msgpack, \
             but the app's serializer is protobuf: declare it `#[component(serializer = \"protobuf\")]` \
             with prost messages, or serve it with a json or msgpack serializer"
        );
    }

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

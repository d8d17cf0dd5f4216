//! The dispatcher: where a client message goes and how its call starts.
//!
//! One set of rules for every path a client message takes: the agent (a
//! message read from a connection), the inbound cluster path (a message a
//! frontend forwarded here) and the test harness. A route naming another
//! server type is forwarded through the cluster; otherwise it must be a
//! handler of this server, and a request to a notify route is refused
//! (`PIT-400`) while a notify to a request route runs with its reply
//! discarded, as in Pitaya.

use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;

use crate::PitayaError;
use crate::clustered::ClusterParts;
use crate::codec::MessageType;
use crate::context::Context;
use crate::dispatch::{Route, parse_route};
use crate::error::codes;
use crate::handler::{HandlerFuture, HandlerKind, Request};
use crate::server::ServerCore;
use crate::session::Session;

/// Where a client message goes.
enum Destination {
    /// A handler of this server.
    Local(Route),
    /// A server of another type, through the cluster.
    Forward(Arc<ClusterParts>, String),
}

/// `PIT-404` for a client route.
pub(crate) fn not_found(route: &str) -> PitayaError {
    PitayaError::new(
        codes::NOT_FOUND,
        format!("pitaya/handler: {route} not found"),
    )
}

/// The handler of this server for `local` (`component.method`) of the
/// client route `route`, with the request/notify rule applied.
pub(crate) fn local_handler(
    core: &ServerCore,
    local: &str,
    route: &str,
    notify: bool,
) -> Result<Route, PitayaError> {
    let handler = core.routes.handler(local).ok_or_else(|| not_found(route))?;
    match (notify, handler.kind) {
        (false, HandlerKind::Notify) => Err(PitayaError::new(
            codes::BAD_REQUEST,
            format!("tried to request a notify route {route}"),
        )),
        (true, HandlerKind::Request) => {
            tracing::warn!(
                route,
                "notify sent to a request route: the reply is discarded"
            );
            Ok(handler.clone())
        }
        _ => Ok(handler.clone()),
    }
}

fn resolve(core: &ServerCore, route: &str, notify: bool) -> Result<Destination, PitayaError> {
    let parts = parse_route(route)?;
    if let Some(server_type) = parts.server_type
        && server_type != core.config.server_type
    {
        return match core.handle.cluster() {
            Some(cluster) => Ok(Destination::Forward(cluster, server_type.to_owned())),
            None => Err(not_found(route)),
        };
    }
    local_handler(core, parts.local, route, notify).map(Destination::Local)
}

/// A client message from `session`, ready to run.
pub(crate) struct ClientMessage {
    /// The full route as the client sent it.
    pub(crate) route: String,
    /// The message id (0 for a notify).
    pub(crate) id: u64,
    /// Request or notify.
    pub(crate) kind: MessageType,
    /// The (inflated) body.
    pub(crate) body: Bytes,
}

/// The context a client message starts with on the server that received
/// it: its route, a fresh `request.id`, `req-route` and `req-start-time`,
/// as Go's handler service sets them.
fn client_context(route: String) -> Context {
    Context::client(route, crate::clustered::now_nanos())
}

/// Starts a client message: the future of its reply (`None` for a
/// notify), or the error to answer at once (bad or unknown route).
/// `offload` lets a large payload be decoded under `block_in_place`.
///
/// The handler pipeline runs around a local handler; the forward pipeline
/// around a message forwarded to another server type: its before hooks
/// before it is sent (a rejection answers the client, nothing is sent; the
/// context and body they return are what is sent), its after hooks on the
/// backend's reply.
pub(crate) fn start(
    core: &Arc<ServerCore>,
    session: &Session,
    message: ClientMessage,
    offload: bool,
) -> Result<HandlerFuture, PitayaError> {
    let ClientMessage {
        route,
        id,
        kind,
        body,
    } = message;
    match resolve(core, &route, kind == MessageType::Notify)? {
        Destination::Local(handler) => {
            let span = tracing::debug_span!("request", route = %handler.name, id);
            let request = Request::from_client(session.clone(), client_context(route), body)
                .with_app(core.handle())
                .with_offload(offload);
            let core = core.clone();
            Ok(Box::pin(
                async move { handler.call(&core.pipelines, request).await }.instrument(span),
            ))
        }
        Destination::Forward(cluster, server_type) => {
            let context = client_context(route);
            if core.forward_pipelines.is_empty() {
                return Ok(Box::pin(crate::clustered::forward(
                    cluster,
                    session.clone(),
                    &server_type,
                    context,
                    id,
                    kind,
                    body,
                )));
            }
            let span = tracing::debug_span!("request", route = %context.route(), id);
            let request = Request::from_client(session.clone(), context, body)
                .with_app(core.handle())
                .with_offload(offload);
            let session = session.clone();
            let core = core.clone();
            Ok(Box::pin(
                async move {
                    let route = request.context().route().to_owned();
                    let forward = |request: Request| {
                        // What the hooks let through goes where the client's
                        // route says, whatever route their context names.
                        let context = if request.context().route() == route {
                            request.context().clone()
                        } else {
                            Context::with_metadata(&*route, request.context().metadata().clone())
                        };
                        let session = request.session().cloned().unwrap_or(session);
                        crate::clustered::forward(
                            cluster,
                            session,
                            &server_type,
                            context,
                            id,
                            kind,
                            request.body().clone(),
                        )
                    };
                    let run = core.forward_pipelines.run(request, forward);
                    crate::pipeline::catch_panics(&route, run).await
                }
                .instrument(span),
            ))
        }
    }
}

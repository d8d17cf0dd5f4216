//! The app's [`Inbound`]: what other servers send here (forwarded client
//! messages, remotes, session operations of backends, pushes, kicks, binds).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use prost::Message as _;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::cluster::{ClusterFuture, Inbound, go_duration};
use crate::clustered::ClusterParts;
use crate::clustered::backend_session::{BackendLink, Op};
use crate::clustered::session_watch;
use crate::context::Context;
use crate::dispatch::parse_route;
use crate::dispatcher;
use crate::error::codes;
use crate::handler::Request;
use crate::server::ServerCore;
use crate::session::Session;
use crate::{PitayaError, protos};

/// The app's [`Inbound`]: serves forwarded messages and remotes, delivers
/// pushes, kicks and binds.
pub(crate) struct AppInbound {
    pub(crate) core: Weak<ServerCore>,
    /// Weak: the RPC server holding this inbound is part of the cluster
    /// parts, so a strong reference would keep a dropped app alive.
    pub(crate) cluster: Weak<ClusterParts>,
}

fn ack() -> Bytes {
    protos::Response::ok(Bytes::from_static(b"ack"))
        .encode_to_vec()
        .into()
}

fn decode_metadata(raw: &[u8]) -> BTreeMap<String, serde_json::Value> {
    if raw.is_empty() {
        return BTreeMap::new();
    }
    serde_json::from_slice(raw).unwrap_or_default()
}

/// The context of a call received from another server, as Go's
/// `GetContextFromRequest` makes it: the propagated metadata, a fresh
/// `request.id` if it has none, and `req-route` set to the route called.
fn received_context(route: &str, mut metadata: BTreeMap<String, serde_json::Value>) -> Context {
    let has_id = metadata
        .get(crate::context::REQUEST_ID)
        .and_then(serde_json::Value::as_str)
        .is_some_and(|id| !id.is_empty());
    if !has_id {
        metadata.insert(
            crate::context::REQUEST_ID.to_owned(),
            crate::nuid::next().into(),
        );
    }
    // A forwarded client message already carries its route.
    let same_route = metadata
        .get(crate::context::REQUEST_ROUTE)
        .and_then(serde_json::Value::as_str)
        == Some(route);
    if !same_route {
        metadata.insert(crate::context::REQUEST_ROUTE.to_owned(), route.into());
    }
    Context::with_metadata(route, metadata)
}

impl AppInbound {
    async fn serve(&self, request: protos::Request) -> Result<Bytes, PitayaError> {
        let core = self
            .core
            .upgrade()
            .ok_or_else(|| PitayaError::new(codes::INTERNAL, "server is shutting down"))?;
        let cluster = self
            .cluster
            .upgrade()
            .ok_or_else(|| PitayaError::new(codes::INTERNAL, "server is shutting down"))?;
        let msg = request
            .msg
            .ok_or_else(|| PitayaError::new(codes::BAD_REQUEST, "request without a message"))?;
        // Go refuses a request without its propagate context.
        if request.metadata.is_empty() {
            return Err(PitayaError::new(codes::INTERNAL, "no context found"));
        }
        let metadata = decode_metadata(&request.metadata);
        let timeout = metadata
            .get("reqTimeout")
            .and_then(serde_json::Value::as_str)
            .and_then(go_duration::parse);
        let parts = parse_route(&msg.route)?;
        let local = parts.local.to_owned();
        let context = received_context(&msg.route, metadata);
        let rpc_type = request.r#type;
        let work = async {
            if rpc_type == protos::RpcType::User as i32 {
                return Box::pin(serve_user(&core, &cluster, &local, context, msg.data)).await;
            }
            let notify = msg.r#type == protos::MsgType::MsgNotify as i32;
            let route = dispatcher::local_handler(&core, &local, &msg.route, notify)?;
            let wire = request.session.unwrap_or_default();
            let data: HashMap<String, serde_json::Value> = if wire.data.is_empty() {
                HashMap::new()
            } else {
                serde_json::from_slice(&wire.data).map_err(|err| {
                    PitayaError::new(codes::BAD_REQUEST, format!("invalid session data: {err}"))
                })?
            };
            let (link, ops) = BackendLink::spawn(
                cluster.clone(),
                request.frontend_id.clone(),
                wire.id,
                context.clone(),
            );
            let session = core
                .sessions
                .create_backend(Some(wire.uid), data, Box::new(link));
            let request = Request::from_client(session.clone(), context, msg.data)
                .with_app(core.handle())
                .with_offload(crate::heavy::can_offload());
            let result = route.call(&core.pipelines, request).await;
            // The session's remote operations (bind, push, kick) complete
            // before the reply, as in Go where they are synchronous.
            drop(session);
            let (done, flushed) = oneshot::channel();
            if ops.send(Op::Flush(done)).is_ok() {
                let _ = flushed.await;
            }
            match result {
                Ok(_) if notify => Ok(Bytes::from_static(b"ack")),
                Ok(Some(body)) => Ok(body),
                Ok(None) => Err(PitayaError::new(codes::UNKNOWN, "reply must not be null")),
                Err(err) => Err(err),
            }
        };
        match timeout {
            Some(timeout) => tokio::time::timeout(timeout, work)
                .await
                .unwrap_or_else(|_| {
                    Err(PitayaError::new(
                        codes::INTERNAL,
                        "rpc client: request timeout",
                    ))
                }),
            None => work.await,
        }
    }
}

async fn serve_user(
    core: &Arc<ServerCore>,
    cluster: &Arc<ClusterParts>,
    local: &str,
    context: Context,
    data: Bytes,
) -> Result<Bytes, PitayaError> {
    match local {
        "sys.bindsession" => {
            let wire = protos::Session::decode(data).map_err(bad_arg)?;
            let session = frontend_session(core, wire.id)?;
            // The pool callbacks run, then the uid's subscription (the
            // app's bind hook) before the backend hears back.
            session.bind_local(wire.uid, true).await?;
            Ok(ack())
        }
        session_watch::WATCH_ROUTE => {
            let wire = protos::Session::decode(data).map_err(bad_arg)?;
            // Only a server of the cluster may watch: it is who gets told.
            let backend = context
                .get("peer.id")
                .and_then(serde_json::Value::as_str)
                .filter(|id| cluster.discovery.server(id).is_some())
                .ok_or_else(|| {
                    PitayaError::new(
                        codes::BAD_REQUEST,
                        "a watch needs the peer.id of a server of the cluster",
                    )
                })?
                .to_owned();
            let Ok(session) = frontend_session(core, wire.id) else {
                return Ok(Bytes::from_static(session_watch::ALREADY_CLOSED));
            };
            if !cluster.watches.add_watcher(session.id(), &backend)? {
                return Ok(ack());
            }
            let weak = Arc::downgrade(cluster);
            session.on_close(move |closed| {
                let Some(cluster) = weak.upgrade() else {
                    return;
                };
                let watchers = cluster.watches.take_watchers(closed.id());
                let closed = protos::Session {
                    id: wire.id,
                    uid: closed.uid().unwrap_or_default().to_owned(),
                    data: serde_json::to_vec(&closed.data())
                        .unwrap_or_default()
                        .into(),
                };
                let notices = cluster.notices.clone();
                notices.spawn(async move {
                    for backend in watchers {
                        tell_session_closed(&cluster, &backend, closed.clone()).await;
                    }
                });
            })?;
            Ok(ack())
        }
        session_watch::CLOSED_ROUTE => {
            let wire = protos::Session::decode(data).map_err(bad_arg)?;
            // Only the frontend holding a session reports its close.
            let frontend = context
                .get("peer.id")
                .and_then(serde_json::Value::as_str)
                .filter(|id| {
                    cluster
                        .discovery
                        .server(id)
                        .is_some_and(|server| server.frontend)
                })
                .ok_or_else(|| {
                    PitayaError::new(
                        codes::BAD_REQUEST,
                        "a close report needs the peer.id of a frontend of the cluster",
                    )
                })?;
            if !cluster.watches.watches(frontend, wire.id) {
                return Ok(ack());
            }
            let data: HashMap<String, serde_json::Value> = if wire.data.is_empty() {
                HashMap::new()
            } else {
                serde_json::from_slice(&wire.data).map_err(bad_arg)?
            };
            cluster
                .watches
                .closed(frontend, wire.id, Some(wire.uid), Some(data));
            Ok(ack())
        }
        "sys.pushsession" => {
            let wire = protos::Session::decode(data).map_err(bad_arg)?;
            let session = frontend_session(core, wire.id)?;
            let map: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&wire.data).map_err(bad_arg)?;
            session.set_data(map);
            Ok(ack())
        }
        "sys.kick" => {
            let kick = protos::KickMsg::decode(data).map_err(bad_arg)?;
            let kicked = core
                .sessions
                .by_uid(&kick.user_id)
                .map(|s| s.kick())
                .is_some();
            Ok(protos::KickAnswer { kicked }.encode_to_vec().into())
        }
        _ => call_remote(core, local, context, data).await,
    }
}

/// Runs the remote `local` (`component.method`) of this server with a
/// protobuf argument; the protobuf reply.
pub(crate) async fn call_remote(
    core: &Arc<ServerCore>,
    local: &str,
    context: Context,
    data: Bytes,
) -> Result<Bytes, PitayaError> {
    let route = core
        .routes
        .remote(local)
        .ok_or_else(|| dispatcher::not_found(context.route()))?;
    let request =
        Request::remote(context, data, core.sessions.serializer()).with_app(core.handle());
    route
        .call(&core.remote_pipelines, request)
        .await?
        .ok_or_else(|| PitayaError::new(codes::UNKNOWN, "reply must not be null"))
}

fn bad_arg(err: impl std::fmt::Display) -> PitayaError {
    PitayaError::new(codes::BAD_REQUEST, format!("invalid argument: {err}"))
}

fn frontend_session(core: &ServerCore, id: i64) -> Result<Session, PitayaError> {
    u64::try_from(id)
        .ok()
        .and_then(|id| core.sessions.by_id(id))
        .ok_or_else(|| PitayaError::new(codes::NOT_FOUND, format!("session {id} not found")))
}

/// Tells `backend` that a session it watched closed (fire and forget: a
/// backend that is gone has nobody to tell).
async fn tell_session_closed(cluster: &ClusterParts, backend: &str, closed: protos::Session) {
    let Some(target) = cluster.discovery.server(backend) else {
        tracing::debug!(%backend, "the watching backend is gone");
        return;
    };
    let arg = closed.encode_to_vec().into();
    if let Err(err) = cluster
        .user_rpc(
            &target,
            false,
            session_watch::CLOSED_ROUTE,
            arg,
            cluster.timeout,
            None,
        )
        .await
    {
        tracing::debug!(%backend, error = %err, "telling the backend a session closed failed");
    }
}

/// After a uid binds on this frontend: receive its pushes and kicks, and
/// tell the other frontends of our type (unique sessions).
pub(crate) async fn on_frontend_bind(cluster: &ClusterParts, session: &Session) {
    let Some(uid) = session.uid().map(str::to_owned) else {
        return;
    };
    match cluster.server.subscribe_user(&uid).await {
        Ok(subscription) => {
            // A frontend session: registering cannot fail.
            let _ = session.on_close(move |_| drop(subscription));
        }
        Err(err) => tracing::warn!(%uid, error = %err, "cannot subscribe the uid's pushes"),
    }
    if cluster.unique {
        let bind = protos::BindMsg {
            uid: uid.clone(),
            fid: cluster.me.id.clone(),
        };
        if let Err(err) = cluster
            .client
            .broadcast_bind(&cluster.me.server_type, bind)
            .await
        {
            tracing::warn!(%uid, error = %err, "cannot broadcast the bind");
        }
    }
}

impl Inbound for AppInbound {
    fn on_request(&self, request: protos::Request) -> ClusterFuture<'_, protos::Response> {
        let span = tracing::debug_span!("rpc", route = %request.route(), kind = request.r#type);
        Box::pin(
            async move {
                match self.serve(request).await {
                    Ok(data) => protos::Response::ok(data),
                    Err(err) => {
                        tracing::debug!(error = %err, "rpc failed");
                        protos::Response::err(err)
                    }
                }
            }
            .instrument(span),
        )
    }

    fn on_push(&self, push: protos::Push) -> ClusterFuture<'_, ()> {
        Box::pin(async move {
            let Some(core) = self.core.upgrade() else {
                return;
            };
            match core.sessions.by_uid(&push.uid) {
                Some(session) => {
                    if let Err(err) = session.push_raw(&push.route, push.data) {
                        tracing::debug!(uid = %push.uid, error = %err, "push failed");
                    }
                }
                None => tracing::debug!(uid = %push.uid, "push for a uid not bound here"),
            }
        })
    }

    fn on_kick(&self, kick: protos::KickMsg) -> ClusterFuture<'_, protos::KickAnswer> {
        Box::pin(async move {
            let kicked = self
                .core
                .upgrade()
                .and_then(|core| core.sessions.by_uid(&kick.user_id))
                .map(|session| session.kick())
                .is_some();
            protos::KickAnswer { kicked }
        })
    }

    fn on_bind(&self, bind: protos::BindMsg) -> ClusterFuture<'_, ()> {
        Box::pin(async move {
            let Some(cluster) = self.cluster.upgrade() else {
                return;
            };
            if !cluster.unique || bind.fid == cluster.me.id {
                return;
            }
            if let Some(session) = self
                .core
                .upgrade()
                .and_then(|core| core.sessions.by_uid(&bind.uid))
            {
                tracing::info!(uid = %bind.uid, frontend = %bind.fid, "uid bound on another frontend: kicking");
                session.kick();
            }
        })
    }
}

//! The app's side of the cluster plane: forwarding client messages to
//! backends (Sys RPC), serving forwarded messages and remotes (User RPC),
//! backend session views, and pushes, kicks and binds across servers.

mod nuid;
mod unreachable;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::app::ServerCore;
use crate::cluster::{
    ClusterError, ClusterFuture, Inbound, RpcClient, RpcServer, ServerInfo, ServiceDiscovery,
    go_duration,
};
use crate::codec::MessageType;
use crate::context::Context;
use crate::dispatch::parse_route;
use crate::error::codes;
use crate::handler::{HandlerFuture, HandlerKind, Request};
use crate::pipeline::Pipelines;
use crate::remote::{RemoteCall, RemoteCaller, RemoteFuture, Target};
use crate::session::{RemoteSession, Session};
use crate::{PitayaError, protos};

/// Picks the server of a type that handles a forwarded client message:
/// `(context of the message, the client's session, servers of the type)`.
/// `None` falls back to a uniformly random pick.
pub type RouterFn =
    Arc<dyn Fn(&Context, &Session, &[Arc<ServerInfo>]) -> Option<Arc<ServerInfo>> + Send + Sync>;

/// The cluster parts of a clustered app.
pub(crate) struct ClusterParts {
    pub(crate) discovery: Arc<dyn ServiceDiscovery>,
    pub(crate) client: Arc<dyn RpcClient>,
    pub(crate) server: Arc<dyn RpcServer>,
    pub(crate) me: Arc<ServerInfo>,
    pub(crate) routers: HashMap<String, RouterFn>,
    pub(crate) timeout: Duration,
    pub(crate) unique: bool,
    /// Servers that did not answer ("no responders"), set aside.
    pub(crate) unreachable: unreachable::Unreachable,
}

/// A random `u64` (fastrand: a per-thread generator seeded at random).
pub(crate) fn random_u64() -> u64 {
    fastrand::u64(..)
}

/// A random UUID v4 in its usual text form, as Go Pitaya's server IDs.
pub(crate) fn uuid_v4() -> String {
    let mut bytes = fastrand::u128(..).to_le_bytes();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn pick_random(servers: &[Arc<ServerInfo>]) -> Option<Arc<ServerInfo>> {
    if servers.is_empty() {
        return None;
    }
    servers.get(fastrand::usize(..servers.len())).cloned()
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

impl ClusterParts {
    /// `Request.metadata` for a request leaving this server: the propagated
    /// `context`, then `extra`, then the caller's identity and timeout.
    fn metadata(
        &self,
        context: Option<&Context>,
        extra: &[(&str, serde_json::Value)],
        timeout: Duration,
    ) -> Bytes {
        let mut map = serde_json::Map::new();
        if let Some(context) = context {
            for (key, value) in context.metadata() {
                map.insert(key.clone(), value.clone());
            }
        }
        for (key, value) in extra {
            map.insert((*key).to_owned(), value.clone());
        }
        map.entry("request.id")
            .or_insert_with(|| nuid::next().into());
        map.insert("peer.id".into(), self.me.id.clone().into());
        map.insert("peer.service".into(), self.me.server_type.clone().into());
        map.insert("reqTimeout".into(), go_duration::format(timeout).into());
        serde_json::to_vec(&map)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// Sends a User RPC to `target` and returns the reply data. With
    /// `reroute`, a target that is gone is set aside and the call goes to
    /// another server of its type (calls by server type).
    async fn user_rpc(
        &self,
        target: &Arc<ServerInfo>,
        reroute: bool,
        route: &str,
        data: Bytes,
        timeout: Duration,
        context: Option<&Context>,
    ) -> Result<Bytes, PitayaError> {
        let request = protos::Request {
            r#type: protos::RpcType::User as i32,
            session: None,
            msg: Some(protos::Msg {
                id: 0,
                route: route.to_owned(),
                data,
                reply: String::new(),
                r#type: protos::MsgType::MsgRequest as i32,
            }),
            frontend_id: if self.me.frontend {
                self.me.id.clone()
            } else {
                String::new()
            },
            metadata: self.metadata(context, &[], timeout),
        };
        let response = if reroute {
            self.request_routed(target.clone(), request, timeout, pick_random)
                .await?
        } else {
            self.client.request(target, request, timeout).await?
        };
        response.into_result()
    }

    /// The servers of `server_type` routing may pick.
    fn routable(&self, server_type: &str) -> Vec<Arc<ServerInfo>> {
        self.unreachable
            .routable(self.discovery.servers_of_type(server_type))
    }

    /// Sends `request` to `target`; if nobody listens there (a server
    /// killed without deregistering), sets it aside and sends the request
    /// once more to `fallback`'s pick among the others. Nothing received
    /// the first attempt, so the retry is safe.
    async fn request_routed(
        &self,
        target: Arc<ServerInfo>,
        request: protos::Request,
        timeout: Duration,
        fallback: impl FnOnce(&[Arc<ServerInfo>]) -> Option<Arc<ServerInfo>>,
    ) -> Result<protos::Response, ClusterError> {
        match self.client.request(&target, request.clone(), timeout).await {
            Err(ClusterError::NoResponders { subject }) => {
                self.unreachable.mark(&target);
                let mut others = self.routable(&target.server_type);
                others.retain(|server| server.id != target.id);
                match fallback(&others) {
                    Some(other) => {
                        tracing::debug!(from = %target.id, to = %other.id, "retrying on another server");
                        self.client.request(&other, request, timeout).await
                    }
                    None => Err(ClusterError::NoResponders { subject }),
                }
            }
            result => result,
        }
    }

    /// The server type of the frontend with `id`.
    fn frontend_type(&self, id: &str) -> Option<String> {
        self.discovery
            .server(id)
            .map(|server| server.server_type.clone())
    }
}

/// Forwards a client message to a server of `server_type` (Sys RPC); the
/// future resolves to the backend's reply body (`None` for a notify).
pub(crate) fn forward(
    cluster: Arc<ClusterParts>,
    session: Session,
    server_type: &str,
    route: String,
    id: u64,
    kind: MessageType,
    body: Bytes,
) -> HandlerFuture {
    let servers = cluster.routable(server_type);
    let server_type = server_type.to_owned();
    let span = tracing::debug_span!("forward", route = %route, id);
    Box::pin(
        async move {
            let context = Context::new(route.clone());
            let target = match cluster.routers.get(&server_type) {
                Some(router) if !servers.is_empty() => {
                    router(&context, &session, &servers).or_else(|| pick_random(&servers))
                }
                _ => pick_random(&servers),
            }
            .ok_or_else(|| ClusterError::NoServersOfType {
                server_type: server_type.clone(),
            })?;
            let data = serde_json::to_vec(&session.data())
                .map(Bytes::from)
                .unwrap_or_else(|_| Bytes::from_static(b"{}"));
            let notify = kind == MessageType::Notify;
            let request = protos::Request {
                r#type: protos::RpcType::Sys as i32,
                session: Some(protos::Session {
                    id: i64::try_from(session.id()).unwrap_or(i64::MAX),
                    uid: session.uid().unwrap_or_default().to_owned(),
                    data,
                }),
                msg: Some(protos::Msg {
                    id: if notify { 0 } else { id },
                    route: route.clone(),
                    data: body,
                    reply: String::new(),
                    r#type: if notify {
                        protos::MsgType::MsgNotify as i32
                    } else {
                        protos::MsgType::MsgRequest as i32
                    },
                }),
                frontend_id: cluster.me.id.clone(),
                metadata: cluster.metadata(
                    None,
                    &[
                        ("req-route", route.into()),
                        ("req-start-time", now_nanos().into()),
                    ],
                    cluster.timeout,
                ),
            };
            tracing::debug!(server = %target.id, "forwarding");
            let response = cluster
                .request_routed(target, request, cluster.timeout, |others| {
                    match cluster.routers.get(&server_type) {
                        Some(router) if !others.is_empty() => {
                            router(&context, &session, others).or_else(|| pick_random(others))
                        }
                        _ => pick_random(others),
                    }
                })
                .await?;
            let data = response.into_result()?;
            Ok(if notify { None } else { Some(data) })
        }
        .instrument(span),
    )
}

/// The app's [`Inbound`]: serves forwarded messages and remotes, delivers
/// pushes, kicks and binds.
pub(crate) struct AppInbound {
    pub(crate) core: Weak<ServerCore>,
    /// Weak: the RPC server holding this inbound is part of the cluster
    /// parts, so a strong reference would keep a dropped app alive.
    pub(crate) cluster: Weak<ClusterParts>,
}

fn not_found(route: &str) -> PitayaError {
    PitayaError::new(
        codes::NOT_FOUND,
        format!("pitaya/handler: {route} not found"),
    )
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
        let context = Context::with_metadata(msg.route.clone(), metadata);
        let rpc_type = request.r#type;
        let work = async {
            if rpc_type == protos::RpcType::User as i32 {
                return serve_user(&core, &cluster, &local, context, msg.data).await;
            }
            let notify = msg.r#type == protos::MsgType::MsgNotify as i32;
            let route = core
                .routes
                .handler(&local)
                .ok_or_else(|| not_found(&msg.route))?;
            if !notify && route.kind == HandlerKind::Notify {
                return Err(PitayaError::new(
                    codes::BAD_REQUEST,
                    format!("tried to request a notify route {}", msg.route),
                ));
            }
            let wire = request.session.unwrap_or_default();
            let data: HashMap<String, serde_json::Value> = if wire.data.is_empty() {
                HashMap::new()
            } else {
                serde_json::from_slice(&wire.data).map_err(|err| {
                    PitayaError::new(codes::BAD_REQUEST, format!("invalid session data: {err}"))
                })?
            };
            let (link, ops) =
                BackendLink::spawn(cluster.clone(), request.frontend_id.clone(), wire.id);
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
    cluster: &ClusterParts,
    local: &str,
    context: Context,
    data: Bytes,
) -> Result<Bytes, PitayaError> {
    match local {
        "sys.bindsession" => {
            let wire = protos::Session::decode(data).map_err(bad_arg)?;
            let session = frontend_session(core, wire.id)?;
            session.bind_inner(wire.uid, false)?;
            on_frontend_bind(cluster, &session).await;
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
        _ => {
            let route = core
                .routes
                .remote(local)
                .ok_or_else(|| not_found(context.route()))?;
            let request =
                Request::remote(context, data, core.sessions.serializer()).with_app(core.handle());
            route
                .call(&Pipelines::default(), request)
                .await?
                .ok_or_else(|| PitayaError::new(codes::UNKNOWN, "reply must not be null"))
        }
    }
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

/// What a backend session view asks of its frontend, in order.
enum Op {
    Bind(String),
    PushToFront(Bytes),
    Kick(String),
    Push(protos::Push),
    Flush(oneshot::Sender<()>),
}

/// The [`RemoteSession`] of a backend view: operations are queued and run
/// in order by one task, which ends (and signals) when the view is dropped.
struct BackendLink {
    frontend_id: String,
    frontend_session_id: i64,
    ops: mpsc::UnboundedSender<Op>,
}

impl BackendLink {
    fn spawn(
        cluster: Arc<ClusterParts>,
        frontend_id: String,
        frontend_session_id: i64,
    ) -> (Self, mpsc::UnboundedSender<Op>) {
        let (ops, mut rx) = mpsc::unbounded_channel::<Op>();
        let fid = frontend_id.clone();
        tokio::spawn(
            async move {
                while let Some(op) = rx.recv().await {
                    if let Err(err) = run_op(&cluster, &fid, frontend_session_id, op).await {
                        tracing::warn!(frontend = %fid, error = %err, "session operation on the frontend failed");
                    }
                }
            }
            .in_current_span(),
        );
        (
            Self {
                frontend_id,
                frontend_session_id,
                ops: ops.clone(),
            },
            ops,
        )
    }
}

async fn run_op(
    cluster: &ClusterParts,
    frontend_id: &str,
    session_id: i64,
    op: Op,
) -> Result<(), PitayaError> {
    let frontend = || {
        cluster
            .discovery
            .server(frontend_id)
            .ok_or_else(|| ClusterError::NoServerWithId {
                id: frontend_id.to_owned(),
            })
    };
    match op {
        Op::Flush(done) => {
            let _ = done.send(());
        }
        Op::Bind(uid) => {
            let arg = protos::Session {
                id: session_id,
                uid,
                data: Bytes::new(),
            };
            let target = frontend()?;
            cluster
                .user_rpc(
                    &target,
                    false,
                    "sys.bindsession",
                    arg.encode_to_vec().into(),
                    cluster.timeout,
                    None,
                )
                .await?;
        }
        Op::PushToFront(data) => {
            let arg = protos::Session {
                id: session_id,
                uid: String::new(),
                data,
            };
            let target = frontend()?;
            cluster
                .user_rpc(
                    &target,
                    false,
                    "sys.pushsession",
                    arg.encode_to_vec().into(),
                    cluster.timeout,
                    None,
                )
                .await?;
        }
        Op::Kick(uid) => {
            let arg = protos::KickMsg { user_id: uid };
            let target = frontend()?;
            cluster
                .user_rpc(
                    &target,
                    false,
                    "sys.kick",
                    arg.encode_to_vec().into(),
                    cluster.timeout,
                    None,
                )
                .await?;
        }
        Op::Push(push) => {
            let frontend_type =
                cluster
                    .frontend_type(frontend_id)
                    .ok_or_else(|| ClusterError::NoServerWithId {
                        id: frontend_id.to_owned(),
                    })?;
            cluster.client.push_to_user(&frontend_type, push).await?;
        }
    }
    Ok(())
}

impl RemoteSession for BackendLink {
    fn frontend_id(&self) -> &str {
        &self.frontend_id
    }

    fn frontend_session_id(&self) -> i64 {
        self.frontend_session_id
    }

    fn bind(&self, _session: &Session, uid: &str) {
        let _ = self.ops.send(Op::Bind(uid.to_owned()));
    }

    fn push(&self, uid: &str, route: &str, body: Bytes) {
        let _ = self.ops.send(Op::Push(protos::Push {
            route: route.to_owned(),
            uid: uid.to_owned(),
            data: body,
        }));
    }

    fn kick(&self, session: &Session) {
        let _ = self
            .ops
            .send(Op::Kick(session.uid().unwrap_or_default().to_owned()));
    }

    fn push_to_front(&self, session: &Session) {
        let data = serde_json::to_vec(&session.data()).unwrap_or_default();
        let _ = self.ops.send(Op::PushToFront(data.into()));
    }

    fn flush(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        let (done, flushed) = oneshot::channel();
        let sent = self.ops.send(Op::Flush(done)).is_ok();
        Box::pin(async move {
            if sent {
                let _ = flushed.await;
            }
        })
    }
}

/// Go's `ErrNonsenseRPC`: a user RPC to this server's own type (without a
/// server id) or to this very server.
const NONSENSE_RPC: &str = "you are making a rpc that may be processed locally, either specify a different server type or specify a server id";

/// A [`RemoteCaller`] over the cluster's [`RpcClient`]: what
/// [`AppHandle::remote`](crate::app::AppHandle::remote) clients use.
pub(crate) struct ClusterCaller {
    pub(crate) cluster: Option<Arc<ClusterParts>>,
}

impl RemoteCaller for ClusterCaller {
    fn call(&self, call: RemoteCall) -> RemoteFuture {
        let cluster = self.cluster.clone();
        let RemoteCall {
            target,
            route,
            body,
            timeout,
            context,
            ..
        } = call;
        Box::pin(async move {
            let cluster = cluster.ok_or_else(|| {
                PitayaError::new(codes::INTERNAL, "remote calls need a clustered app")
            })?;
            // Go refuses these (ErrNonsenseRPC): call the method directly.
            let local = match &target {
                Target::ServerType(server_type) => *server_type == cluster.me.server_type,
                Target::ServerId { id, .. } => *id == cluster.me.id,
            };
            if local {
                return Err(PitayaError::new(codes::UNKNOWN, NONSENSE_RPC));
            }
            let reroute = matches!(target, Target::ServerType(_));
            let server = match &target {
                Target::ServerType(server_type) => pick_random(&cluster.routable(server_type))
                    .ok_or_else(|| ClusterError::NoServersOfType {
                        server_type: server_type.clone(),
                    })?,
                Target::ServerId { id, .. } => cluster
                    .discovery
                    .server(id)
                    .ok_or_else(|| ClusterError::NoServerWithId { id: id.clone() })?,
            };
            let timeout = timeout.unwrap_or(cluster.timeout);
            cluster
                .user_rpc(&server, reroute, &route, body, timeout, context.as_ref())
                .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_shape() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid_v4(), id);
    }
}

//! RPC over NATS, as Go Pitaya's `NatsRPCClient` / `NatsRPCServer`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_nats::client::PublishErrorKind;
use async_nats::{Client, ClientError, ConnectOptions, Event, RequestErrorKind, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use pitaya_core::cluster::{
    ClusterError, ClusterFuture, Inbound, RpcClient, RpcServer, ServerInfo, SubscriptionGuard,
    UserSubscription,
};
use pitaya_core::error::codes;
use pitaya_core::{PitayaError, protos};
use prost::Message;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::serve::{check_request, handle_request};
use crate::subjects;

/// Settings of a [`NatsRpc`], with Go Pitaya's defaults
/// (`pitaya.cluster.rpc.{client,server}.nats.*`).
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NatsConfig {
    /// Server URL(s), comma-separated (`connect`, `nats://localhost:4222`).
    pub url: String,
    /// The timeout callers should use for requests (`requesttimeout`, 5 s).
    /// [`RpcClient::request`] takes its timeout explicitly; this is the
    /// default the runtime passes and also puts in `reqTimeout` metadata.
    pub request_timeout: Duration,
    /// Connection timeout (`connectiontimeout`, 2 s).
    pub connection_timeout: Duration,
    /// Reconnection attempts before the connection is closed for good
    /// (`maxreconnectionretries`, 15); `None` retries forever. See
    /// [`NatsRpc::closed`].
    pub max_reconnection_retries: Option<usize>,
    /// Wait between reconnection attempts (`reconnectwait`, 1 s).
    pub reconnect_wait: Duration,
    /// Random extra wait added to `reconnect_wait` (`reconnectjitter`, 100 ms).
    pub reconnect_jitter: Duration,
    /// Interval of client pings (`pinginterval`, 2 min).
    pub ping_interval: Duration,
    /// Whether the first connection is retried in the background instead of
    /// failing at once (Go's `RetryOnFailedConnect`; off by default here so
    /// a wrong URL fails fast).
    pub retry_on_initial_connect: bool,
    /// Messages buffered per subscription of the server connection before
    /// NATS drops them as a slow consumer (`buffer.messages`; 65,536,
    /// async-nats's default: Go Pitaya's 75 drops requests in bursts as
    /// soon as about 100 clients are forwarded at once, measured with
    /// `scripts/bench-cluster.sh`).
    pub subscription_capacity: usize,
    /// How many requests the server handles at once (`services`, 30).
    pub services: usize,
    /// How long [`RpcServer::stop`] waits for requests in flight (5 s).
    pub drain_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://localhost:4222".to_owned(),
            request_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(2),
            max_reconnection_retries: Some(15),
            reconnect_wait: Duration::from_secs(1),
            reconnect_jitter: Duration::from_millis(100),
            ping_interval: Duration::from_secs(120),
            retry_on_initial_connect: false,
            subscription_capacity: 65_536,
            services: 30,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

impl NatsConfig {
    /// The defaults with another server URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// [`RpcClient`] and [`RpcServer`] on NATS, wire-compatible with Go Pitaya.
///
/// - requests: `pitaya/servers/<type>/<id>`, request/reply with
///   [`protos::Request`] → [`protos::Response`], no headers, no queue group;
/// - pushes and kicks: `pitaya/<frontendType>/user/<uid>/push|kick`
///   (publish, [`protos::Push`] / [`protos::KickMsg`]);
/// - bind broadcasts: `pitaya/<frontendType>/bindings` ([`protos::BindMsg`]).
///
/// As in Go, the client and the server side each have their own connection:
/// the client's opens in [`connect`](Self::connect), the server's in
/// [`RpcServer::start`]. Both reconnect on their own and re-subscribe.
/// The server decodes each request, drops malformed ones (undecodable or
/// without `msg`) with a warning, copies the reply subject into
/// `msg.reply`, and runs up to [`NatsConfig::services`] handlers at once.
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub struct NatsRpc {
    config: NatsConfig,
    me: Arc<ServerInfo>,
    client: Client,
    /// Set when the client connection is dropped on purpose.
    client_closing: Arc<AtomicBool>,
    closed: CancellationToken,
    server: Mutex<Option<Arc<ServerSide>>>,
}

/// The running server side.
struct ServerSide {
    conn: Client,
    /// Set when the connection is closed on purpose (stop).
    closing: Arc<AtomicBool>,
    inbound: Arc<dyn Inbound>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl NatsRpc {
    /// Connects the client side for server `me`.
    pub async fn connect(config: NatsConfig, me: ServerInfo) -> Result<Self, ClusterError> {
        me.validate()?;
        let closed = CancellationToken::new();
        let client_closing = Arc::new(AtomicBool::new(false));
        let client = connect(
            &config,
            format!("pitaya-rs client {}", me.id),
            None,
            &closed,
            client_closing.clone(),
        )
        .await?;
        Ok(Self {
            config,
            me: Arc::new(me),
            client,
            client_closing,
            closed,
            server: Mutex::new(None),
        })
    }

    /// This server.
    pub fn me(&self) -> &Arc<ServerInfo> {
        &self.me
    }

    /// The settings.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// Whether the client connection is up (Go's `IsConnected`).
    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Resolves when a connection gave up reconnecting (after
    /// [`NatsConfig::max_reconnection_retries`]); Go Pitaya stops the app
    /// then.
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    fn server(&self) -> MutexGuard<'_, Option<Arc<ServerSide>>> {
        self.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn publish(&self, subject: String, payload: Vec<u8>) -> Result<(), ClusterError> {
        self.client
            .publish(subject, Bytes::from(payload))
            .await
            .map_err(ClusterError::transport)
    }

    async fn start_server(&self, inbound: Arc<dyn Inbound>) -> Result<(), ClusterError> {
        if self.server().is_some() {
            return Err(ClusterError::transport("nats rpc server already started"));
        }
        let closing = Arc::new(AtomicBool::new(false));
        let conn = connect(
            &self.config,
            format!("pitaya-rs server {}", self.me.id),
            Some(self.config.subscription_capacity),
            &self.closed,
            closing.clone(),
        )
        .await?;
        let requests = conn
            .subscribe(subjects::server(&self.me.server_type, &self.me.id))
            .await
            .map_err(ClusterError::transport)?;
        let binds = conn
            .subscribe(subjects::bindings(&self.me.server_type))
            .await
            .map_err(ClusterError::transport)?;
        // The subscriptions are live on the server once this returns.
        conn.flush().await.map_err(ClusterError::transport)?;

        let side = Arc::new(ServerSide {
            conn: conn.clone(),
            closing: closing.clone(),
            inbound,
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        });
        let raced = {
            let mut slot = self.server();
            let raced = slot.is_some();
            if !raced {
                *slot = Some(side.clone());
            }
            raced
        };
        if raced {
            closing.store(true, Ordering::SeqCst);
            let _ = conn.drain().await;
            return Err(ClusterError::transport("nats rpc server already started"));
        }
        let permits = Arc::new(Semaphore::new(self.config.services.max(1)));
        side.tracker
            .spawn(serve_requests(side.clone(), requests, permits));
        side.tracker.spawn(serve_binds(side.clone(), binds));
        tracing::info!(server = %self.me, "nats rpc server started");
        Ok(())
    }

    async fn subscribe(&self, uid: &str) -> Result<UserSubscription, ClusterError> {
        let side = self
            .server()
            .clone()
            .ok_or(ClusterError::NotRunning("rpc server"))?;
        let frontend_type = &self.me.server_type;
        let pushes = side
            .conn
            .subscribe(subjects::user_push(frontend_type, uid))
            .await
            .map_err(ClusterError::transport)?;
        let kicks = side
            .conn
            .subscribe(subjects::user_kick(frontend_type, uid))
            .await
            .map_err(ClusterError::transport)?;
        side.conn.flush().await.map_err(ClusterError::transport)?;
        let cancel = side.cancel.child_token();
        let task = side
            .tracker
            .spawn(serve_user(side.clone(), pushes, kicks, cancel.clone()));
        Ok(UserSubscription::new(
            uid,
            NatsUserGuard {
                cancel,
                task: Mutex::new(Some(task)),
            },
        ))
    }

    async fn stop_server(&self) {
        let Some(side) = self.server().take() else {
            return;
        };
        side.cancel.cancel();
        side.tracker.close();
        if tokio::time::timeout(self.config.drain_timeout, side.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                server = %self.me,
                "nats rpc server: requests still running after the drain timeout"
            );
        }
        side.closing.store(true, Ordering::SeqCst);
        // Publishes are only queued: flush the last replies before draining.
        if let Err(err) = side.conn.flush().await {
            tracing::warn!(%err, "nats rpc server: flushing the connection failed");
        }
        if let Err(err) = side.conn.drain().await {
            tracing::warn!(%err, "nats rpc server: draining the connection failed");
        }
        tracing::info!(server = %self.me, "nats rpc server stopped");
    }
}

impl Drop for NatsRpc {
    fn drop(&mut self) {
        // The client connection closes with us: not an error.
        self.client_closing.store(true, Ordering::SeqCst);
        if let Some(side) = self.server().take() {
            side.closing.store(true, Ordering::SeqCst);
            side.cancel.cancel();
        }
    }
}

impl std::fmt::Debug for NatsRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsRpc")
            .field("me", &self.me)
            .field("url", &self.config.url)
            .finish_non_exhaustive()
    }
}

impl RpcClient for NatsRpc {
    fn request(
        &self,
        target: &ServerInfo,
        request: protos::Request,
        timeout: Duration,
    ) -> ClusterFuture<'_, Result<protos::Response, ClusterError>> {
        let subject = subjects::server(&target.server_type, &target.id);
        let peer_id = target.id.clone();
        Box::pin(async move {
            let route = request.route().to_owned();
            let nats_request = async_nats::Request::new()
                .payload(Bytes::from(request.encode_to_vec()))
                .timeout(Some(timeout));
            let reply = self
                .client
                .send_request(subject.clone(), nats_request)
                .await
                .map_err(|err| match err.kind() {
                    RequestErrorKind::TimedOut => ClusterError::Timeout {
                        timeout,
                        route,
                        server: self.me.id.clone(),
                        peer_id,
                    },
                    RequestErrorKind::NoResponders => ClusterError::NoResponders { subject },
                    _ => ClusterError::transport(err),
                })?;
            Ok(protos::Response::decode(reply.payload)?)
        })
    }

    fn push_to_user(
        &self,
        frontend_type: &str,
        push: protos::Push,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        let subject = subjects::user_push(frontend_type, &push.uid);
        Box::pin(self.publish(subject, push.encode_to_vec()))
    }

    fn kick_user(
        &self,
        frontend_type: &str,
        kick: protos::KickMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        let subject = subjects::user_kick(frontend_type, &kick.user_id);
        Box::pin(self.publish(subject, kick.encode_to_vec()))
    }

    fn broadcast_bind(
        &self,
        frontend_type: &str,
        bind: protos::BindMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        let subject = subjects::bindings(frontend_type);
        Box::pin(self.publish(subject, bind.encode_to_vec()))
    }
}

impl RpcServer for NatsRpc {
    fn start(&self, inbound: Arc<dyn Inbound>) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(self.start_server(inbound))
    }

    fn subscribe_user(
        &self,
        uid: &str,
    ) -> ClusterFuture<'_, Result<UserSubscription, ClusterError>> {
        let uid = uid.to_owned();
        Box::pin(async move { self.subscribe(&uid).await })
    }

    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            self.stop_server().await;
            Ok(())
        })
    }
}

/// Opens a connection with Pitaya's options.
///
/// `closed` is cancelled when the connection closes for good, unless
/// `closing` was set first (a deliberate close).
async fn connect(
    config: &NatsConfig,
    name: String,
    subscription_capacity: Option<usize>,
    closed: &CancellationToken,
    closing: Arc<AtomicBool>,
) -> Result<Client, ClusterError> {
    let wait = config.reconnect_wait;
    let jitter = config.reconnect_jitter;
    let closed = closed.clone();
    let log_name = name.clone();
    let mut options = ConnectOptions::new()
        .name(name)
        .connection_timeout(config.connection_timeout)
        .ping_interval(config.ping_interval)
        .max_reconnects(config.max_reconnection_retries)
        // No wait before the first attempt (async-nats counts the initial
        // connection as attempt 0 or 1), then Go's wait plus jitter.
        .reconnect_delay_callback(move |attempts| {
            if attempts <= 1 {
                Duration::ZERO
            } else {
                wait + random_up_to(jitter)
            }
        })
        .event_callback(move |event| {
            let closed = closed.clone();
            let closing = closing.clone();
            let name = log_name.clone();
            async move {
                match event {
                    Event::Connected => tracing::info!(name, "nats: connected"),
                    Event::Disconnected => tracing::warn!(name, "nats: disconnected"),
                    Event::Closed if closing.load(Ordering::SeqCst) => {
                        tracing::debug!(name, "nats: connection closed");
                    }
                    Event::Closed | Event::ClientError(ClientError::MaxReconnects) => {
                        tracing::error!(name, event = %event, "nats: connection closed for good");
                        closed.cancel();
                    }
                    Event::Draining => tracing::debug!(name, "nats: draining"),
                    Event::SlowConsumer(sid) => {
                        tracing::warn!(name, sid, "nats: slow consumer, messages dropped");
                    }
                    other => tracing::warn!(name, event = %other, "nats event"),
                }
            }
        });
    if let Some(capacity) = subscription_capacity {
        options = options.subscription_capacity(capacity.max(1));
    }
    if config.retry_on_initial_connect {
        options = options.retry_on_initial_connect();
    }
    options
        .connect(config.url.as_str())
        .await
        .map_err(ClusterError::transport)
}

/// A random duration in `[0, max]`.
fn random_up_to(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(..=nanos))
}

/// Answers requests until stopped, then drains what is buffered.
async fn serve_requests(side: Arc<ServerSide>, mut requests: Subscriber, permits: Arc<Semaphore>) {
    let mut draining = false;
    loop {
        let message = if draining {
            requests.next().await
        } else {
            tokio::select! {
                biased;
                () = side.cancel.cancelled() => {
                    draining = true;
                    if let Err(err) = requests.drain().await {
                        tracing::warn!(%err, "nats rpc server: draining requests failed");
                        break;
                    }
                    continue;
                }
                message = requests.next() => message,
            }
        };
        let Some(message) = message else { break };
        let subject = message.subject.as_str();
        let mut request = match protos::Request::decode(message.payload.clone()) {
            Ok(request) => request,
            Err(err) => {
                tracing::warn!(
                    subject,
                    %err,
                    payload_len = message.payload.len(),
                    "rpc server: dropping undecodable request"
                );
                continue;
            }
        };
        let reply = message.reply.as_ref().map(|reply| reply.to_string());
        if let Some(msg) = request.msg.as_mut() {
            msg.reply = reply.clone().unwrap_or_default();
        }
        let Some(request) = check_request(request, subject, message.payload.len()) else {
            continue;
        };
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let side_for_task = side.clone();
        side.tracker.spawn(async move {
            let _permit = permit;
            let route = request.route().to_owned();
            let response = handle_request(&*side_for_task.inbound, request).await;
            let Some(reply) = reply else {
                tracing::warn!(route, "rpc server: request without a reply subject");
                return;
            };
            send_response(&side_for_task.conn, &route, reply, &response).await;
        });
    }
}

/// Publishes a response on its reply subject. A response the NATS server
/// would refuse (larger than its maximum payload) is replaced by a
/// `PIT-500` error saying so, so the caller gets an answer instead of
/// waiting for its timeout.
async fn send_response(conn: &Client, route: &str, reply: String, response: &protos::Response) {
    let payload = Bytes::from(response.encode_to_vec());
    let len = payload.len();
    let Err(err) = conn.publish(reply.clone(), payload).await else {
        return;
    };
    if err.kind() != PublishErrorKind::MaxPayloadExceeded {
        tracing::error!(route, %err, "rpc server: sending the response failed");
        return;
    }
    let max = conn.server_info().max_payload;
    tracing::error!(
        route,
        len,
        max,
        "rpc server: response larger than the nats maximum payload"
    );
    let refusal = protos::Response::err(PitayaError::new(
        codes::INTERNAL,
        format!(
            "rpc server: the response to {route} is {len} bytes, over the nats maximum payload of {max} bytes"
        ),
    ));
    if let Err(err) = conn
        .publish(reply, Bytes::from(refusal.encode_to_vec()))
        .await
    {
        tracing::error!(route, %err, "rpc server: sending the error response failed");
    }
}

/// Hands bind broadcasts to the inbound, one at a time.
async fn serve_binds(side: Arc<ServerSide>, mut binds: Subscriber) {
    loop {
        let message = tokio::select! {
            () = side.cancel.cancelled() => break,
            message = binds.next() => message,
        };
        let Some(message) = message else { break };
        match protos::BindMsg::decode(message.payload) {
            Ok(bind) => side.inbound.on_bind(bind).await,
            Err(err) => tracing::warn!(%err, "rpc server: dropping undecodable bind message"),
        }
    }
    let _ = binds.unsubscribe().await;
}

/// Hands one uid's pushes and kicks to the inbound, in order, until the
/// subscription is closed.
async fn serve_user(
    side: Arc<ServerSide>,
    mut pushes: Subscriber,
    mut kicks: Subscriber,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            message = pushes.next() => {
                let Some(message) = message else { break };
                match protos::Push::decode(message.payload) {
                    Ok(push) => side.inbound.on_push(push).await,
                    Err(err) => tracing::warn!(%err, "rpc server: dropping undecodable push"),
                }
            }
            message = kicks.next() => {
                let Some(message) = message else { break };
                match protos::KickMsg::decode(message.payload) {
                    Ok(kick) => {
                        let answer = side.inbound.on_kick(kick).await;
                        // Go publishes kicks without a reply subject; answer
                        // those sent as requests.
                        if let Some(reply) = message.reply {
                            let _ = side.conn.publish(reply, Bytes::from(answer.encode_to_vec())).await;
                        }
                    }
                    Err(err) => tracing::warn!(%err, "rpc server: dropping undecodable kick"),
                }
            }
        }
    }
    let _ = pushes.unsubscribe().await;
    let _ = kicks.unsubscribe().await;
    // Once flushed, the server has processed the UNSUBs.
    let _ = side.conn.flush().await;
}

/// Ends a NATS user subscription.
struct NatsUserGuard {
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SubscriptionGuard for NatsUserGuard {
    fn close(self: Box<Self>) -> ClusterFuture<'static, ()> {
        self.cancel.cancel();
        crate::serve::join_delivery_task(&self.task)
    }
}

impl Drop for NatsUserGuard {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

//! In-process discovery and RPC: several "servers" in one process share a
//! [`MemoryCluster`] and see each other as they would through etcd and NATS.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use pitaya_core::cluster::{
    ClusterError, ClusterFuture, DiscoveryEvent, Inbound, RpcClient, RpcServer, ServerInfo,
    ServiceDiscovery, SubscriptionGuard, UserSubscription,
};
use pitaya_core::protos;
use tokio::sync::{Semaphore, broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry::Registry;
use crate::serve::{check_request, handle_request};
use crate::subjects;

/// The shared state of an in-process cluster: which servers are registered
/// and which RPC servers listen. Cheap to clone; clones share the state.
#[derive(Clone, Default)]
pub struct MemoryCluster {
    inner: Arc<ClusterInner>,
}

#[derive(Default)]
struct ClusterInner {
    discovery: Mutex<DiscoveryState>,
    rpc: Mutex<RpcState>,
}

#[derive(Default)]
struct DiscoveryState {
    servers: BTreeMap<String, Arc<ServerInfo>>,
    /// The views of the started discoveries, updated synchronously.
    views: Vec<Weak<Registry>>,
}

#[derive(Default)]
struct RpcState {
    /// Started RPC servers by server ID.
    endpoints: HashMap<String, Arc<Endpoint>>,
    /// Push/kick subscriptions by (frontend type, uid).
    users: HashMap<(String, String), Vec<UserSender>>,
    next_subscription: u64,
}

struct UserSender {
    id: u64,
    server_id: String,
    sender: mpsc::UnboundedSender<UserMessage>,
}

enum UserMessage {
    Push(protos::Push),
    Kick(protos::KickMsg),
}

impl MemoryCluster {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    fn discovery(&self) -> MutexGuard<'_, DiscoveryState> {
        self.inner
            .discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn rpc(&self) -> MutexGuard<'_, RpcState> {
        self.inner
            .rpc
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCluster")
            .field("servers", &self.discovery().servers.len())
            .finish_non_exhaustive()
    }
}

/// [`ServiceDiscovery`] over a [`MemoryCluster`]: registration is seen by
/// every other discovery of the cluster at once.
pub struct MemoryDiscovery {
    cluster: MemoryCluster,
    registry: Arc<Registry>,
    me: Mutex<Option<Arc<ServerInfo>>>,
}

impl MemoryDiscovery {
    /// A discovery on `cluster`.
    pub fn new(cluster: &MemoryCluster) -> Self {
        Self::with_blacklist(cluster, Vec::new())
    }

    /// A discovery that ignores the servers of the `blacklist`ed types.
    pub fn with_blacklist(cluster: &MemoryCluster, blacklist: Vec<String>) -> Self {
        Self {
            cluster: cluster.clone(),
            registry: Arc::new(Registry::new(blacklist)),
            me: Mutex::new(None),
        }
    }

    fn me(&self) -> MutexGuard<'_, Option<Arc<ServerInfo>>> {
        self.me.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, me: ServerInfo) -> Result<(), ClusterError> {
        me.validate()?;
        let mut slot = self.me();
        if slot.is_some() {
            return Err(ClusterError::discovery("memory discovery already started"));
        }
        let mut state = self.cluster.discovery();
        if state.servers.contains_key(&me.id) {
            return Err(ClusterError::InvalidServer(format!(
                "server id {:?} is already registered",
                me.id
            )));
        }
        let me = Arc::new(me);
        self.registry.set_me(Some(me.id.clone()));
        state.servers.insert(me.id.clone(), me.clone());
        state.views.retain(|view| view.strong_count() > 0);
        for view in state.views.iter().filter_map(Weak::upgrade) {
            view.add(me.clone());
        }
        state.views.push(Arc::downgrade(&self.registry));
        for server in state.servers.values() {
            self.registry.add(server.clone());
        }
        *slot = Some(me);
        Ok(())
    }

    fn deregister(&self) {
        let Some(me) = self.me().take() else {
            return;
        };
        let mut state = self.cluster.discovery();
        state.servers.remove(&me.id);
        let own = Arc::downgrade(&self.registry);
        state
            .views
            .retain(|view| view.strong_count() > 0 && !view.ptr_eq(&own));
        for view in state.views.iter().filter_map(Weak::upgrade) {
            view.remove(&me.id);
        }
        self.registry.remove(&me.id);
    }
}

impl Drop for MemoryDiscovery {
    fn drop(&mut self) {
        self.deregister();
    }
}

impl ServiceDiscovery for MemoryDiscovery {
    fn start(&self, me: ServerInfo) -> ClusterFuture<'_, Result<(), ClusterError>> {
        let result = self.register(me);
        Box::pin(async move { result })
    }

    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>> {
        self.deregister();
        Box::pin(async { Ok(()) })
    }

    fn servers_of_type(&self, server_type: &str) -> Vec<Arc<ServerInfo>> {
        self.registry.servers_of_type(server_type)
    }

    fn server(&self, id: &str) -> Option<Arc<ServerInfo>> {
        self.registry.server(id)
    }

    fn servers(&self) -> Vec<Arc<ServerInfo>> {
        self.registry.servers()
    }

    fn events(&self) -> broadcast::Receiver<DiscoveryEvent> {
        self.registry.events()
    }
}

/// Settings of a [`MemoryRpc`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MemoryRpcConfig {
    /// How many requests are handled at once (Go's
    /// `cluster.rpc.server.nats.services`, 30).
    pub services: usize,
    /// How long [`RpcServer::stop`] waits for requests in flight (5 s).
    pub drain_timeout: Duration,
}

impl Default for MemoryRpcConfig {
    fn default() -> Self {
        Self {
            services: 30,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// [`RpcClient`] and [`RpcServer`] over a [`MemoryCluster`], with the
/// semantics of [`NatsRpc`]: requests to a server that is
/// not started fail with [`ClusterError::NoResponders`], slow ones with
/// [`ClusterError::Timeout`], a request without `msg` is dropped (the caller
/// times out), pushes and kicks reach every subscription of the uid, bind
/// broadcasts every started server of the type.
///
#[cfg_attr(feature = "nats", doc = "[`NatsRpc`]: crate::NatsRpc")]
#[cfg_attr(
    not(feature = "nats"),
    doc = "[`NatsRpc`]: https://docs.rs/pitaya-cluster/latest/pitaya_cluster/struct.NatsRpc.html"
)]
pub struct MemoryRpc {
    cluster: MemoryCluster,
    me: Arc<ServerInfo>,
    config: MemoryRpcConfig,
    endpoint: Mutex<Option<Arc<Endpoint>>>,
}

/// A started memory RPC server.
struct Endpoint {
    server_type: String,
    inbound: Arc<dyn Inbound>,
    permits: Arc<Semaphore>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    binds: mpsc::UnboundedSender<protos::BindMsg>,
}

impl Endpoint {
    /// Runs the request in the background; the receiver gets the response,
    /// or is dropped for a malformed request.
    fn dispatch(&self, request: protos::Request) -> Option<oneshot::Receiver<protos::Response>> {
        let request = check_request(request, "memory", 0)?;
        let (reply, response) = oneshot::channel();
        let inbound = self.inbound.clone();
        let permits = self.permits.clone();
        self.tracker.spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else {
                return;
            };
            let _ = reply.send(handle_request(&*inbound, request).await);
        });
        Some(response)
    }
}

impl MemoryRpc {
    /// The RPC of server `me` on `cluster`, with default settings.
    pub fn new(cluster: &MemoryCluster, me: ServerInfo) -> Self {
        Self::with_config(cluster, me, MemoryRpcConfig::default())
    }

    /// The RPC of server `me` on `cluster`.
    pub fn with_config(cluster: &MemoryCluster, me: ServerInfo, config: MemoryRpcConfig) -> Self {
        Self {
            cluster: cluster.clone(),
            me: Arc::new(me),
            config,
            endpoint: Mutex::new(None),
        }
    }

    /// This server.
    pub fn me(&self) -> &Arc<ServerInfo> {
        &self.me
    }

    fn endpoint(&self) -> MutexGuard<'_, Option<Arc<Endpoint>>> {
        self.endpoint.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn user_senders(
        &self,
        frontend_type: &str,
        uid: &str,
    ) -> Vec<mpsc::UnboundedSender<UserMessage>> {
        self.cluster
            .rpc()
            .users
            .get(&(frontend_type.to_owned(), uid.to_owned()))
            .map(|subs| subs.iter().map(|sub| sub.sender.clone()).collect())
            .unwrap_or_default()
    }

    fn start_endpoint(&self, inbound: Arc<dyn Inbound>) -> Result<(), ClusterError> {
        self.me.validate()?;
        let mut slot = self.endpoint();
        if slot.is_some() {
            return Err(ClusterError::transport("memory rpc server already started"));
        }
        let (binds, mut bind_queue) = mpsc::unbounded_channel::<protos::BindMsg>();
        let endpoint = Arc::new(Endpoint {
            server_type: self.me.server_type.clone(),
            inbound: inbound.clone(),
            permits: Arc::new(Semaphore::new(self.config.services.max(1))),
            tracker: TaskTracker::new(),
            cancel: CancellationToken::new(),
            binds,
        });
        let cancel = endpoint.cancel.clone();
        endpoint.tracker.spawn(async move {
            loop {
                let bind = tokio::select! {
                    () = cancel.cancelled() => break,
                    bind = bind_queue.recv() => bind,
                };
                let Some(bind) = bind else { break };
                inbound.on_bind(bind).await;
            }
        });
        {
            let mut rpc = self.cluster.rpc();
            if rpc.endpoints.contains_key(&self.me.id) {
                return Err(ClusterError::InvalidServer(format!(
                    "an rpc server with id {:?} is already started",
                    self.me.id
                )));
            }
            rpc.endpoints.insert(self.me.id.clone(), endpoint.clone());
        }
        *slot = Some(endpoint);
        Ok(())
    }

    fn subscribe(&self, uid: &str) -> Result<UserSubscription, ClusterError> {
        let endpoint = self
            .endpoint()
            .clone()
            .ok_or(ClusterError::NotRunning("rpc server"))?;
        let key = (self.me.server_type.clone(), uid.to_owned());
        let (sender, mut queue) = mpsc::unbounded_channel();
        let id = {
            let mut rpc = self.cluster.rpc();
            rpc.next_subscription += 1;
            let id = rpc.next_subscription;
            rpc.users.entry(key.clone()).or_default().push(UserSender {
                id,
                server_id: self.me.id.clone(),
                sender,
            });
            id
        };
        let inbound = endpoint.inbound.clone();
        let cancel = endpoint.cancel.clone();
        let task = endpoint.tracker.spawn(async move {
            loop {
                let message = tokio::select! {
                    () = cancel.cancelled() => break,
                    message = queue.recv() => message,
                };
                match message {
                    Some(UserMessage::Push(push)) => inbound.on_push(push).await,
                    Some(UserMessage::Kick(kick)) => {
                        inbound.on_kick(kick).await;
                    }
                    None => break,
                }
            }
        });
        Ok(UserSubscription::new(
            uid,
            MemoryUserGuard {
                cluster: Arc::downgrade(&self.cluster.inner),
                key,
                id,
                task: Mutex::new(Some(task)),
            },
        ))
    }

    async fn stop_endpoint(&self) {
        let Some(endpoint) = self.endpoint().take() else {
            return;
        };
        {
            let mut rpc = self.cluster.rpc();
            if rpc
                .endpoints
                .get(&self.me.id)
                .is_some_and(|e| Arc::ptr_eq(e, &endpoint))
            {
                rpc.endpoints.remove(&self.me.id);
            }
            for subs in rpc.users.values_mut() {
                subs.retain(|sub| sub.server_id != self.me.id);
            }
            rpc.users.retain(|_, subs| !subs.is_empty());
        }
        endpoint.cancel.cancel();
        endpoint.tracker.close();
        if tokio::time::timeout(self.config.drain_timeout, endpoint.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                server = %self.me,
                "memory rpc server: requests still running after the drain timeout"
            );
        }
    }
}

impl Drop for MemoryRpc {
    fn drop(&mut self) {
        if let Some(endpoint) = self.endpoint().take() {
            endpoint.cancel.cancel();
            let mut rpc = self.cluster.rpc();
            rpc.endpoints.remove(&self.me.id);
            for subs in rpc.users.values_mut() {
                subs.retain(|sub| sub.server_id != self.me.id);
            }
            rpc.users.retain(|_, subs| !subs.is_empty());
        }
    }
}

impl RpcClient for MemoryRpc {
    fn request(
        &self,
        target: &ServerInfo,
        request: protos::Request,
        timeout: Duration,
    ) -> ClusterFuture<'_, Result<protos::Response, ClusterError>> {
        let endpoint = self
            .cluster
            .rpc()
            .endpoints
            .get(&target.id)
            .filter(|endpoint| endpoint.server_type == target.server_type)
            .cloned();
        let subject = subjects::server(&target.server_type, &target.id);
        let peer_id = target.id.clone();
        Box::pin(async move {
            let Some(endpoint) = endpoint else {
                return Err(ClusterError::NoResponders { subject });
            };
            let route = request.route().to_owned();
            let response = endpoint.dispatch(request);
            let wait = async move {
                match response {
                    Some(response) => match response.await {
                        Ok(response) => response,
                        Err(_) => std::future::pending().await,
                    },
                    None => std::future::pending().await,
                }
            };
            tokio::time::timeout(timeout, wait)
                .await
                .map_err(|_| ClusterError::Timeout {
                    timeout,
                    route,
                    server: self.me.id.clone(),
                    peer_id,
                })
        })
    }

    fn push_to_user(
        &self,
        frontend_type: &str,
        push: protos::Push,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        for sender in self.user_senders(frontend_type, &push.uid) {
            let _ = sender.send(UserMessage::Push(push.clone()));
        }
        Box::pin(async { Ok(()) })
    }

    fn kick_user(
        &self,
        frontend_type: &str,
        kick: protos::KickMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        for sender in self.user_senders(frontend_type, &kick.user_id) {
            let _ = sender.send(UserMessage::Kick(kick.clone()));
        }
        Box::pin(async { Ok(()) })
    }

    fn broadcast_bind(
        &self,
        frontend_type: &str,
        bind: protos::BindMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        for endpoint in self.cluster.rpc().endpoints.values() {
            if endpoint.server_type == frontend_type {
                let _ = endpoint.binds.send(bind.clone());
            }
        }
        Box::pin(async { Ok(()) })
    }
}

impl RpcServer for MemoryRpc {
    fn start(&self, inbound: Arc<dyn Inbound>) -> ClusterFuture<'_, Result<(), ClusterError>> {
        let result = self.start_endpoint(inbound);
        Box::pin(async move { result })
    }

    fn subscribe_user(
        &self,
        uid: &str,
    ) -> ClusterFuture<'_, Result<UserSubscription, ClusterError>> {
        let result = self.subscribe(uid);
        Box::pin(async move { result })
    }

    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            self.stop_endpoint().await;
            Ok(())
        })
    }
}

/// Ends a memory user subscription.
struct MemoryUserGuard {
    cluster: Weak<ClusterInner>,
    key: (String, String),
    id: u64,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl MemoryUserGuard {
    fn unsubscribe(&self) {
        let Some(cluster) = self.cluster.upgrade() else {
            return;
        };
        let mut rpc = cluster.rpc.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(subs) = rpc.users.get_mut(&self.key) {
            subs.retain(|sub| sub.id != self.id);
            if subs.is_empty() {
                rpc.users.remove(&self.key);
            }
        }
    }
}

impl SubscriptionGuard for MemoryUserGuard {
    fn close(self: Box<Self>) -> ClusterFuture<'static, ()> {
        // Dropping the sender lets the task deliver what is queued and end.
        self.unsubscribe();
        crate::serve::join_delivery_task(&self.task)
    }
}

impl Drop for MemoryUserGuard {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use pitaya_core::PitayaError;

    use super::*;

    /// Records what arrives; answers requests with `"<route>:<data>"`,
    /// sleeping `delay` first; panics on route `x.panic`.
    struct Recorder {
        delay: Duration,
        running: AtomicUsize,
        max_running: AtomicUsize,
        pushes: mpsc::UnboundedSender<protos::Push>,
        kicks: mpsc::UnboundedSender<protos::KickMsg>,
        binds: mpsc::UnboundedSender<protos::BindMsg>,
    }

    struct Received {
        pushes: mpsc::UnboundedReceiver<protos::Push>,
        kicks: mpsc::UnboundedReceiver<protos::KickMsg>,
        binds: mpsc::UnboundedReceiver<protos::BindMsg>,
    }

    fn recorder(delay: Duration) -> (Arc<Recorder>, Received) {
        let (pushes, push_rx) = mpsc::unbounded_channel();
        let (kicks, kick_rx) = mpsc::unbounded_channel();
        let (binds, bind_rx) = mpsc::unbounded_channel();
        (
            Arc::new(Recorder {
                delay,
                running: AtomicUsize::new(0),
                max_running: AtomicUsize::new(0),
                pushes,
                kicks,
                binds,
            }),
            Received {
                pushes: push_rx,
                kicks: kick_rx,
                binds: bind_rx,
            },
        )
    }

    impl Inbound for Recorder {
        fn on_request(&self, request: protos::Request) -> ClusterFuture<'_, protos::Response> {
            Box::pin(async move {
                let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.max_running.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(self.delay).await;
                self.running.fetch_sub(1, Ordering::SeqCst);
                let msg = request.msg.unwrap_or_default();
                assert_ne!(msg.route, "x.panic", "handler panics on purpose");
                let mut data = format!("{}:", msg.route).into_bytes();
                data.extend_from_slice(&msg.data);
                protos::Response::ok(data)
            })
        }

        fn on_push(&self, push: protos::Push) -> ClusterFuture<'_, ()> {
            let _ = self.pushes.send(push);
            Box::pin(async {})
        }

        fn on_kick(&self, kick: protos::KickMsg) -> ClusterFuture<'_, protos::KickAnswer> {
            let _ = self.kicks.send(kick);
            Box::pin(async { protos::KickAnswer { kicked: true } })
        }

        fn on_bind(&self, bind: protos::BindMsg) -> ClusterFuture<'_, ()> {
            let _ = self.binds.send(bind);
            Box::pin(async {})
        }
    }

    fn request(route: &str, data: &'static [u8]) -> protos::Request {
        protos::Request {
            r#type: protos::RpcType::User as i32,
            msg: Some(protos::Msg {
                route: route.into(),
                data: Bytes::from_static(data),
                ..protos::Msg::default()
            }),
            ..protos::Request::default()
        }
    }

    fn server(id: &str, server_type: &str, frontend: bool) -> ServerInfo {
        ServerInfo::new(id, server_type, frontend).with_hostname("test")
    }

    #[tokio::test]
    async fn discovery_sees_others_and_emits_events() {
        let cluster = MemoryCluster::new();
        let front = MemoryDiscovery::new(&cluster);
        let mut events = front.events();
        front.start(server("f1", "connector", true)).await.unwrap();
        assert!(events.try_recv().is_err(), "no event about self");
        assert_eq!(front.servers_of_type("connector")[0].id, "f1");

        let room = MemoryDiscovery::new(&cluster);
        room.start(server("r1", "room", false)).await.unwrap();
        assert_eq!(
            events.try_recv().unwrap(),
            DiscoveryEvent::Added(Arc::new(server("r1", "room", false)))
        );
        // The late starter sees the earlier one.
        assert_eq!(room.server("f1").unwrap().server_type, "connector");
        assert_eq!(front.servers().len(), 2);

        // Duplicate ids are refused.
        let dup = MemoryDiscovery::new(&cluster);
        assert!(dup.start(server("r1", "room", false)).await.is_err());
        assert!(room.start(server("r9", "room", false)).await.is_err());

        room.stop().await.unwrap();
        assert_eq!(
            events.try_recv().unwrap(),
            DiscoveryEvent::Removed(Arc::new(server("r1", "room", false)))
        );
        assert!(front.servers_of_type("room").is_empty());

        // Dropping deregisters too.
        let other = MemoryDiscovery::new(&cluster);
        other.start(server("r2", "room", false)).await.unwrap();
        assert_eq!(front.servers_of_type("room").len(), 1);
        drop(other);
        assert!(front.servers_of_type("room").is_empty());
    }

    #[tokio::test]
    async fn discovery_blacklist() {
        let cluster = MemoryCluster::new();
        let a = MemoryDiscovery::with_blacklist(&cluster, vec!["bot".into()]);
        a.start(server("a", "bot", false)).await.unwrap();
        let b = MemoryDiscovery::new(&cluster);
        b.start(server("b", "bot", false)).await.unwrap();
        assert_eq!(a.servers_of_type("bot").len(), 1, "self only");
        assert_eq!(b.servers_of_type("bot").len(), 2);
    }

    #[tokio::test]
    async fn request_round_trip_and_no_responders() {
        let cluster = MemoryCluster::new();
        let room = MemoryRpc::new(&cluster, server("r1", "room", false));
        let (inbound, _rx) = recorder(Duration::ZERO);
        room.start(inbound).await.unwrap();
        let front = MemoryRpc::new(&cluster, server("f1", "connector", true));

        let response = front
            .request(
                room.me(),
                request("room.room.join", b"hi"),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(
            response.into_result().unwrap(),
            Bytes::from_static(b"room.room.join:hi")
        );

        let missing = server("r2", "room", false);
        let err = front
            .request(
                &missing,
                request("room.room.join", b""),
                Duration::from_secs(1),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ClusterError::NoResponders { subject } if subject == "pitaya/servers/room/r2"),
            "{err:?}"
        );
        // Right id, wrong type: nobody listens on that subject either.
        let wrong_type = server("r1", "lobby", false);
        assert!(matches!(
            front
                .request(&wrong_type, request("a.b.c", b""), Duration::from_secs(1))
                .await,
            Err(ClusterError::NoResponders { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn slow_handler_times_out_with_pit_408() {
        let cluster = MemoryCluster::new();
        let room = MemoryRpc::new(&cluster, server("r1", "room", false));
        room.start(recorder(Duration::from_secs(10)).0)
            .await
            .unwrap();
        let front = MemoryRpc::new(&cluster, server("f1", "connector", true));
        let err = front
            .request(
                room.me(),
                request("room.room.slow", b""),
                Duration::from_millis(500),
            )
            .await
            .unwrap_err();
        let err = PitayaError::from(err);
        assert_eq!(err.code, "PIT-408");
        assert_eq!(err.metadata["timeout"], "500ms");
        assert_eq!(err.metadata["route"], "room.room.slow");
        assert_eq!(err.metadata["server"], "f1");
        assert_eq!(err.metadata["peer.id"], "r1");
    }

    #[tokio::test(start_paused = true)]
    async fn malformed_request_is_dropped_and_panics_become_pit_500() {
        let cluster = MemoryCluster::new();
        let room = MemoryRpc::new(&cluster, server("r1", "room", false));
        room.start(recorder(Duration::ZERO).0).await.unwrap();
        let front = MemoryRpc::new(&cluster, server("f1", "connector", true));
        let no_msg = protos::Request::default();
        assert!(matches!(
            front
                .request(room.me(), no_msg, Duration::from_secs(1))
                .await,
            Err(ClusterError::Timeout { .. })
        ));
        let response = front
            .request(room.me(), request("x.panic", b""), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(response.into_result().unwrap_err().code, "PIT-500");
        // The server still answers.
        assert!(
            front
                .request(room.me(), request("a.b.c", b""), Duration::from_secs(1))
                .await
                .is_ok()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn concurrency_is_bounded_and_stop_drains() {
        let cluster = MemoryCluster::new();
        let config = MemoryRpcConfig {
            services: 2,
            ..MemoryRpcConfig::default()
        };
        let room = Arc::new(MemoryRpc::with_config(
            &cluster,
            server("r1", "room", false),
            config,
        ));
        let (inbound, _rx) = recorder(Duration::from_millis(100));
        room.start(inbound.clone()).await.unwrap();
        let front = Arc::new(MemoryRpc::new(&cluster, server("f1", "connector", true)));
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let front = front.clone();
                let target = room.me().clone();
                tokio::spawn(async move {
                    front
                        .request(&target, request("a.b.c", b""), Duration::from_secs(5))
                        .await
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(10)).await;
        room.stop().await.unwrap();
        for call in calls {
            assert!(
                call.await.unwrap().is_ok(),
                "in-flight requests are answered"
            );
        }
        assert_eq!(inbound.max_running.load(Ordering::SeqCst), 2);
        // Stopped: nobody listens any more.
        assert!(matches!(
            front
                .request(room.me(), request("a.b.c", b""), Duration::from_secs(1))
                .await,
            Err(ClusterError::NoResponders { .. })
        ));
    }

    #[tokio::test]
    async fn push_kick_bind_and_unsubscribe() {
        let cluster = MemoryCluster::new();
        let front1 = MemoryRpc::new(&cluster, server("f1", "connector", true));
        let front2 = MemoryRpc::new(&cluster, server("f2", "connector", true));
        let room = MemoryRpc::new(&cluster, server("r1", "room", false));
        let (in1, mut rx1) = recorder(Duration::ZERO);
        let (in2, mut rx2) = recorder(Duration::ZERO);
        let (in_room, mut rx_room) = recorder(Duration::ZERO);
        front1.start(in1).await.unwrap();
        front2.start(in2).await.unwrap();
        room.start(in_room).await.unwrap();

        let sub = front1.subscribe_user("u1").await.unwrap();
        assert_eq!(sub.uid(), "u1");
        for i in 0..3u8 {
            room.push_to_user(
                "connector",
                protos::Push {
                    route: "chat.msg".into(),
                    uid: "u1".into(),
                    data: Bytes::from(vec![i]),
                },
            )
            .await
            .unwrap();
        }
        for i in 0..3u8 {
            let push = rx1.pushes.recv().await.unwrap();
            assert_eq!(
                (push.uid.as_str(), &push.data[..]),
                ("u1", &[i][..]),
                "in order"
            );
        }
        // Other uid, other type: not delivered.
        room.push_to_user(
            "connector",
            protos::Push {
                uid: "u2".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        room.push_to_user(
            "lobby",
            protos::Push {
                uid: "u1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        room.kick_user(
            "connector",
            protos::KickMsg {
                user_id: "u1".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(rx1.kicks.recv().await.unwrap().user_id, "u1");
        assert!(rx1.pushes.try_recv().is_err());

        room.broadcast_bind(
            "connector",
            protos::BindMsg {
                uid: "u1".into(),
                fid: "f1".into(),
            },
        )
        .await
        .unwrap();
        assert_eq!(rx1.binds.recv().await.unwrap().fid, "f1");
        assert_eq!(rx2.binds.recv().await.unwrap().uid, "u1");
        assert!(
            rx_room.binds.try_recv().is_err(),
            "other types do not get binds"
        );

        sub.close().await;
        room.push_to_user(
            "connector",
            protos::Push {
                uid: "u1".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        tokio::task::yield_now().await;
        assert!(rx1.pushes.try_recv().is_err(), "unsubscribed");

        // Dropping unsubscribes as well.
        let sub = front2.subscribe_user("u3").await.unwrap();
        drop(sub);
        room.kick_user(
            "connector",
            protos::KickMsg {
                user_id: "u3".into(),
            },
        )
        .await
        .unwrap();
        tokio::task::yield_now().await;
        assert!(rx2.kicks.try_recv().is_err());
        assert!(cluster.rpc().users.is_empty());
    }

    #[tokio::test]
    async fn subscribe_needs_a_started_server() {
        let cluster = MemoryCluster::new();
        let front = MemoryRpc::new(&cluster, server("f1", "connector", true));
        assert!(matches!(
            front.subscribe_user("u1").await,
            Err(ClusterError::NotRunning(_))
        ));
    }
}

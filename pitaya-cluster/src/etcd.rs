//! Service discovery on etcd, as Go Pitaya's `etcdServiceDiscovery`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, LeaseKeepAliveStream, LeaseKeeper, PutOptions,
    WatchOptions, WatchStream,
};
use pitaya_core::cluster::{
    ClusterError, ClusterFuture, DiscoveryEvent, ServerInfo, ServiceDiscovery,
};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry::Registry;

/// Settings of an [`EtcdDiscovery`], with Go Pitaya's defaults
/// (`pitaya.cluster.sd.etcd.*`).
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// etcd endpoints (`endpoints`, `localhost:2379`); `http://` is assumed
    /// without a scheme.
    pub endpoints: Vec<String>,
    /// User name (`user`); authentication is used when user and password
    /// are both non-empty.
    pub user: String,
    /// Password (`pass`).
    pub pass: String,
    /// Connection timeout, also the bound of each etcd call (`dialtimeout`, 5 s).
    pub dial_timeout: Duration,
    /// Key prefix shared by every server of the application (`prefix`, `pitaya/`).
    pub prefix: String,
    /// Lease TTL; the lease is renewed every third of it (`heartbeat.ttl`, 60 s).
    pub heartbeat_ttl: Duration,
    /// Log every lease renewal at debug level (`heartbeat.log`, false).
    pub heartbeat_log: bool,
    /// Interval of the full resync with etcd (`syncservers.interval`, 120 s).
    pub sync_servers_interval: Duration,
    /// Bound of the lease revocation at stop, and of the health check
    /// (`revoke.timeout`, 5 s).
    pub revoke_timeout: Duration,
    /// Bound of one re-registration attempt after the lease was lost; when
    /// exceeded the discovery gives up (`grantlease.timeout`, 60 s).
    pub grant_lease_timeout: Duration,
    /// Failed re-registration attempts before giving up (`grantlease.maxretries`, 15).
    pub grant_lease_max_retries: u32,
    /// Wait between re-registration attempts (`grantlease.retryinterval`, 5 s).
    pub grant_lease_retry_interval: Duration,
    /// Wait after the lease keep-alive failed before re-registering (10 s
    /// in Go, not configurable there).
    pub keepalive_retry_delay: Duration,
    /// Pause after revoking the lease at stop, for the deletion to
    /// propagate (`shutdown.delay`, 300 ms).
    pub shutdown_delay: Duration,
    /// Server types ignored by this discovery, except this server's own
    /// entry (`servertypesblacklist`).
    pub server_types_blacklist: Vec<String>,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["localhost:2379".to_owned()],
            user: String::new(),
            pass: String::new(),
            dial_timeout: Duration::from_secs(5),
            prefix: "pitaya/".to_owned(),
            heartbeat_ttl: Duration::from_secs(60),
            heartbeat_log: false,
            sync_servers_interval: Duration::from_secs(120),
            revoke_timeout: Duration::from_secs(5),
            grant_lease_timeout: Duration::from_secs(60),
            grant_lease_max_retries: 15,
            grant_lease_retry_interval: Duration::from_secs(5),
            keepalive_retry_delay: Duration::from_secs(10),
            shutdown_delay: Duration::from_millis(300),
            server_types_blacklist: Vec::new(),
        }
    }
}

impl EtcdConfig {
    /// The defaults with other endpoints.
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// [`ServiceDiscovery`] on etcd, wire-compatible with Go Pitaya.
///
/// - This server is stored at `<prefix>servers/<type>/<id>` with
///   [`ServerInfo::to_json`] as value, under a lease of
///   [`heartbeat_ttl`](EtcdConfig::heartbeat_ttl) kept alive in the background.
/// - The prefix `<prefix>servers/` is watched: a PUT adds a server whose ID
///   is unknown (a known one is not updated, as in Go), a DELETE removes it.
///   A full resync runs at start, every
///   [`sync_servers_interval`](EtcdConfig::sync_servers_interval) and after
///   the watch had to be re-created; it adds what is missing and removes
///   what is no longer in etcd.
/// - When the lease is lost (keep-alive failure, etcd restarted or wiped),
///   the discovery waits [`keepalive_retry_delay`](EtcdConfig::keepalive_retry_delay),
///   then grants a new lease, puts the key again and resyncs, retrying as
///   configured; if it gives up, [`failed`](Self::failed) resolves (Go
///   Pitaya stops the app then).
/// - [`stop`](ServiceDiscovery::stop) revokes the lease, so the key
///   disappears for every watcher at once.
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
#[derive(Clone)]
pub struct EtcdDiscovery {
    inner: Arc<Inner>,
}

struct Inner {
    config: EtcdConfig,
    registry: Registry,
    running: Mutex<Option<Running>>,
    /// Serializes resyncs and the application of watch events.
    sync_lock: tokio::sync::Mutex<()>,
    /// Revision of the last full listing; older watch events are skipped.
    snapshot_revision: AtomicI64,
    lease_id: AtomicI64,
    failed: watch::Sender<Option<String>>,
}

struct Running {
    client: Client,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl EtcdDiscovery {
    /// A discovery with these settings; nothing connects before
    /// [`start`](ServiceDiscovery::start).
    pub fn new(config: EtcdConfig) -> Self {
        let registry = Registry::new(config.server_types_blacklist.clone());
        Self {
            inner: Arc::new(Inner {
                config,
                registry,
                running: Mutex::new(None),
                sync_lock: tokio::sync::Mutex::new(()),
                snapshot_revision: AtomicI64::new(0),
                lease_id: AtomicI64::new(0),
                failed: watch::channel(None).0,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EtcdConfig {
        &self.inner.config
    }

    /// Whether etcd answers (Go's `IsConnected`: a one-key read bounded by
    /// the revoke timeout). `false` when not started.
    pub async fn is_connected(&self) -> bool {
        let Some(mut client) = self.inner.client() else {
            return false;
        };
        let read = client.get("health-check", Some(GetOptions::new().with_limit(1)));
        matches!(
            tokio::time::timeout(self.inner.config.revoke_timeout, read).await,
            Ok(Ok(_))
        )
    }

    /// Resolves with the reason once the discovery gave up re-registering
    /// this server after losing its lease.
    pub async fn failed(&self) -> String {
        let mut failed = self.inner.failed.subscribe();
        // The guard of the watched value must not live across an await.
        let reason = match failed.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            // The sender lives in `inner`, which `self` keeps alive.
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }

    /// Forces a full resync with etcd now (it also runs periodically).
    pub async fn sync_servers(&self) -> Result<(), ClusterError> {
        let client = self
            .inner
            .client()
            .ok_or(ClusterError::NotRunning("service discovery"))?;
        self.inner.sync(&client).await
    }
}

impl std::fmt::Debug for EtcdDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdDiscovery")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn running(&self) -> MutexGuard<'_, Option<Running>> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn client(&self) -> Option<Client> {
        self.running()
            .as_ref()
            .map(|running| running.client.clone())
    }

    fn servers_prefix(&self) -> String {
        format!("{}servers/", self.config.prefix)
    }

    fn key(&self, server: &ServerInfo) -> String {
        format!(
            "{}{}/{}",
            self.servers_prefix(),
            server.server_type,
            server.id
        )
    }

    /// `<prefix>servers/<type>/<id>` → `(type, id)`.
    fn parse_key(&self, key: &[u8]) -> Option<(String, String)> {
        let key = std::str::from_utf8(key).ok()?;
        let rest = key.strip_prefix(&self.servers_prefix())?;
        let (server_type, id) = rest.split_once('/')?;
        if server_type.is_empty() || id.is_empty() || id.contains('/') {
            return None;
        }
        Some((server_type.to_owned(), id.to_owned()))
    }

    /// Runs one etcd call bounded by the dial timeout.
    async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, ClusterError> {
        match tokio::time::timeout(self.config.dial_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(ClusterError::discovery(format!("etcd {what}: {err}"))),
            Err(_) => Err(ClusterError::discovery(format!("etcd {what}: timed out"))),
        }
    }

    async fn connect(&self) -> Result<Client, ClusterError> {
        let config = &self.config;
        connect_client(
            &config.endpoints,
            &config.user,
            &config.pass,
            config.dial_timeout,
        )
        .await
        .map_err(|reason| ClusterError::discovery(format!("etcd connect: {reason}")))
    }

    async fn watch(&self, client: &Client) -> Result<WatchStream, ClusterError> {
        let mut client = client.clone();
        self.call(
            "watch",
            client.watch(
                self.servers_prefix(),
                Some(WatchOptions::new().with_prefix()),
            ),
        )
        .await
    }

    /// Grants a lease, starts its keep-alive, puts this server under it and
    /// resyncs.
    async fn register(
        &self,
        client: &Client,
        me: &ServerInfo,
    ) -> Result<(LeaseKeeper, LeaseKeepAliveStream), ClusterError> {
        let mut client = client.clone();
        let ttl = i64::try_from(self.config.heartbeat_ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let lease = self
            .call("lease grant", client.lease_grant(ttl, None))
            .await?
            .id();
        self.lease_id.store(lease, Ordering::SeqCst);
        tracing::debug!(lease = format!("{lease:x}"), "sd: got etcd lease");
        let (mut keeper, mut stream) = self
            .call("lease keep-alive", client.lease_keep_alive(lease))
            .await?;
        keep_alive_once(&mut keeper, &mut stream, self.config.dial_timeout)
            .await
            .map_err(ClusterError::discovery)?;
        self.call(
            "put",
            client.put(
                self.key(me),
                me.to_json(),
                Some(PutOptions::new().with_lease(lease)),
            ),
        )
        .await?;
        self.sync(&client).await?;
        Ok((keeper, stream))
    }

    /// Loads every server from etcd: adds the missing ones, removes the
    /// local ones etcd no longer has.
    async fn sync(&self, client: &Client) -> Result<(), ClusterError> {
        let _guard = self.sync_lock.lock().await;
        let mut client = client.clone();
        let listing = self
            .call(
                "get",
                client.get(self.servers_prefix(), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let mut seen = HashSet::new();
        for kv in listing.kvs() {
            let Some((server_type, id)) = self.parse_key(kv.key()) else {
                tracing::warn!(key = %String::from_utf8_lossy(kv.key()), "sd: ignoring bad etcd key");
                continue;
            };
            if !self.registry.accepts(&server_type, &id) {
                continue;
            }
            seen.insert(id.clone());
            if self.registry.contains(&id) {
                continue;
            }
            match ServerInfo::from_json(kv.value()) {
                Ok(server) => {
                    self.registry.add(Arc::new(server));
                }
                Err(err) => tracing::warn!(id, %err, "sd: ignoring bad server JSON"),
            }
        }
        self.registry.retain(&seen);
        let revision = listing.header().map_or(0, |header| header.revision());
        self.snapshot_revision.store(revision, Ordering::SeqCst);
        tracing::debug!(servers = seen.len(), revision, "sd: servers synced");
        Ok(())
    }

    async fn apply_watch(&self, response: &etcd_client::WatchResponse) {
        let _guard = self.sync_lock.lock().await;
        let floor = self.snapshot_revision.load(Ordering::SeqCst);
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            if kv.mod_revision() <= floor {
                continue;
            }
            let Some((server_type, id)) = self.parse_key(kv.key()) else {
                tracing::warn!(key = %String::from_utf8_lossy(kv.key()), "sd: ignoring bad etcd key");
                continue;
            };
            if !self.registry.accepts(&server_type, &id) {
                continue;
            }
            match event.event_type() {
                EventType::Put => match ServerInfo::from_json(kv.value()) {
                    Ok(server) => {
                        // A put for a known ID is that server registering
                        // again: its newer registration replaces the old.
                        self.registry.upsert(Arc::new(server));
                    }
                    Err(err) => tracing::warn!(id, %err, "sd: ignoring bad server JSON"),
                },
                EventType::Delete => {
                    self.registry.remove(&id);
                }
            }
        }
    }

    fn fail(&self, reason: &str) {
        tracing::error!(reason, "sd: giving up on etcd");
        self.failed.send_replace(Some(reason.to_owned()));
    }
}

/// Connects an etcd client as every etcd user of this crate does (service
/// discovery, groups): `endpoints`, authentication when `user` and `pass`
/// are both non-empty, HTTP/2 keep-alive, bounded by `dial_timeout`. The
/// error is the reason, for the caller's message.
pub(crate) async fn connect_client(
    endpoints: &[String],
    user: &str,
    pass: &str,
    dial_timeout: Duration,
) -> Result<Client, String> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(dial_timeout)
        .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
    if !user.is_empty() && !pass.is_empty() {
        options = options.with_user(user, pass);
    }
    match tokio::time::timeout(dial_timeout, Client::connect(endpoints, Some(options))).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("timed out".to_owned()),
    }
}

/// Sends one keep-alive and waits for its answer; returns the lease's TTL.
async fn keep_alive_once(
    keeper: &mut LeaseKeeper,
    stream: &mut LeaseKeepAliveStream,
    wait: Duration,
) -> Result<i64, String> {
    keeper.keep_alive().await.map_err(|err| err.to_string())?;
    match tokio::time::timeout(wait, stream.message()).await {
        Ok(Ok(Some(response))) if response.ttl() > 0 => Ok(response.ttl()),
        Ok(Ok(Some(_))) => Err("lease expired".to_owned()),
        Ok(Ok(None)) => Err("keep-alive stream ended".to_owned()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no keep-alive answer".to_owned()),
    }
}

/// Sleeps unless cancelled first; returns whether it was cancelled.
async fn sleep_or_cancel(cancel: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(duration) => false,
    }
}

/// Renews the lease; re-registers when it is lost.
async fn keep_alive_loop(
    inner: Arc<Inner>,
    client: Client,
    me: Arc<ServerInfo>,
    mut keeper: LeaseKeeper,
    mut stream: LeaseKeepAliveStream,
    cancel: CancellationToken,
) {
    let interval = (inner.config.heartbeat_ttl / 3).max(Duration::from_millis(100));
    loop {
        if sleep_or_cancel(&cancel, interval).await {
            return;
        }
        match keep_alive_once(&mut keeper, &mut stream, interval).await {
            Ok(ttl) => {
                if inner.config.heartbeat_log {
                    tracing::debug!(
                        lease = format!("{:x}", keeper.id()),
                        ttl,
                        "sd: etcd lease renewed"
                    );
                }
                continue;
            }
            Err(err) => tracing::warn!(
                %err,
                retry_in = ?inner.config.keepalive_retry_delay,
                "sd: etcd lease keep-alive failed; re-registering"
            ),
        }
        if sleep_or_cancel(&cancel, inner.config.keepalive_retry_delay).await {
            return;
        }
        let mut failures = 0;
        loop {
            let attempt = tokio::select! {
                () = cancel.cancelled() => return,
                attempt = tokio::time::timeout(
                    inner.config.grant_lease_timeout,
                    inner.register(&client, &me),
                ) => attempt,
            };
            match attempt {
                Ok(Ok((new_keeper, new_stream))) => {
                    keeper = new_keeper;
                    stream = new_stream;
                    tracing::info!(server = %me, "sd: re-registered in etcd");
                    break;
                }
                Ok(Err(err)) => {
                    failures += 1;
                    if failures >= inner.config.grant_lease_max_retries {
                        inner.fail("exceeded max attempts to renew etcd lease");
                        return;
                    }
                    tracing::warn!(%err, failures, "sd: error granting etcd lease, will retry");
                    if sleep_or_cancel(&cancel, inner.config.grant_lease_retry_interval).await {
                        return;
                    }
                }
                Err(_) => {
                    inner.fail("timed out waiting for etcd lease grant");
                    return;
                }
            }
        }
    }
}

/// Applies watch events; re-creates the watch (then resyncs) when it breaks.
async fn watch_loop(
    inner: Arc<Inner>,
    client: Client,
    mut stream: WatchStream,
    cancel: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => return,
            message = stream.message() => message,
        };
        match message {
            Ok(Some(response)) if !response.canceled() => {
                inner.apply_watch(&response).await;
                continue;
            }
            Ok(Some(response)) => tracing::warn!(
                reason = response.cancel_reason(),
                "sd: etcd watch canceled; re-creating it"
            ),
            Ok(None) => tracing::warn!("sd: etcd watch ended; re-creating it"),
            Err(err) => tracing::warn!(%err, "sd: etcd watch failed; re-creating it"),
        }
        loop {
            if sleep_or_cancel(&cancel, Duration::from_secs(1)).await {
                return;
            }
            {
                // etcd may have been wiped: revisions can start over.
                let _guard = inner.sync_lock.lock().await;
                inner.snapshot_revision.store(0, Ordering::SeqCst);
            }
            match inner.watch(&client).await {
                Ok(new_stream) => {
                    stream = new_stream;
                    break;
                }
                Err(err) => tracing::warn!(%err, "sd: re-creating the etcd watch failed"),
            }
        }
        if let Err(err) = inner.sync(&client).await {
            tracing::warn!(%err, "sd: resync after re-creating the watch failed");
        }
    }
}

/// Resyncs every `sync_servers_interval`.
async fn sync_loop(inner: Arc<Inner>, client: Client, cancel: CancellationToken) {
    loop {
        if sleep_or_cancel(&cancel, inner.config.sync_servers_interval).await {
            return;
        }
        if let Err(err) = inner.sync(&client).await {
            tracing::error!(%err, "sd: error resyncing servers");
        }
    }
}

impl ServiceDiscovery for EtcdDiscovery {
    fn start(&self, me: ServerInfo) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            me.validate()?;
            let inner = &self.inner;
            if inner.running().is_some() {
                return Err(ClusterError::discovery("etcd discovery already started"));
            }
            let client = inner.connect().await?;
            inner.registry.set_me(Some(me.id.clone()));
            let me = Arc::new(me);
            // As in Go: watch first, then lease + put + first full listing.
            let watch = inner.watch(&client).await?;
            let (keeper, keep_alive) = inner.register(&client, &me).await?;

            let cancel = CancellationToken::new();
            let tracker = TaskTracker::new();
            tracker.spawn(watch_loop(
                inner.clone(),
                client.clone(),
                watch,
                cancel.clone(),
            ));
            tracker.spawn(keep_alive_loop(
                inner.clone(),
                client.clone(),
                me.clone(),
                keeper,
                keep_alive,
                cancel.clone(),
            ));
            tracker.spawn(sync_loop(inner.clone(), client.clone(), cancel.clone()));
            tracker.close();
            let raced = {
                let mut running = inner.running();
                let raced = running.is_some();
                if !raced {
                    *running = Some(Running {
                        client,
                        cancel: cancel.clone(),
                        tracker,
                    });
                }
                raced
            };
            if raced {
                cancel.cancel();
                return Err(ClusterError::discovery("etcd discovery already started"));
            }
            tracing::info!(server = %me, key = inner.key(&me), "sd: registered in etcd");
            Ok(())
        })
    }

    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            let inner = &self.inner;
            let Some(running) = inner.running().take() else {
                return Ok(());
            };
            running.cancel.cancel();
            let _ = tokio::time::timeout(inner.config.revoke_timeout, running.tracker.wait()).await;
            let lease = inner.lease_id.load(Ordering::SeqCst);
            let mut client = running.client;
            let revoked =
                match tokio::time::timeout(inner.config.revoke_timeout, client.lease_revoke(lease))
                    .await
                {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(err)) => {
                        Err(ClusterError::discovery(format!("etcd lease revoke: {err}")))
                    }
                    Err(_) => Err(ClusterError::discovery("etcd lease revoke: timed out")),
                };
            if let Err(err) = &revoked {
                tracing::warn!(%err, "sd: could not revoke the etcd lease");
            }
            tokio::time::sleep(inner.config.shutdown_delay).await;
            revoked
        })
    }

    fn servers_of_type(&self, server_type: &str) -> Vec<Arc<ServerInfo>> {
        self.inner.registry.servers_of_type(server_type)
    }

    fn server(&self, id: &str) -> Option<Arc<ServerInfo>> {
        self.inner.registry.server(id)
    }

    fn servers(&self) -> Vec<Arc<ServerInfo>> {
        self.inner.registry.servers()
    }

    fn events(&self) -> broadcast::Receiver<DiscoveryEvent> {
        self.inner.registry.events()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_go_layout() {
        let sd = EtcdDiscovery::new(EtcdConfig::default());
        let server = ServerInfo::new("7f1c", "connector", true);
        assert_eq!(sd.inner.key(&server), "pitaya/servers/connector/7f1c");
        assert_eq!(
            sd.inner.parse_key(b"pitaya/servers/connector/7f1c"),
            Some(("connector".to_owned(), "7f1c".to_owned()))
        );
        for bad in [
            &b"pitaya/servers/connector"[..],
            b"pitaya/servers/a/b/c",
            b"other/servers/a/b",
            b"pitaya/servers//b",
            b"pitaya/servers/a/",
            b"\xff",
        ] {
            assert_eq!(sd.inner.parse_key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn defaults_are_pitayas() {
        let config = EtcdConfig::default();
        assert_eq!(config.endpoints, ["localhost:2379"]);
        assert_eq!(config.prefix, "pitaya/");
        assert_eq!(config.heartbeat_ttl, Duration::from_secs(60));
        assert_eq!(config.sync_servers_interval, Duration::from_secs(120));
        assert_eq!(config.revoke_timeout, Duration::from_secs(5));
        assert_eq!(config.grant_lease_timeout, Duration::from_secs(60));
        assert_eq!(config.grant_lease_max_retries, 15);
        assert_eq!(config.grant_lease_retry_interval, Duration::from_secs(5));
        assert_eq!(config.shutdown_delay, Duration::from_millis(300));
        assert_eq!(config.dial_timeout, Duration::from_secs(5));
    }

    #[tokio::test]
    async fn not_started_is_harmless() {
        let sd = EtcdDiscovery::new(EtcdConfig::default());
        assert!(!sd.is_connected().await);
        assert!(sd.stop().await.is_ok());
        assert!(sd.servers().is_empty());
        assert!(matches!(
            sd.sync_servers().await,
            Err(ClusterError::NotRunning(_))
        ));
        assert!(
            sd.start(ServerInfo::new("a/b", "t", false)).await.is_err(),
            "invalid ids are refused before connecting"
        );
    }
}

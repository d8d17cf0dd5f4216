//! Running an app: start the cluster parts and modules, accept clients,
//! register, wait for the stop signal, then shut down gracefully.

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use std::time::Duration;

use super::{App, ClusterPlan, Error, Result};
use crate::cluster::{ClusterFuture, DiscoveryEvent, ServerInfo};
use crate::clustered::ClusterParts;
use crate::clustered::session_watch::{FRONTEND_GONE_GRACE, SessionWatches};
use crate::handle::AppHandle;
use crate::inbound::AppInbound;

impl App {
    /// Runs until SIGINT or SIGTERM (or [`AppHandle::shutdown`]), then shuts
    /// down gracefully.
    pub async fn run(self) -> Result<()> {
        let signal = wait_for_signal();
        self.run_until(signal).await
    }

    /// Runs until `stop` completes (or [`AppHandle::shutdown`]), then shuts
    /// down gracefully: stop accepting, `before_shutdown` hooks, finish
    /// in-flight requests (bounded by the shutdown timeout), flush pending
    /// writes, close sessions, `shutdown` hooks.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<()> {
        let handle = self.handle.clone();
        let result = self.serve(stop).await;
        // Handles may outlive the app: its cluster connections go now.
        handle.shared.cluster.clear();
        result
    }

    async fn serve(mut self, stop: impl Future<Output = ()> + Send) -> Result<()> {
        if self.frontend && self.acceptors.is_empty() {
            return Err(Error::NoAcceptor);
        }
        let handle = self.handle.clone();
        let (cluster, lost) = match self.cluster.take() {
            Some(plan) => {
                let (parts, lost) = connect(&plan, &handle).await?;
                (Some(parts), Some((lost, plan.grace)))
            }
            None => (None, None),
        };
        if let Some(cluster) = &cluster {
            let inbound = Arc::new(AppInbound {
                core: Arc::downgrade(&self.core),
                cluster: Arc::downgrade(cluster),
            });
            cluster.server.start(inbound).await?;
        }
        for module in &self.modules {
            let init = module
                .init(&handle)
                .await
                .map_err(|source| Error::ModuleInit {
                    name: module.name().to_owned(),
                    source,
                });
            if let Err(err) = init {
                if let Some(cluster) = &cluster {
                    let _ = cluster.server.stop().await;
                }
                return Err(err);
            }
        }
        for module in &self.modules {
            if let Err(err) = module.after_init(&handle).await {
                tracing::error!(module = module.name(), error = %err, "after_init failed");
            }
        }
        let accepting = CancellationToken::new();
        let mut listeners = Vec::new();
        for acceptor in self.acceptors {
            tracing::info!(url = %acceptor.url(), server_type = %self.core.config.server_type, "accepting clients");
            listeners.push(tokio::spawn(
                acceptor.serve(self.core.clone(), accepting.clone()),
            ));
        }
        if let Some(cluster) = &cluster {
            if let Err(err) = cluster
                .discovery
                .start(ServerInfo::clone(&cluster.me))
                .await
            {
                // Registration failed: stop what was started.
                accepting.cancel();
                for listener in listeners {
                    let _ = listener.await;
                }
                if let Err(err) = cluster.server.stop().await {
                    tracing::warn!(error = %err, "stopping the rpc server failed");
                }
                return Err(err.into());
            }
            tracing::info!(id = %cluster.me.id, server_type = %cluster.me.server_type, frontend = cluster.me.frontend, "registered in the cluster");
        }
        let watcher =
            lost.map(|(lost, grace)| tokio::spawn(watch_cluster(lost, grace, handle.clone())));
        let frontends = cluster
            .as_ref()
            .map(|cluster| tokio::spawn(watch_frontends(cluster.clone())));
        handle.set_ready(true);

        tokio::select! {
            () = stop => tracing::info!("shutdown requested"),
            () = self.core.shutdown.cancelled() => tracing::info!("shutdown requested by the app"),
        }
        handle.set_ready(false);
        for task in watcher.into_iter().chain(frontends) {
            task.abort();
        }

        // A backend leaves discovery first, so that no more requests are
        // routed to it; a frontend last, once its sessions are closed and
        // the backends watching them told.
        if let Some(cluster) = &cluster
            && !cluster.me.frontend
        {
            deregister(cluster).await;
        }
        accepting.cancel();
        for listener in listeners {
            let _ = listener.await;
        }
        for module in self.modules.iter().rev() {
            if let Err(err) = module.before_shutdown(&handle).await {
                tracing::error!(module = module.name(), error = %err, "before_shutdown failed");
            }
        }
        if let Some(cluster) = &cluster
            && let Err(err) = cluster.server.stop().await
        {
            tracing::warn!(error = %err, "stopping the rpc server failed");
        }
        self.core.shutdown.cancel();
        for session in self.core.sessions.sessions() {
            session.wake();
        }
        self.core.tracker.close();
        let timeout = self.core.config.shutdown_timeout;
        if tokio::time::timeout(timeout, self.core.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                ?timeout,
                remaining = self.core.tracker.len(),
                "sessions still open after the shutdown timeout"
            );
        }
        if let Some(cluster) = &cluster
            && cluster.me.frontend
        {
            cluster.notices.close();
            if tokio::time::timeout(timeout, cluster.notices.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    "close reports to backends still pending after the shutdown timeout"
                );
            }
            deregister(cluster).await;
        }
        for module in self.modules.iter().rev() {
            if let Err(err) = module.shutdown(&handle).await {
                tracing::error!(module = module.name(), error = %err, "shutdown failed");
            }
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Connects the cluster plane for this server and makes its parts
/// reachable from the handle; the future resolves when the plane is lost
/// for good.
async fn connect(
    plan: &ClusterPlan,
    handle: &AppHandle,
) -> Result<(Arc<ClusterParts>, ClusterFuture<'static, String>)> {
    tracing::info!(id = %plan.me.id, plane = %plan.plane.describe(), "connecting to the cluster");
    let connection = plan.plane.connect(plan.me.clone()).await?;
    let parts = Arc::new(ClusterParts {
        discovery: connection.discovery,
        client: connection.client,
        server: connection.server,
        me: plan.me.clone(),
        routers: plan.routers.clone(),
        timeout: plan.timeout,
        unique: plan.unique,
        unreachable: Default::default(),
        watches: SessionWatches::new(&handle.shared.sessions),
        notices: tokio_util::task::TaskTracker::new(),
    });
    if !handle.shared.cluster.set(parts.clone()) {
        return Err(Error::Config("the app is already running".into()));
    }
    Ok((parts, connection.lost))
}

/// Once the cluster is lost for good: not ready at once, shut down after
/// `grace` (Go Pitaya's die channel, which stops at once).
async fn watch_cluster(lost: ClusterFuture<'static, String>, grace: Duration, handle: AppHandle) {
    let reason = lost.await;
    handle.set_ready(false);
    tracing::error!(%reason, ?grace, "lost the cluster for good: not ready, shutting down after the grace period");
    tokio::time::sleep(grace).await;
    handle.shutdown();
}

async fn deregister(cluster: &ClusterParts) {
    if let Err(err) = cluster.discovery.stop().await {
        tracing::warn!(error = %err, "deregistering failed");
    }
}

/// Frontends that leave the cluster took their sessions with them: once
/// one is still gone after the grace period, the close callbacks this
/// server registered on its sessions run.
async fn watch_frontends(cluster: Arc<ClusterParts>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = cluster.discovery.events();
    let mut checks = tokio::task::JoinSet::new();
    loop {
        let gone: Vec<String> = match events.recv().await {
            Ok(DiscoveryEvent::Removed(server)) if server.frontend => vec![server.id.clone()],
            Ok(DiscoveryEvent::Added(server)) => {
                cluster.watches.frontend_seen(&server.id);
                Vec::new()
            }
            Ok(DiscoveryEvent::Removed(_)) => Vec::new(),
            // Missed events: whatever frontend discovery no longer knows.
            Err(RecvError::Lagged(_)) => cluster
                .watches
                .frontends()
                .into_iter()
                .filter(|id| cluster.discovery.server(id).is_none())
                .collect(),
            Err(RecvError::Closed) => return,
        };
        for id in gone {
            let cluster = cluster.clone();
            checks.spawn(async move {
                tokio::time::sleep(FRONTEND_GONE_GRACE).await;
                if cluster.discovery.server(&id).is_none() {
                    cluster.watches.frontend_gone(&id);
                }
            });
        }
        while checks.try_join_next().is_some() {}
    }
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let interrupt = tokio::signal::ctrl_c();
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt => {}
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = interrupt.await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}

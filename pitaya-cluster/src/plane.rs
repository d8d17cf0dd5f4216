//! [`Cluster`]: the cluster a server joins, as the one value the app
//! builder takes.

use std::sync::Arc;

use pitaya_core::cluster::{ClusterConnection, ClusterFuture, ClusterPlane};

use crate::memory::{MemoryCluster, MemoryDiscovery, MemoryRpc, MemoryRpcConfig};
use crate::{ClusterError, ServerInfo};

/// The cluster a server joins: give it to `AppBuilder::cluster`, which
/// connects its discovery and RPC for the server's identity when the app
/// runs.
///
/// ```
/// use pitaya_cluster::{Cluster, MemoryCluster};
/// use pitaya_core::app::App;
///
/// // Two servers of one process, on the in-process cluster.
/// let dev = MemoryCluster::new();
/// let room = App::builder("room").cluster(Cluster::memory(&dev)).build().unwrap();
/// let front = App::builder("connector")
///     .frontend(true)
///     .cluster(Cluster::memory(&dev))
///     .build()
///     .unwrap();
/// assert!(!room.handle().server_info().unwrap().frontend);
/// assert!(front.handle().server_info().unwrap().frontend);
/// ```
#[derive(Clone, Debug)]
pub struct Cluster {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Memory(MemoryCluster, MemoryRpcConfig),
    #[cfg(all(feature = "etcd", feature = "nats"))]
    EtcdNats(Box<(crate::EtcdConfig, crate::NatsConfig)>),
}

impl Cluster {
    /// The in-process cluster `cluster` (every server of it in this
    /// process): discovery and RPC in memory, never lost.
    pub fn memory(cluster: &MemoryCluster) -> Self {
        Self::memory_with(cluster, MemoryRpcConfig::default())
    }

    /// The in-process cluster with these RPC settings.
    pub fn memory_with(cluster: &MemoryCluster, config: MemoryRpcConfig) -> Self {
        Self {
            kind: Kind::Memory(cluster.clone(), config),
        }
    }

    /// Go Pitaya's cluster: discovery on etcd, RPC over NATS. Lost for good
    /// when the etcd lease cannot be renewed or NATS gives up reconnecting.
    #[cfg(all(feature = "etcd", feature = "nats"))]
    #[cfg_attr(docsrs, doc(cfg(all(feature = "etcd", feature = "nats"))))]
    pub fn etcd_nats(etcd: crate::EtcdConfig, nats: crate::NatsConfig) -> Self {
        Self {
            kind: Kind::EtcdNats(Box::new((etcd, nats))),
        }
    }
}

impl ClusterPlane for Cluster {
    fn describe(&self) -> String {
        match &self.kind {
            Kind::Memory(..) => "in-process cluster".into(),
            #[cfg(all(feature = "etcd", feature = "nats"))]
            Kind::EtcdNats(configs) => {
                let (etcd, nats) = &**configs;
                format!("etcd {:?} + nats {}", etcd.endpoints, nats.url)
            }
        }
    }

    fn connect(
        &self,
        me: Arc<ServerInfo>,
    ) -> ClusterFuture<'_, Result<ClusterConnection, ClusterError>> {
        Box::pin(async move {
            match &self.kind {
                Kind::Memory(cluster, config) => {
                    let rpc = Arc::new(MemoryRpc::with_config(
                        cluster,
                        ServerInfo::clone(&me),
                        config.clone(),
                    ));
                    Ok(ClusterConnection::new(
                        Arc::new(MemoryDiscovery::new(cluster)),
                        rpc.clone(),
                        rpc,
                    ))
                }
                #[cfg(all(feature = "etcd", feature = "nats"))]
                Kind::EtcdNats(configs) => {
                    let (etcd, nats) = &**configs;
                    let discovery = Arc::new(crate::EtcdDiscovery::new(etcd.clone()));
                    let rpc = Arc::new(
                        crate::NatsRpc::connect(nats.clone(), ServerInfo::clone(&me)).await?,
                    );
                    let (watched_discovery, watched_rpc) = (discovery.clone(), rpc.clone());
                    let lost = async move {
                        tokio::select! {
                            reason = watched_discovery.failed() => format!("etcd: {reason}"),
                            () = watched_rpc.closed() => "nats: the connection is closed and will not reconnect".to_owned(),
                        }
                    };
                    Ok(ClusterConnection::new(discovery, rpc.clone(), rpc).lost_when(lost))
                }
            }
        })
    }
}

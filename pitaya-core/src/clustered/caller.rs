//! Remote calls (User RPC) from this server's [`RemoteClient`](crate::remote::RemoteClient)s.

use super::{ClusterSlot, pick_random};
use crate::PitayaError;
use crate::cluster::ClusterError;
use crate::error::codes;
use crate::remote::{RemoteCall, RemoteCaller, RemoteFuture, Target};

/// Go's `ErrNonsenseRPC`: a user RPC to this server's own type (without a
/// server id) or to this very server.
pub(crate) const NONSENSE_RPC: &str = "you are making a rpc that may be processed locally, either specify a different server type or specify a server id";

/// A [`RemoteCaller`] over the cluster's [`RpcClient`]: what
/// [`AppHandle::remote`](crate::handle::AppHandle::remote) clients use.
pub(crate) struct ClusterCaller {
    pub(crate) cluster: ClusterSlot,
}

impl RemoteCaller for ClusterCaller {
    fn call(&self, call: RemoteCall) -> RemoteFuture {
        let cluster = self.cluster.get();
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

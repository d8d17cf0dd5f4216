//! The app's side of the cluster plane: forwarding client messages to
//! backends (Sys RPC), serving forwarded messages and remotes (User RPC),
//! backend session views, and pushes, kicks and binds across servers.

pub(crate) mod backend_session;
mod caller;
mod forward;

pub(crate) mod session_watch;
mod unreachable;

pub(crate) use caller::ClusterCaller;
#[cfg(feature = "testing")]
pub(crate) use caller::NONSENSE_RPC;
pub(crate) use forward::forward;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::cluster::{
    ClusterError, RpcClient, RpcServer, ServerInfo, ServiceDiscovery, go_duration,
};
use crate::context::Context;
use crate::session::Session;
use crate::{PitayaError, protos};

/// Picks the server of a type that handles a forwarded client message:
/// `(context of the message, the client's session, servers of the type)`.
/// `None` falls back to a uniformly random pick.
pub type RouterFn =
    Arc<dyn Fn(&Context, &Session, &[Arc<ServerInfo>]) -> Option<Arc<ServerInfo>> + Send + Sync>;

/// Where a clustered app keeps its parts while it runs (empty before and
/// after, and always for a standalone app): handles, remote clients and
/// hooks made before the app runs find the parts once they are there, and
/// a stopped app lets its connections go even while handles live on.
#[derive(Clone, Default)]
pub(crate) struct ClusterSlot(Arc<std::sync::RwLock<Option<Arc<ClusterParts>>>>);

impl ClusterSlot {
    /// The parts, while the app runs.
    pub(crate) fn get(&self) -> Option<Arc<ClusterParts>> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts the parts in; false when there were parts already.
    pub(crate) fn set(&self, parts: Arc<ClusterParts>) -> bool {
        let mut slot = self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_some() {
            return false;
        }
        *slot = Some(parts);
        true
    }

    /// Takes the parts out (the app stopped or failed to start).
    pub(crate) fn clear(&self) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }
}

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
    /// Close callbacks registered on sessions of frontends (backend side)
    /// and the servers watching this frontend's sessions.
    pub(crate) watches: session_watch::SessionWatches,
    /// Close reports being sent to watching backends (waited for before a
    /// frontend deregisters).
    pub(crate) notices: tokio_util::task::TaskTracker,
}

/// `Request.metadata` written straight from its parts (no intermediate
/// map): the context's keys but those set here, then `extra`, a fresh
/// `request.id` when neither has one, and the caller's identity and
/// timeout.
struct OutgoingMetadata<'a> {
    context: Option<&'a std::collections::BTreeMap<String, serde_json::Value>>,
    extra: &'a [(&'a str, serde_json::Value)],
    peer_id: &'a str,
    peer_service: &'a str,
    timeout: String,
}

impl serde::Serialize for OutgoingMetadata<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        const OURS: [&str; 3] = ["peer.id", "peer.service", "reqTimeout"];
        let overridden =
            |key: &str| OURS.contains(&key) || self.extra.iter().any(|(k, _)| *k == key);
        let mut map = serializer.serialize_map(None)?;
        let mut has_id = false;
        for (key, value) in self.context.into_iter().flatten() {
            if !overridden(key) {
                has_id |= key == crate::context::REQUEST_ID;
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in self.extra {
            if !OURS.contains(key) {
                has_id |= *key == crate::context::REQUEST_ID;
                map.serialize_entry(key, value)?;
            }
        }
        if !has_id {
            map.serialize_entry(crate::context::REQUEST_ID, &crate::nuid::next())?;
        }
        map.serialize_entry("peer.id", self.peer_id)?;
        map.serialize_entry("peer.service", self.peer_service)?;
        map.serialize_entry("reqTimeout", &self.timeout)?;
        map.end()
    }
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

pub(crate) fn now_nanos() -> i64 {
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
        let out = OutgoingMetadata {
            context: context.map(Context::metadata),
            extra,
            peer_id: &self.me.id,
            peer_service: &self.me.server_type,
            timeout: go_duration::format(timeout),
        };
        serde_json::to_vec(&out)
            .map(Bytes::from)
            .unwrap_or_default()
    }

    /// Sends a User RPC to `target` and returns the reply data. With
    /// `reroute`, a target that is gone is set aside and the call goes to
    /// another server of its type (calls by server type).
    pub(crate) async fn user_rpc(
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

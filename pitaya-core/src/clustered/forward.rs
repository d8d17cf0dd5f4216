//! Forwarding a client message to a server of another type (Sys RPC).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tracing::Instrument;

use super::{ClusterParts, pick_random};
use crate::cluster::ClusterError;
use crate::codec::MessageType;
use crate::context::Context;
use crate::session::Session;
use crate::{PitayaError, protos};

/// Forwards a client message to a server of `server_type` (Sys RPC); the
/// future resolves to the backend's reply body (`None` for a notify).
///
/// `context` is the client request's: its route is the message's, and its
/// metadata (`request.id`, `req-route`, `req-start-time` and whatever the
/// frontend's hooks added) is the propagate context the backend gets, with
/// the caller's identity and timeout added.
pub(crate) fn forward(
    cluster: Arc<ClusterParts>,
    session: Session,
    server_type: &str,
    context: Context,
    id: u64,
    kind: MessageType,
    body: Bytes,
) -> impl Future<Output = Result<Option<Bytes>, PitayaError>> + Send + 'static {
    let servers = cluster.routable(server_type);
    let server_type = server_type.to_owned();
    let span = tracing::debug_span!("forward", route = %context.route(), id);
    async move {
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
                route: context.route().to_owned(),
                data: body,
                reply: String::new(),
                r#type: if notify {
                    protos::MsgType::MsgNotify as i32
                } else {
                    protos::MsgType::MsgRequest as i32
                },
            }),
            frontend_id: cluster.me.id.clone(),
            metadata: cluster.metadata(Some(&context), &[], cluster.timeout),
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
    .instrument(span)
}

//! Backend views of a frontend's session: their bind, data, push and kick
//! go to the frontend holding the connection, in order.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::ClusterParts;
use crate::cluster::ClusterError;
use crate::session::{RemoteSession, Session};
use crate::{PitayaError, protos};

/// What a backend session view asks of its frontend, in order.
pub(crate) enum Op {
    Bind(String),
    PushToFront(Bytes),
    Kick(String),
    Push(protos::Push),
    Flush(oneshot::Sender<()>),
}

/// The [`RemoteSession`] of a backend view: operations are queued and run
/// in order by one task, which ends (and signals) when the view is dropped.
pub(crate) struct BackendLink {
    frontend_id: String,
    frontend_session_id: i64,
    ops: mpsc::UnboundedSender<Op>,
}

impl BackendLink {
    pub(crate) fn spawn(
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

//! Backend views of a frontend's session: their bind, data, push, kick
//! and close watch go to the frontend holding the connection, in order,
//! carrying the context of the request the view was made for.

use std::sync::Arc;

use bytes::Bytes;
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::ClusterParts;
use crate::cluster::ClusterError;
use crate::context::Context;
use crate::session::{CloseCallback, RemoteSession, Session, SessionError, SessionFuture};
use crate::{PitayaError, protos};

/// What a backend session view asks of its frontend, in order.
pub(crate) enum Op {
    Bind(String, oneshot::Sender<Result<(), PitayaError>>),
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
    cluster: Arc<ClusterParts>,
    context: Context,
}

impl BackendLink {
    /// A link to session `frontend_session_id` of `frontend_id`, whose
    /// operations carry `context` (the request's).
    pub(crate) fn spawn(
        cluster: Arc<ClusterParts>,
        frontend_id: String,
        frontend_session_id: i64,
        context: Context,
    ) -> (Self, mpsc::UnboundedSender<Op>) {
        let (ops, mut rx) = mpsc::unbounded_channel::<Op>();
        let fid = frontend_id.clone();
        let (task_cluster, task_context) = (cluster.clone(), context.clone());
        tokio::spawn(
            async move {
                while let Some(op) = rx.recv().await {
                    let link = Link {
                        cluster: &task_cluster,
                        frontend_id: &fid,
                        session_id: frontend_session_id,
                        context: &task_context,
                    };
                    if let Err(err) = link.run(op).await {
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
                cluster,
                context,
            },
            ops,
        )
    }
}

/// A close watch to register with the frontend.
struct Watch {
    cluster: Arc<ClusterParts>,
    frontend_id: String,
    session_id: i64,
    uid: Option<String>,
    context: Context,
}

impl Watch {
    /// Asks the frontend, retrying a few times (it may not be in this
    /// server's discovery yet, or slow); a frontend that does not know the
    /// route (Go's) is remembered as one that does not report closes.
    async fn ask(self) {
        use super::session_watch::{ALREADY_CLOSED, WATCH_ROUTE};
        const ATTEMPTS: u32 = 5;
        let link = Link {
            cluster: &self.cluster,
            frontend_id: &self.frontend_id,
            session_id: self.session_id,
            context: &self.context,
        };
        let arg = link.session(self.uid.clone().unwrap_or_default(), Bytes::new());
        let watches = &self.cluster.watches;
        for attempt in 1..=ATTEMPTS {
            match link.call(WATCH_ROUTE, arg.clone()).await {
                Ok(reply) if reply.as_ref() == ALREADY_CLOSED => {
                    watches.closed(&self.frontend_id, self.session_id, None, None);
                    return;
                }
                Ok(_) => return,
                Err(err) if err.code == crate::error::codes::NOT_FOUND => {
                    watches.refused(&self.frontend_id, self.session_id, true, &err);
                    return;
                }
                Err(err) if attempt == ATTEMPTS => {
                    watches.refused(&self.frontend_id, self.session_id, false, &err);
                    return;
                }
                Err(err) => {
                    tracing::debug!(frontend = %self.frontend_id, attempt, error = %err, "watching a session's close: retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
            }
        }
    }
}

/// What one operation needs to reach the frontend.
struct Link<'a> {
    cluster: &'a ClusterParts,
    frontend_id: &'a str,
    session_id: i64,
    context: &'a Context,
}

impl Link<'_> {
    /// A user RPC to the frontend with the request's context.
    async fn call(&self, route: &str, arg: Bytes) -> Result<Bytes, PitayaError> {
        let target = self
            .cluster
            .discovery
            .server(self.frontend_id)
            .ok_or_else(|| ClusterError::NoServerWithId {
                id: self.frontend_id.to_owned(),
            })?;
        self.cluster
            .user_rpc(
                &target,
                false,
                route,
                arg,
                self.cluster.timeout,
                Some(self.context),
            )
            .await
    }

    fn session(&self, uid: String, data: Bytes) -> Bytes {
        protos::Session {
            id: self.session_id,
            uid,
            data,
        }
        .encode_to_vec()
        .into()
    }

    async fn run(&self, op: Op) -> Result<(), PitayaError> {
        match op {
            Op::Flush(done) => {
                let _ = done.send(());
            }
            Op::Bind(uid, answer) => {
                let arg = self.session(uid, Bytes::new());
                let result = self.call("sys.bindsession", arg).await.map(drop);
                let failed = result.as_ref().err().cloned();
                let _ = answer.send(result);
                if let Some(err) = failed {
                    return Err(err);
                }
            }
            Op::PushToFront(data) => {
                let arg = self.session(String::new(), data);
                self.call("sys.pushsession", arg).await?;
            }
            Op::Kick(uid) => {
                let arg = protos::KickMsg { user_id: uid }.encode_to_vec().into();
                self.call("sys.kick", arg).await?;
            }
            Op::Push(push) => {
                let frontend_type =
                    self.cluster
                        .frontend_type(self.frontend_id)
                        .ok_or_else(|| ClusterError::NoServerWithId {
                            id: self.frontend_id.to_owned(),
                        })?;
                self.cluster
                    .client
                    .push_to_user(&frontend_type, push)
                    .await?;
            }
        }
        Ok(())
    }
}

impl RemoteSession for BackendLink {
    fn frontend_id(&self) -> &str {
        &self.frontend_id
    }

    fn frontend_session_id(&self) -> i64 {
        self.frontend_session_id
    }

    fn bind(&self, uid: &str) -> SessionFuture<Result<(), PitayaError>> {
        let (answer, answered) = oneshot::channel();
        let sent = self.ops.send(Op::Bind(uid.to_owned(), answer)).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(PitayaError::new(
                    crate::error::codes::INTERNAL,
                    "the session's link to its frontend is closed",
                ));
            }
            answered.await.unwrap_or_else(|_| {
                Err(PitayaError::new(
                    crate::error::codes::INTERNAL,
                    "the session's link to its frontend is closed",
                ))
            })
        })
    }

    fn watch_close(&self, session: &Session, callback: CloseCallback) -> Result<(), SessionError> {
        let watches = &self.cluster.watches;
        if watches.is_unsupported(&self.frontend_id) {
            return Err(SessionError::CloseNotReported(self.frontend_id.clone()));
        }
        let uid = session.uid().map(str::to_owned);
        if !watches.add(
            &self.frontend_id,
            self.frontend_session_id,
            uid.clone(),
            callback,
        ) {
            return Ok(());
        }
        // Out of the ordered queue: the handler's reply need not wait for
        // the frontend's answer.
        let watch = Watch {
            cluster: self.cluster.clone(),
            frontend_id: self.frontend_id.clone(),
            session_id: self.frontend_session_id,
            uid,
            context: self.context.clone(),
        };
        tokio::spawn(watch.ask().in_current_span());
        Ok(())
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

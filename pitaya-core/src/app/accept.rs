//! The accept loop: every acceptor's connections pass the connection gate
//! and get an agent.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::acceptor::{Acceptor, PlayerConn};
use crate::server::ServerCore;

/// An acceptor with its connection type erased, so an app can hold
/// several kinds.
pub(super) trait ErasedAcceptor: Send {
    fn url(&self) -> String;
    fn serve(
        self: Box<Self>,
        core: Arc<ServerCore>,
        stop: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

impl<A: Acceptor> ErasedAcceptor for A {
    fn url(&self) -> String {
        Acceptor::url(self)
    }

    fn serve(
        mut self: Box<Self>,
        core: Arc<ServerCore>,
        stop: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(async move {
            loop {
                let raw = tokio::select! {
                    () = stop.cancelled() => return,
                    raw = self.accept() => raw,
                };
                match raw {
                    Ok(raw) => {
                        let peer = A::peer_addr(&raw).map(|addr| addr.ip());
                        let admitted = core.gate.admit().and_then(|mut permit| match peer {
                            Some(ip) => permit.admit_address(ip).map(|()| permit),
                            None => Ok(permit),
                        });
                        let mut permit = match admitted {
                            Ok(permit) => permit,
                            Err(refused) => {
                                // Dropping the raw connection closes it.
                                refused.record(peer);
                                continue;
                            }
                        };
                        let core = core.clone();
                        core.tracker.clone().spawn(async move {
                            let mut conn = match A::upgrade(raw).await {
                                Ok(conn) => conn,
                                Err(err) => {
                                    tracing::debug!(error = %err, "connection upgrade failed");
                                    return;
                                }
                            };
                            if peer.is_none()
                                && core.gate.limits_addresses()
                                && let Some(addr) = conn.remote_addr()
                                && let Err(refused) = permit.admit_address(addr.ip())
                            {
                                refused.record(Some(addr.ip()));
                                conn.close().await;
                                return;
                            }
                            crate::agent::serve(conn, core).await;
                            drop(permit);
                        });
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "accept failed");
                        // Out of file descriptors and the like: back off a little.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
    }
}

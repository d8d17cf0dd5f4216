//! What both RPC servers do with an incoming request.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use pitaya_core::PitayaError;
use pitaya_core::cluster::Inbound;
use pitaya_core::error::codes;
use pitaya_core::protos;

/// Runs the inbound handler; a panic becomes a `PIT-500` response instead of
/// leaving the caller to time out.
pub(crate) async fn handle_request(
    inbound: &dyn Inbound,
    request: protos::Request,
) -> protos::Response {
    let route = request.route().to_owned();
    match AssertUnwindSafe(inbound.on_request(request))
        .catch_unwind()
        .await
    {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(route, "rpc server: request handler panicked");
            protos::Response::err(PitayaError::new(
                codes::INTERNAL,
                format!("rpc server: handler for {route} panicked"),
            ))
        }
    }
}

/// Takes a decoded request; `None` (with a warning) when it carries no
/// `msg`, which Go Pitaya drops too (a malformed request).
pub(crate) fn check_request(
    request: protos::Request,
    subject: &str,
    payload_len: usize,
) -> Option<protos::Request> {
    if request.msg.is_some() {
        return Some(request);
    }
    tracing::warn!(
        subject,
        rpc_type = request.r#type,
        frontend_id = request.frontend_id,
        payload_len,
        "rpc server: dropping malformed request with no msg"
    );
    None
}

/// Takes the delivery task of a user subscription out of `slot` and returns
/// a future that waits for it to finish (what closing a subscription
/// guard awaits, whatever the backend).
pub(crate) fn join_delivery_task(
    slot: &std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
) -> pitaya_core::cluster::ClusterFuture<'static, ()> {
    let task = slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    Box::pin(async move {
        if let Some(task) = task {
            let _ = task.await;
        }
    })
}

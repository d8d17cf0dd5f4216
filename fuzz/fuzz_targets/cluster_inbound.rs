//! A backend app serving forwarded client messages and remotes from peers:
//! the `protos::Request` a NATS server hands to the app's `Inbound`, through
//! the real runtime path (metadata JSON and `reqTimeout`, route parsing,
//! session data JSON, the backend session view, handler dispatch, the
//! `sys.*` user RPCs).
//!
//! The app runs with in-process fakes of discovery and RPC (no network):
//! the fake RPC server hands over the app's `Inbound`, and each input is
//! decoded as a `protos::Request` and given to `Inbound::on_request`.
//!
//! Input: a protobuf `protos::Request`.
//!
//! Invariants:
//! - nothing panics (handler panics would abort too: libFuzzer's panic hook
//!   runs before any `catch_unwind`);
//! - every request gets a response, with data or an error with a code;
//! - Go Pitaya's refusals: no message -> `PIT-400`; no metadata ->
//!   `PIT-500`;
//! - a well-formed Sys request to `room.join` with a JSON payload answers
//!   with that payload (re-serialized) and no error.

#![no_main]

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pitaya_core::app::App;
use pitaya_core::cluster::{
    ClusterError, ClusterFuture, DiscoveryEvent, Inbound, RpcClient, RpcServer, ServerInfo,
    ServiceDiscovery, SubscriptionGuard, UserSubscription,
};
use pitaya_core::handler::{
    Component, HandlerFuture, HandlerKind, HandlerMeta, Request, RouteEntry,
};
use pitaya_core::protos::{self, prost::Message};
use tokio::runtime::Runtime;
use tokio::sync::broadcast;

// ---------------------------------------------------------------- fakes --

struct Discovery {
    events: broadcast::Sender<DiscoveryEvent>,
}

impl ServiceDiscovery for Discovery {
    fn start(&self, _me: ServerInfo) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }
    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }
    fn servers_of_type(&self, _server_type: &str) -> Vec<Arc<ServerInfo>> {
        Vec::new()
    }
    fn server(&self, _id: &str) -> Option<Arc<ServerInfo>> {
        None
    }
    fn servers(&self) -> Vec<Arc<ServerInfo>> {
        Vec::new()
    }
    fn events(&self) -> broadcast::Receiver<DiscoveryEvent> {
        self.events.subscribe()
    }
}

/// Every request fails at once (no frontend is there); publishes succeed.
struct Client;

impl RpcClient for Client {
    fn request(
        &self,
        target: &ServerInfo,
        _request: protos::Request,
        _timeout: Duration,
    ) -> ClusterFuture<'_, Result<protos::Response, ClusterError>> {
        let id = target.id.clone();
        Box::pin(async move { Err(ClusterError::NoServerWithId { id }) })
    }
    fn push_to_user(
        &self,
        _frontend_type: &str,
        _push: protos::Push,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }
    fn kick_user(
        &self,
        _frontend_type: &str,
        _kick: protos::KickMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }
    fn broadcast_bind(
        &self,
        _frontend_type: &str,
        _bind: protos::BindMsg,
    ) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Hands the app's inbound over to the fuzz loop.
struct Server {
    inbound: Arc<Mutex<Option<Arc<dyn Inbound>>>>,
}

struct Guard;

impl SubscriptionGuard for Guard {
    fn close(self: Box<Self>) -> ClusterFuture<'static, ()> {
        Box::pin(async {})
    }
}

impl RpcServer for Server {
    fn start(&self, inbound: Arc<dyn Inbound>) -> ClusterFuture<'_, Result<(), ClusterError>> {
        *self.inbound.lock().expect("lock") = Some(inbound);
        Box::pin(async { Ok(()) })
    }
    fn subscribe_user(
        &self,
        uid: &str,
    ) -> ClusterFuture<'_, Result<UserSubscription, ClusterError>> {
        let subscription = UserSubscription::new(uid, Guard);
        Box::pin(async move { Ok(subscription) })
    }
    fn stop(&self) -> ClusterFuture<'_, Result<(), ClusterError>> {
        Box::pin(async { Ok(()) })
    }
}

// ------------------------------------------------------------ component --

/// `room.join` (request): stores the payload in the session, binds the
/// session to `payload.uid` when there is one, pushes it back and answers
/// with it. `room.leave` (notify): kicks. `room.echo` (remote): echoes.
struct Room;

fn join(_room: Arc<Room>, request: Request) -> HandlerFuture {
    Box::pin(async move {
        let payload: serde_json::Value = request.decode()?;
        if let Some(session) = request.session() {
            let _ = session.set("last", &payload);
            if let Some(uid) = payload.get("uid").and_then(serde_json::Value::as_str) {
                let _ = session.bind(uid).await;
            }
            let _ = session.push("onJoin", &payload);
            session.push_to_front();
        }
        request.encode(&payload)
    })
}

fn leave(_room: Arc<Room>, request: Request) -> HandlerFuture {
    Box::pin(async move {
        if let Some(session) = request.session() {
            session.kick();
        }
        Ok(None)
    })
}

fn echo(_room: Arc<Room>, request: Request) -> HandlerFuture {
    Box::pin(async move { Ok(Some(request.body().clone())) })
}

const NO_META: HandlerMeta = HandlerMeta {
    input: None,
    output: None,
};

impl Component for Room {
    const NAME: &'static str = "room";
    const ROUTES: &'static [RouteEntry<Self>] = &[
        RouteEntry {
            method: "join",
            kind: HandlerKind::Request,
            call: join,
            meta: NO_META,
        },
        RouteEntry {
            method: "leave",
            kind: HandlerKind::Notify,
            call: leave,
            meta: NO_META,
        },
        RouteEntry {
            method: "echo",
            kind: HandlerKind::Remote,
            call: echo,
            meta: NO_META,
        },
    ];
}

// -------------------------------------------------------------- harness --

struct Harness {
    runtime: Runtime,
    inbound: Arc<dyn Inbound>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let slot = Arc::new(Mutex::new(None));
        let app = App::builder("room")
            .frontend(false)
            .cluster_parts(
                Arc::new(Discovery {
                    events: broadcast::channel(16).0,
                }),
                Arc::new(Client),
                Arc::new(Server {
                    inbound: slot.clone(),
                }),
            )
            .server_id("room-1")
            .rpc_timeout(Duration::from_millis(50))
            .register(Room)
            .build()
            .expect("app builds");
        runtime.spawn(app.run_until(std::future::pending()));
        let inbound = runtime.block_on(async {
            loop {
                if let Some(inbound) = slot.lock().expect("lock").clone() {
                    break inbound;
                }
                tokio::task::yield_now().await;
            }
        });
        Harness { runtime, inbound }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = protos::Request::decode(data) else {
        return;
    };
    let h = harness();
    let response = h.runtime.block_on(h.inbound.on_request(request.clone()));

    // The response travels back over NATS.
    let wire = response.encode_to_vec();
    assert_eq!(
        protos::Response::decode(&wire[..]).expect("response decodes"),
        response
    );

    if let Some(error) = &response.error {
        assert!(!error.code.is_empty(), "error without a code: {error:?}");
        assert!(response.data.is_empty(), "error response with data");
    }
    let code = response.error.as_ref().map(|e| e.code.as_str());
    let Some(msg) = &request.msg else {
        assert_eq!(
            code,
            Some("PIT-400"),
            "request without a message: {response:?}"
        );
        return;
    };
    if request.metadata.is_empty() {
        assert_eq!(
            code,
            Some("PIT-500"),
            "request without metadata: {response:?}"
        );
        return;
    }

    // A well-formed forwarded request to room.join answers its payload.
    let metadata_ok =
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&request.metadata)
            .is_ok_and(|m| !m.contains_key("reqTimeout"));
    let session_ok = request.session.as_ref().is_none_or(|s| {
        s.data.is_empty()
            || serde_json::from_slice::<HashMap<String, serde_json::Value>>(&s.data).is_ok()
    });
    let route_ok = msg.route == "room.join" || msg.route == "room.room.join";
    let sys_request = request.r#type == protos::RpcType::Sys as i32
        && msg.r#type == protos::MsgType::MsgRequest as i32;
    if let (true, true, true, true, Ok(payload)) = (
        metadata_ok,
        session_ok,
        route_ok,
        sys_request,
        serde_json::from_slice::<serde_json::Value>(&msg.data),
    ) {
        assert_eq!(code, None, "well-formed join refused: {response:?}");
        let answer: serde_json::Value =
            serde_json::from_slice(&response.data).expect("join answers JSON");
        // Compared after one serialize/parse round, as the handler does it
        // (serde_json's float parsing is not exact without float_roundtrip).
        let expected: serde_json::Value =
            serde_json::from_slice(&serde_json::to_vec(&payload).expect("serializes"))
                .expect("parses");
        assert_eq!(answer, expected, "join did not echo its payload");
    }
});

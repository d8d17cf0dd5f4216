//! `NatsRpc` against a real NATS: the one of `scripts/cluster-deps.sh`
//! (`PITAYA_TEST_NATS`), and a nats-server started here for the restart
//! scenario. Compiled with `--features real-cluster-tests` only
//! (which implies `nats`).
#![cfg(all(feature = "real-cluster-tests", feature = "nats"))]

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use pitaya_cluster::{
    ClusterError, NatsConfig, NatsRpc, RpcClient, RpcServer, ServerInfo, protos, subjects,
};
use pitaya_core::PitayaError;
use prost::Message;
use support::{NatsProcess, Recorder, nats_url, nothing, recv, unique, user_request};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(300);

fn config(url: &str) -> NatsConfig {
    let mut config = NatsConfig::new(url);
    config.reconnect_wait = Duration::from_millis(100);
    config.reconnect_jitter = Duration::from_millis(50);
    config.max_reconnection_retries = None;
    config
}

fn server(server_type: &str, frontend: bool) -> ServerInfo {
    ServerInfo::new(unique(server_type), server_type, frontend).with_hostname("test-host")
}

async fn raw(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.expect("connect to nats")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_reply_on_the_exact_subject() {
    let url = nats_url();
    let room_type = unique("room");
    let room = NatsRpc::connect(config(&url), server(&room_type, false))
        .await
        .unwrap();
    let (inbound, mut received) = Recorder::new(Duration::ZERO);
    room.start(inbound).await.unwrap();

    // A raw client, as a Go server would: protos.Request on
    // pitaya/servers/<type>/<id>, protos.Response back.
    let raw = raw(&url).await;
    let subject = format!("pitaya/servers/{room_type}/{}", room.me().id);
    let request = protos::Request {
        r#type: protos::RpcType::Sys as i32,
        session: Some(protos::Session {
            id: 7,
            uid: "u1".into(),
            data: Bytes::from_static(b"{}"),
        }),
        msg: Some(protos::Msg {
            id: 3,
            route: format!("{room_type}.room.join"),
            data: Bytes::from_static(b"{\"a\":1}"),
            ..protos::Msg::default()
        }),
        frontend_id: "front-1".into(),
        metadata: Bytes::from_static(b"{\"reqTimeout\":\"5s\"}"),
    };
    let reply = tokio::time::timeout(
        WAIT,
        raw.request(subject, Bytes::from(request.encode_to_vec())),
    )
    .await
    .expect("reply in time")
    .expect("reply");
    let response = protos::Response::decode(reply.payload).unwrap();
    assert_eq!(
        response.into_result().unwrap(),
        Bytes::from(format!("{room_type}.room.join:{{\"a\":1}}"))
    );
    // The server saw the request as sent, with the reply subject in msg.reply.
    let seen = recv(&mut received.requests, WAIT, "request").await;
    let msg = seen.msg.clone().unwrap();
    assert!(
        msg.reply.starts_with("_INBOX."),
        "reply subject {:?}",
        msg.reply
    );
    assert_eq!(seen.session, request.session);
    assert_eq!(seen.frontend_id, "front-1");
    assert_eq!(seen.metadata, request.metadata);

    // And through NatsRpc's own client.
    let front = NatsRpc::connect(config(&url), server("connector", true))
        .await
        .unwrap();
    assert!(front.is_connected());
    let response = front
        .request(room.me(), user_request("r.s.m", b"x"), WAIT)
        .await
        .unwrap();
    assert_eq!(response.data, Bytes::from_static(b"r.s.m:x"));

    room.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_times_out_with_pit_408_and_absent_one_has_no_responders() {
    let url = nats_url();
    let target = server(&unique("room"), false);
    // Someone listens on the subject but never answers.
    let raw = raw(&url).await;
    let mut silent = raw
        .subscribe(subjects::server(&target.server_type, &target.id))
        .await
        .unwrap();
    raw.flush().await.unwrap();

    let front = NatsRpc::connect(config(&url), server("connector", true))
        .await
        .unwrap();
    let err = front
        .request(
            &target,
            user_request("room.room.slow", b""),
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Timeout { .. }), "{err:?}");
    let err = PitayaError::from(err);
    assert_eq!(err.code, "PIT-408");
    assert_eq!(err.msg, "rpc client: request timeout");
    assert_eq!(err.metadata["timeout"], "300ms");
    assert_eq!(err.metadata["route"], "room.room.slow");
    assert_eq!(err.metadata["server"], front.me().id);
    assert_eq!(err.metadata["peer.id"], target.id);
    // The request did go out on the exact subject.
    let sent = silent.next().await.unwrap();
    assert_eq!(
        protos::Request::decode(sent.payload).unwrap().route(),
        "room.room.slow"
    );

    let absent = server(&unique("room"), false);
    let err = front
        .request(&absent, user_request("a.b.c", b""), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::NoResponders { .. }), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_kick_and_bind_on_the_exact_subjects() {
    let url = nats_url();
    let front_type = unique("connector");
    let front = NatsRpc::connect(config(&url), server(&front_type, true))
        .await
        .unwrap();
    let (inbound, mut received) = Recorder::new(Duration::ZERO);
    front.start(inbound).await.unwrap();
    let sub = front.subscribe_user("u1").await.unwrap();

    // Published by a raw client on Go's subjects, they reach the inbound.
    let raw = raw(&url).await;
    let push = protos::Push {
        route: "chat.message".into(),
        uid: "u1".into(),
        data: Bytes::from_static(b"{\"text\":\"hi\"}"),
    };
    raw.publish(
        format!("pitaya/{front_type}/user/u1/push"),
        Bytes::from(push.encode_to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut received.pushes, WAIT, "push").await, push);
    let kick = protos::KickMsg {
        user_id: "u1".into(),
    };
    raw.publish(
        format!("pitaya/{front_type}/user/u1/kick"),
        Bytes::from(kick.encode_to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut received.kicks, WAIT, "kick").await, kick);
    // A kick sent as a request gets the KickAnswer back.
    let answer = raw
        .request(
            format!("pitaya/{front_type}/user/u1/kick"),
            Bytes::from(kick.encode_to_vec()),
        )
        .await
        .unwrap();
    assert!(protos::KickAnswer::decode(answer.payload).unwrap().kicked);
    recv(&mut received.kicks, WAIT, "kick request").await;
    let bind = protos::BindMsg {
        uid: "u1".into(),
        fid: "other-front".into(),
    };
    raw.publish(
        format!("pitaya/{front_type}/bindings"),
        Bytes::from(bind.encode_to_vec()),
    )
    .await
    .unwrap();
    assert_eq!(recv(&mut received.binds, WAIT, "bind").await, bind);

    // Pushes to another uid are not delivered; in-order delivery per uid.
    let backend = NatsRpc::connect(config(&url), server("room", false))
        .await
        .unwrap();
    backend
        .push_to_user(
            &front_type,
            protos::Push {
                uid: "u2".into(),
                ..push.clone()
            },
        )
        .await
        .unwrap();
    for i in 0..20u8 {
        backend
            .push_to_user(
                &front_type,
                protos::Push {
                    data: Bytes::from(vec![i]),
                    ..push.clone()
                },
            )
            .await
            .unwrap();
    }
    for i in 0..20u8 {
        let got = recv(&mut received.pushes, WAIT, "ordered push").await;
        assert_eq!((got.uid.as_str(), &got.data[..]), ("u1", &[i][..]));
    }
    backend.kick_user(&front_type, kick.clone()).await.unwrap();
    assert_eq!(
        recv(&mut received.kicks, WAIT, "kick via client").await,
        kick
    );
    backend
        .broadcast_bind(&front_type, bind.clone())
        .await
        .unwrap();
    assert_eq!(
        recv(&mut received.binds, WAIT, "bind via client").await,
        bind
    );

    // Unsubscribing stops pushes and kicks.
    sub.close().await;
    backend
        .push_to_user(&front_type, push.clone())
        .await
        .unwrap();
    backend.kick_user(&front_type, kick.clone()).await.unwrap();
    nothing(&mut received.pushes, QUIET, "push after close").await;
    nothing(&mut received.kicks, QUIET, "kick after close").await;

    // Dropping the handle unsubscribes too.
    let sub = front.subscribe_user("u3").await.unwrap();
    drop(sub);
    tokio::time::sleep(Duration::from_millis(100)).await;
    backend
        .push_to_user(
            &front_type,
            protos::Push {
                uid: "u3".into(),
                ..push.clone()
            },
        )
        .await
        .unwrap();
    nothing(&mut received.pushes, QUIET, "push after drop").await;

    front.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_publishes_on_the_exact_subjects() {
    let url = nats_url();
    let raw = raw(&url).await;
    let front_type = unique("connector");
    let mut pushes = raw
        .subscribe(format!("pitaya/{front_type}/user/u9/push"))
        .await
        .unwrap();
    let mut kicks = raw
        .subscribe(format!("pitaya/{front_type}/user/u9/kick"))
        .await
        .unwrap();
    let mut binds = raw
        .subscribe(format!("pitaya/{front_type}/bindings"))
        .await
        .unwrap();
    raw.flush().await.unwrap();

    let backend = NatsRpc::connect(config(&url), server("room", false))
        .await
        .unwrap();
    let push = protos::Push {
        route: "r".into(),
        uid: "u9".into(),
        data: Bytes::from_static(b"d"),
    };
    backend
        .push_to_user(&front_type, push.clone())
        .await
        .unwrap();
    let kick = protos::KickMsg {
        user_id: "u9".into(),
    };
    backend.kick_user(&front_type, kick.clone()).await.unwrap();
    let bind = protos::BindMsg {
        uid: "u9".into(),
        fid: "f".into(),
    };
    backend
        .broadcast_bind(&front_type, bind.clone())
        .await
        .unwrap();

    let got = tokio::time::timeout(WAIT, pushes.next())
        .await
        .unwrap()
        .unwrap();
    assert!(got.reply.is_none() && got.headers.is_none());
    assert_eq!(protos::Push::decode(got.payload).unwrap(), push);
    let got = tokio::time::timeout(WAIT, kicks.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(protos::KickMsg::decode(got.payload).unwrap(), kick);
    let got = tokio::time::timeout(WAIT, binds.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(protos::BindMsg::decode(got.payload).unwrap(), bind);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_dropped() {
    let url = nats_url();
    let room = NatsRpc::connect(config(&url), server(&unique("room"), false))
        .await
        .unwrap();
    let (inbound, mut received) = Recorder::new(Duration::ZERO);
    room.start(inbound).await.unwrap();
    let subject = subjects::server(&room.me().server_type, &room.me().id);
    let raw = raw(&url).await;

    for (what, payload) in [
        ("undecodable", Bytes::from_static(b"\xff\xff\xff\xff")),
        ("truncated", Bytes::from_static(b"\x1a\x10\x12")),
        (
            "no msg",
            Bytes::from(protos::Request::default().encode_to_vec()),
        ),
        (
            "session but no msg",
            Bytes::from(
                protos::Request {
                    session: Some(protos::Session::default()),
                    frontend_id: "f".into(),
                    ..protos::Request::default()
                }
                .encode_to_vec(),
            ),
        ),
    ] {
        let request = async_nats::Request::new()
            .payload(payload)
            .timeout(Some(QUIET));
        let result = raw.send_request(subject.clone(), request).await;
        assert!(result.is_err(), "{what}: no answer expected");
    }
    nothing(&mut received.requests, QUIET, "malformed request").await;

    // The server is still alive.
    let front = NatsRpc::connect(config(&url), server("connector", true))
        .await
        .unwrap();
    let response = front
        .request(room.me(), user_request("a.b.c", b"ok"), WAIT)
        .await
        .unwrap();
    assert_eq!(response.data, Bytes::from_static(b"a.b.c:ok"));
    room.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handlers_run_concurrently_up_to_the_bound_and_stop_drains() {
    let url = nats_url();
    let mut cfg = config(&url);
    cfg.services = 3;
    let room = Arc::new(
        NatsRpc::connect(cfg, server(&unique("room"), false))
            .await
            .unwrap(),
    );
    let (inbound, _received) = Recorder::new(Duration::from_millis(300));
    room.start(inbound.clone()).await.unwrap();
    let front = Arc::new(
        NatsRpc::connect(config(&url), server("connector", true))
            .await
            .unwrap(),
    );

    let started = tokio::time::Instant::now();
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let front = front.clone();
            let target = room.me().clone();
            tokio::spawn(async move {
                let route = format!("a.b.c{i}");
                front
                    .request(&target, user_request(&route, b""), WAIT)
                    .await
            })
        })
        .collect();
    // Stop while requests are in flight: they are still answered.
    tokio::time::sleep(Duration::from_millis(100)).await;
    room.stop().await.unwrap();
    for call in calls {
        let response = call.await.unwrap().expect("answered despite stop");
        assert!(response.error.is_none());
    }
    assert_eq!(inbound.max_running.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "two rounds of 3"
    );

    // Stopped: nobody answers any more.
    let err = front
        .request(room.me(), user_request("a.b.c", b""), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::NoResponders { .. }), "{err:?}");
    // A deliberate stop is not a connection lost for good.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), room.closed())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_resumes_after_a_nats_restart() {
    let mut nats = NatsProcess::start();
    let url = nats.url();
    let front_type = unique("connector");
    let room = NatsRpc::connect(config(&url), server(&unique("room"), false))
        .await
        .unwrap();
    let (room_inbound, _room_received) = Recorder::new(Duration::ZERO);
    room.start(room_inbound).await.unwrap();
    let front = NatsRpc::connect(config(&url), server(&front_type, true))
        .await
        .unwrap();
    let (front_inbound, mut front_received) = Recorder::new(Duration::ZERO);
    front.start(front_inbound).await.unwrap();
    let _sub = front.subscribe_user("u1").await.unwrap();

    assert!(
        front
            .request(room.me(), user_request("a.b.c", b""), WAIT)
            .await
            .is_ok()
    );

    nats.restart();

    // Requests work again once both sides reconnected and re-subscribed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match front
            .request(
                room.me(),
                user_request("a.b.c", b"again"),
                Duration::from_millis(500),
            )
            .await
        {
            Ok(response) => {
                assert_eq!(response.data, Bytes::from_static(b"a.b.c:again"));
                break;
            }
            Err(err) => assert!(
                tokio::time::Instant::now() < deadline,
                "rpc did not resume: {err}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    support::eventually(Duration::from_secs(10), "both clients reconnected", || {
        front.is_connected() && room.is_connected()
    })
    .await;

    // The user subscription was restored as well.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        room.push_to_user(
            &front_type,
            protos::Push {
                route: "r".into(),
                uid: "u1".into(),
                data: Bytes::new(),
            },
        )
        .await
        .unwrap();
        if tokio::time::timeout(Duration::from_millis(200), front_received.pushes.recv())
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pushes did not resume"
        );
    }

    room.stop().await.unwrap();
    front.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_max_reconnects() {
    support::init_logs();
    let mut nats = NatsProcess::start();
    let mut cfg = config(&nats.url());
    cfg.max_reconnection_retries = Some(2);
    let front = NatsRpc::connect(cfg, server("connector", true))
        .await
        .unwrap();
    let (inbound, _received) = Recorder::new(Duration::ZERO);
    front.start(inbound).await.unwrap();
    nats.kill();
    tokio::time::timeout(Duration::from_secs(10), front.closed())
        .await
        .expect("closed() resolves once reconnecting is given up");
    assert!(!front.is_connected());
}

/// Replies with as many bytes as the request's data says.
struct Bloater;

impl pitaya_cluster::Inbound for Bloater {
    fn on_request(
        &self,
        request: protos::Request,
    ) -> pitaya_core::cluster::ClusterFuture<'_, protos::Response> {
        Box::pin(async move {
            let msg = request.msg.unwrap_or_default();
            let len: usize = std::str::from_utf8(&msg.data)
                .ok()
                .and_then(|text| text.parse().ok())
                .unwrap_or(0);
            protos::Response::ok(vec![b'x'; len])
        })
    }

    fn on_push(&self, _push: protos::Push) -> pitaya_core::cluster::ClusterFuture<'_, ()> {
        Box::pin(async {})
    }

    fn on_kick(
        &self,
        _kick: protos::KickMsg,
    ) -> pitaya_core::cluster::ClusterFuture<'_, protos::KickAnswer> {
        Box::pin(async { protos::KickAnswer { kicked: false } })
    }

    fn on_bind(&self, _bind: protos::BindMsg) -> pitaya_core::cluster::ClusterFuture<'_, ()> {
        Box::pin(async {})
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_over_the_max_payload_is_an_error_reply_not_a_timeout() {
    let url = nats_url();
    let room_type = unique("room");
    let room = NatsRpc::connect(config(&url), server(&room_type, false))
        .await
        .unwrap();
    room.start(Arc::new(Bloater)).await.unwrap();
    let front = NatsRpc::connect(config(&url), server("connector", true))
        .await
        .unwrap();

    // Under the limit: the reply arrives as sent.
    let response = front
        .request(room.me(), user_request("r.s.m", b"1000"), WAIT)
        .await
        .unwrap();
    assert_eq!(response.data.len(), 1000);

    // Over NATS's default 1 MiB: an error reply, long before the timeout.
    let started = tokio::time::Instant::now();
    let response = front
        .request(room.me(), user_request("r.s.m", b"2000000"), WAIT)
        .await
        .unwrap();
    let err = response.into_result().unwrap_err();
    assert_eq!(err.code, "PIT-500", "{err:?}");
    assert!(
        err.msg.contains("maximum payload") && err.msg.contains("2000"),
        "{err:?}"
    );
    assert!(
        started.elapsed() < WAIT / 2,
        "answered in {:?}",
        started.elapsed()
    );
    room.stop().await.unwrap();
}

//! The attack suite: hostile clients against a real server process (the
//! `hostile-target` binary, the framework's DEFAULT limits unless a case
//! says otherwise), each case asserting a bound: the hostile connection is
//! closed within its deadline (or answered as it must be), the server's
//! memory (VmRSS / VmHWM / VmSize from `/proc`) stays under a stated
//! bound, and a canary client (`echo.echo.echo` every 100 ms) sees no
//! failure.
//!
//! Every case starts its own server process (killed on drop, even on a
//! panic; it also exits by itself when this process dies), so memory
//! measurements do not mix. The one latency assertion (the canary's p99
//! under the zlib bomb) runs alone: it takes [`EXCLUSIVE`] for writing,
//! every other case for reading.
//!
//! Cases marked "fails at 68407ac" are the findings of the hardening
//! issue (and its strictness fixes): that commit accepted them.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use pitaya_tests::hostile::{
    self, Canary, CanaryReport, Closed, HANDSHAKE, MAX_BODY, MemPeak, MemSampler, Peer, Stall,
    TargetProcess, kind, mib,
};
use serde_json::{Value, json};

/// The server binary: this package's `hostile-target`, or the one
/// `PITAYA_HOSTILE_TARGET` names (e.g. one built from an older commit, to
/// see which cases it fails).
fn target_binary() -> String {
    std::env::var("PITAYA_HOSTILE_TARGET")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_hostile-target").to_owned())
}

/// A protocol violation must close the connection within this.
const CLOSE_DEADLINE: Duration = Duration::from_secs(2);

/// How long a normal request may take here (a debug build on a shared
/// machine).
const ANSWER: Duration = Duration::from_secs(5);

const MIB: u64 = 1 << 20;

/// Taken for writing by the latency-sensitive case, for reading by all
/// others.
static EXCLUSIVE: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    EXCLUSIVE.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    EXCLUSIVE.write().unwrap_or_else(PoisonError::into_inner)
}

/// A target server and a canary on it.
struct Harness {
    target: TargetProcess,
    canary: Option<Canary>,
    _guard: Guard,
}

enum Guard {
    Shared(#[allow(dead_code)] RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] RwLockWriteGuard<'static, ()>),
}

impl Harness {
    /// A target with `args` and a canary every 100 ms.
    fn start(args: &[&str]) -> Self {
        Self::with(args, Guard::Shared(shared()), Duration::from_millis(100))
    }

    fn with(args: &[&str], guard: Guard, period: Duration) -> Self {
        pitaya_tests::init_tracing();
        let target = TargetProcess::start(&target_binary(), args).expect("start hostile-target");
        let canary = Canary::start(&target.tcp_url(), period).expect("start the canary");
        Self {
            target,
            canary: Some(canary),
            _guard: guard,
        }
    }

    fn tcp(&self) -> SocketAddr {
        self.target.tcp
    }

    fn ws(&self) -> SocketAddr {
        self.target.ws
    }

    fn sampler(&self) -> MemSampler {
        MemSampler::start(self.target.pid).expect("read the target's memory")
    }

    /// Stops the canary, asserts it saw no failure (and made requests)
    /// and the target still runs; returns the canary's report.
    fn finish(mut self) -> CanaryReport {
        let report = self.canary.take().expect("canary").stop();
        assert!(
            report.failures.is_empty(),
            "the canary saw failures: {:?}",
            report.failures
        );
        assert!(!report.latencies.is_empty(), "the canary made no request");
        assert!(self.target.is_running(), "the target died");
        report
    }
}

/// Asserts the server closes `peer` within `deadline`; returns when.
async fn assert_closed(peer: &mut Peer, deadline: Duration, what: &str) -> Duration {
    match peer.closed_within(deadline).await {
        Closed::Eof(after) | Closed::Reset(after) => after,
        Closed::Open => panic!("{what}: still open after {deadline:?}"),
    }
}

/// Asserts the server keeps `peer` open for `duration`.
async fn assert_open(peer: &mut Peer, duration: Duration, what: &str) {
    let closed = peer.closed_within(duration).await;
    assert_eq!(closed, Closed::Open, "{what}: closed");
}

fn assert_rss_below(peak: &MemPeak, bound: u64, what: &str) {
    eprintln!(
        "{what}: server RSS +{:.1} MiB, VmSize +{:.1} MiB",
        mib(peak.rss_growth()),
        mib(peak.vm_growth())
    );
    assert!(
        peak.rss_growth() < bound,
        "{what}: server RSS grew {:.1} MiB (bound {:.1} MiB; base {:.1} MiB)",
        mib(peak.rss_growth()),
        mib(bound),
        mib(peak.base.rss)
    );
}

fn assert_vm_below(peak: &MemPeak, bound: u64, what: &str) {
    assert!(
        peak.vm_growth() < bound,
        "{what}: server VmSize grew {:.1} MiB (bound {:.1} MiB; base {:.1} MiB)",
        mib(peak.vm_growth()),
        mib(bound),
        mib(peak.base.vm_size)
    );
}

/// The start of a response, for messages (a bomb's echo is 16 MiB).
fn brief(response: &hostile::Response) -> String {
    let start = &response.body[..response.body.len().min(120)];
    format!(
        "error {}, {} bytes: {}",
        response.error,
        response.body.len(),
        String::from_utf8_lossy(start)
    )
}

/// The JSON echo of `value` over a raw peer works.
async fn assert_echo(peer: &mut Peer, id: u64, value: &Value) {
    let body = serde_json::to_vec(value).unwrap();
    let response = peer
        .request(id, "echo.echo.echo", &body, ANSWER)
        .await
        .expect("an answer");
    assert_eq!(response.id, id);
    assert!(!response.error, "{}", brief(&response));
    assert_eq!(
        response.json().as_ref(),
        Some(value),
        "{}",
        brief(&response)
    );
}

// ---------------------------------------------------------------------------
// Finding 1: handshake amplification.

/// Fails at 68407ac: three 16 MiB handshakes with one huge `user` array
/// were accepted (code 200) and each kept ~270 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_handshakes_are_refused_and_cost_no_memory() {
    let harness = Harness::start(&[]);
    let sampler = harness.sampler();
    let bombs: Vec<_> = (0..3)
        .map(|_| {
            tokio::spawn(hostile::handshake_bomb(
                harness.tcp(),
                MAX_BODY,
                false,
                Duration::from_secs(5),
            ))
        })
        .collect();
    for bomb in bombs {
        let bomb = bomb.await.unwrap().unwrap();
        assert!(
            matches!(bomb.code, None | Some(400)),
            "handshake answered with {:?}",
            bomb.code
        );
        let closed = bomb.closed.after().expect("the bomb connection was closed");
        assert!(closed < CLOSE_DEADLINE, "closed only after {closed:?}");
    }
    let peak = sampler.stop();
    assert_rss_below(&peak, 20 * MIB, "3 x 16 MiB handshakes");
    harness.finish();
}

/// Fails at 68407ac (code 200): the same bomb over WebSocket, one 16 MiB
/// binary message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_mib_handshake_over_websocket_is_refused() {
    let harness = Harness::start(&[]);
    let sampler = harness.sampler();
    let bomb = hostile::handshake_bomb(harness.ws(), MAX_BODY, true, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(matches!(bomb.code, None | Some(400)), "{:?}", bomb.code);
    let closed = bomb.closed.after().expect("closed");
    assert!(closed < CLOSE_DEADLINE, "closed only after {closed:?}");
    assert_rss_below(&sampler.stop(), 20 * MIB, "a 16 MiB websocket handshake");
    harness.finish();
}

/// Fails at 68407ac (code 200): a `user` block over 16 KiB in a
/// handshake that fits the 64 KiB pre-handshake packet limit.
#[tokio::test]
async fn handshake_user_block_over_16_kib_gets_code_400() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::tcp(harness.tcp()).await.unwrap();
    let doc = hostile::json_array_doc(32 * 1024, true);
    let reply = peer.handshake_with(&doc).await.unwrap();
    assert_eq!(reply.expect("an answer")["code"], 400);
    assert_closed(&mut peer, CLOSE_DEADLINE, "refused handshake").await;
    harness.finish();
}

/// Under the limits: an 8 KiB `user` block is accepted and the session
/// works (the limit is not stricter than it says).
#[tokio::test]
async fn handshake_user_block_of_8_kib_is_accepted() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::tcp(harness.tcp()).await.unwrap();
    let doc = hostile::json_array_doc(8 * 1024, true);
    let reply = peer.handshake_with(&doc).await.unwrap().expect("an answer");
    assert_eq!(reply["code"], 200);
    peer.ack().await.unwrap();
    assert_echo(&mut peer, 1, &json!({"after": "a big handshake"})).await;
    harness.finish();
}

/// A handshake packet of exactly 64 KiB (the pre-handshake limit) is
/// accepted.
#[tokio::test]
async fn handshake_packet_at_the_pre_handshake_limit_is_accepted() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::tcp(harness.tcp()).await.unwrap();
    let reply = peer
        .handshake_with(&padded_handshake(64 * 1024))
        .await
        .unwrap();
    assert_eq!(reply.expect("an answer")["code"], 200);
    harness.finish();
}

/// Fails at 68407ac (accepted): one byte over the 64 KiB pre-handshake
/// limit closes the connection, without an answer.
#[tokio::test]
async fn handshake_packet_over_the_pre_handshake_limit_is_closed() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::tcp(harness.tcp()).await.unwrap();
    let body = padded_handshake(64 * 1024 + 1);
    let _ = peer.send_packet(kind::HANDSHAKE, &body).await;
    let reply = peer.handshake_reply(CLOSE_DEADLINE).await.unwrap();
    assert_eq!(reply, None, "closed without answering");
    harness.finish();
}

/// A valid handshake of exactly `len` bytes (whitespace-padded).
fn padded_handshake(len: usize) -> Vec<u8> {
    let mut body = HANDSHAKE[..HANDSHAKE.len() - 1].to_vec();
    body.resize(len - 1, b' ');
    body.push(b'}');
    body
}

#[tokio::test]
async fn undecodable_handshake_gets_code_400_and_is_closed() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::tcp(harness.tcp()).await.unwrap();
    let reply = peer.handshake_with(b"{{{").await.unwrap();
    assert_eq!(reply.expect("an answer")["code"], 400);
    assert_closed(&mut peer, CLOSE_DEADLINE, "undecodable handshake").await;
    harness.finish();
}

// ---------------------------------------------------------------------------
// Finding 2: compressed-body amplification.

/// Fails at 68407ac (the 16 MiB body was inflated, parsed and echoed:
/// ~318 MB): a ~16 KiB zlib bomb gets a PIT-400 error, the session stays
/// usable, the server's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zlib_bomb_gets_pit_400_and_the_session_stays_usable() {
    let harness = Harness::start(&[]);
    let bomb = hostile::zlib_bomb_body(MAX_BODY);
    assert!(bomb.len() < 20 * 1024, "bomb of {} bytes", bomb.len());
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    let sampler = harness.sampler();
    peer.send_packet_bytes(&hostile::compressed_request(1, "echo.echo.echo", &bomb))
        .await
        .unwrap();
    let response = peer.next_response(ANSWER).await.unwrap();
    assert_eq!(response.id, 1);
    assert_eq!(
        response.error_code().as_deref(),
        Some("PIT-400"),
        "{}",
        brief(&response)
    );
    assert_echo(&mut peer, 2, &json!({"after": "the bomb"})).await;
    // The default inflate limit is 1 MiB: a few of it, not 16 MiB.
    assert_rss_below(&sampler.stop(), 16 * MIB, "one zlib bomb");
    harness.finish();
}

/// Fails at 68407ac (each bomb stalled a worker ~700 ms): while 8
/// attackers repeat zlib bombs for 6 s, the canary (every 20 ms) sees a
/// p99 latency (over >= 50 requests) under 50 ms and no failure, every
/// bomb is refused, and the server's RSS grows less than 48 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zlib_bombs_from_8_attackers_do_not_stall_the_canary() {
    let harness = Harness::with(
        &[],
        Guard::Exclusive(exclusive()),
        Duration::from_millis(20),
    );
    let sampler = harness.sampler();
    let bomb = hostile::zlib_bomb_body(MAX_BODY);
    // Each attacker sends its next bomb 100 ms after the answer to its
    // last (about 40/s here, 500/s on a release build): a closed loop
    // with no pause only measures how the OS shares 2 saturated cores.
    // At 68407ac a single bomb took 0.7-1.2 s of CPU.
    let pause = Duration::from_millis(100);
    let stats = hostile::bomb_loop(harness.tcp(), bomb, 8, pause, Duration::from_secs(6)).await;
    let peak = sampler.stop();
    let report = harness.finish();
    eprintln!(
        "{} bombs ({stats:?}); canary p50 {:?} p99 {:?} max {:?} over {}; RSS +{:.1} MiB",
        stats.sent,
        report.p50(),
        report.p99(),
        report.max(),
        report.latencies.len(),
        mib(peak.rss_growth())
    );
    assert!(stats.sent >= 8, "{stats:?}");
    assert_eq!(stats.accepted, 0, "a bomb was accepted: {stats:?}");
    assert_eq!(stats.other + stats.closed, 0, "{stats:?}");
    assert_eq!(stats.refused, stats.sent, "{stats:?}");
    assert!(
        report.latencies.len() >= 50,
        "{} canary requests",
        report.latencies.len()
    );
    assert!(
        report.p99() < Duration::from_millis(50),
        "canary p99 {:?} (p50 {:?}, max {:?}, {} requests) under {} bombs",
        report.p99(),
        report.p50(),
        report.max(),
        report.latencies.len(),
        stats.sent
    );
    assert_rss_below(&peak, 48 * MIB, "8 bomb attackers");
}

/// Fails at 68407ac (accepted): a body that inflates past 64 KiB to more
/// than 100 times its compressed size is refused even under the 1 MiB
/// inflate limit.
#[tokio::test]
async fn zlib_body_over_the_inflate_ratio_gets_pit_400() {
    let harness = Harness::start(&[]);
    let bomb = hostile::zlib_bomb_body(512 * 1024);
    assert!(bomb.len() * 100 < 512 * 1024, "ratio over 100");
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    peer.send_packet_bytes(&hostile::compressed_request(1, "echo.echo.echo", &bomb))
        .await
        .unwrap();
    let response = peer.next_response(ANSWER).await.unwrap();
    assert_eq!(
        response.error_code().as_deref(),
        Some("PIT-400"),
        "{}",
        brief(&response)
    );
    assert_echo(&mut peer, 2, &json!("still usable")).await;
    harness.finish();
}

/// A legitimate compressed request is inflated and answered.
#[tokio::test]
async fn compressed_request_within_the_limits_is_answered() {
    let harness = Harness::start(&[]);
    let value = json!({"items": vec!["same text again"; 200]});
    let body = pitaya::codec::compression::deflate(&serde_json::to_vec(&value).unwrap());
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    peer.send_packet_bytes(&hostile::compressed_request(1, "echo.echo.echo", &body))
        .await
        .unwrap();
    let response = peer.next_response(ANSWER).await.unwrap();
    assert!(!response.error, "{}", brief(&response));
    assert_eq!(response.json(), Some(value));
    harness.finish();
}

// ---------------------------------------------------------------------------
// Finding 3: reservations from an announced length.

/// Sockets this process may open for a flood, leaving room for the rest
/// of the suite (the target gets its own limit).
fn flood_sockets(wanted: usize) -> usize {
    let limit = hostile::open_files_limit().unwrap_or(1024);
    let usable = usize::try_from(limit.saturating_sub(600)).unwrap_or(usize::MAX);
    if usable < wanted {
        eprintln!("open-files limit {limit}: flooding with {usable} sockets instead of {wanted}");
    }
    wanted.min(usable)
}

/// Fails at 68407ac (each header reserved 16 MiB: 1,000 took 21 GB of
/// virtual memory, and none was closed): 1,000 sockets each sending only
/// `04 FF FF FF` before the handshake are closed within 2 s of sending
/// it, and the server's VmSize grows by less than 128 MiB (1/8 MiB a
/// socket, against 16 MiB) and its RSS by less than 16 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_16_mib_headers_are_closed_and_reserve_nothing() {
    let harness = Harness::start(&[]);
    let count = flood_sockets(1000);
    let sampler = harness.sampler();
    // 64 connects every 20 ms: the target's accept loop (a debug build)
    // keeps up, so no connection waits in an overflowed listen backlog
    // (see `hostile::flood`); all 1,000 are open at once all the same.
    let pace = Duration::from_millis(20);
    let flood = hostile::header_flood(harness.tcp(), count, pace, Duration::from_secs(5)).await;
    eprintln!("{flood:?}");
    let peak = sampler.stop();
    assert_eq!(flood.failed, 0, "{flood:?}");
    assert_eq!(flood.opened, count);
    assert_eq!(flood.closed, count, "all closed: {flood:?}");
    assert!(flood.slowest_close < CLOSE_DEADLINE, "{flood:?}");
    assert_vm_below(&peak, 128 * MIB, "1,000 16 MiB headers");
    assert_rss_below(&peak, 16 * MIB, "1,000 16 MiB headers");
    harness.finish();
}

/// Fails at 68407ac (held until the heartbeat timeout, 540 MB for 50):
/// 50 sockets each sending part of a body over 64 KiB before the
/// handshake are closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_bodies_before_the_handshake_are_closed() {
    let harness = Harness::start(&[]);
    let sampler = harness.sampler();
    let flood = hostile::partial_bodies(
        harness.tcp(),
        50,
        MAX_BODY,
        512 * 1024,
        false,
        Duration::from_secs(5),
    )
    .await;
    let peak = sampler.stop();
    assert_eq!(flood.opened, 50, "{flood:?}");
    assert_eq!(flood.closed, 50, "{flood:?}");
    assert!(flood.slowest_close < CLOSE_DEADLINE, "{flood:?}");
    assert_rss_below(&peak, 16 * MIB, "50 partial pre-handshake bodies");
    harness.finish();
}

/// Fails at 68407ac (each announced 16 MiB was reserved: 800 MiB of
/// VmSize): after a completed handshake, 50 connections each announcing
/// 16 MiB - 1 and sending 512 KiB cost about what arrived (25 MiB), not
/// what was announced (800 MiB): VmSize grows less than 100 MiB, RSS
/// less than 64 MiB. They stay open (a slow upload is not a violation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_bodies_after_the_handshake_cost_what_arrived() {
    let harness = Harness::start(&[]);
    let sampler = harness.sampler();
    let flood = hostile::partial_bodies(
        harness.tcp(),
        50,
        MAX_BODY,
        512 * 1024,
        true,
        Duration::from_secs(2),
    )
    .await;
    let peak = sampler.stop();
    assert_eq!(flood.opened, 50, "{flood:?}");
    assert_eq!(flood.closed, 0, "{flood:?}");
    // 25 MiB arrived, 800 MiB were announced.
    let announced = 50 * MAX_BODY as u64;
    assert_vm_below(
        &peak,
        announced / 8,
        "50 x (16 MiB announced, 512 KiB sent)",
    );
    assert_rss_below(&peak, 64 * MIB, "50 x 512 KiB arrived");
    harness.finish();
}

// ---------------------------------------------------------------------------
// Finding 4: no handshake deadline.

const DEADLINE_ARGS: &[&str] = &["--handshake-timeout-ms", "1000"];

/// Asserts a stalled connection is closed by the 1 s deadline (not much
/// earlier, not much later).
async fn assert_deadline_close(addr: SocketAddr, how: Stall) {
    let closed = hostile::stall_handshake(addr, how, Duration::from_secs(5))
        .await
        .unwrap();
    let after = closed
        .after()
        .unwrap_or_else(|| panic!("{how:?}: still open after 5 s"));
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "{how:?}: closed after {after:?}, the deadline is 1 s"
    );
}

/// Fails at 68407ac (open forever): heartbeats do not extend the deadline.
#[tokio::test]
async fn heartbeats_without_a_handshake_are_closed_at_the_deadline() {
    let harness = Harness::start(DEADLINE_ARGS);
    assert_deadline_close(harness.tcp(), Stall::Heartbeats(Duration::from_millis(300))).await;
    harness.finish();
}

/// Fails at 68407ac (open forever): a handshake without its ack.
#[tokio::test]
async fn a_handshake_without_ack_is_closed_at_the_deadline() {
    let harness = Harness::start(DEADLINE_ARGS);
    assert_deadline_close(harness.tcp(), Stall::NoAck(Duration::from_millis(300))).await;
    harness.finish();
}

/// Fails at 68407ac (open until the heartbeat timeout): a silent socket.
#[tokio::test]
async fn a_silent_socket_is_closed_at_the_deadline() {
    let harness = Harness::start(DEADLINE_ARGS);
    assert_deadline_close(harness.tcp(), Stall::Silent).await;
    harness.finish();
}

/// Fails at 68407ac: slowloris on the handshake, one byte per 100 ms.
#[tokio::test]
async fn slowloris_handshake_is_closed_at_the_deadline() {
    let harness = Harness::start(DEADLINE_ARGS);
    assert_deadline_close(harness.tcp(), Stall::Slowloris(Duration::from_millis(100))).await;
    harness.finish();
}

/// Fails at 68407ac (open forever). Over WebSocket too, counted from the
/// upgrade: a socket that upgrades and then only heartbeats.
#[tokio::test]
async fn websocket_without_a_handshake_is_closed_at_the_deadline() {
    let harness = Harness::start(DEADLINE_ARGS);
    let mut peer = Peer::ws(harness.ws()).await.unwrap();
    let started = Instant::now();
    let closed = loop {
        match peer.closed_within(Duration::from_millis(300)).await {
            Closed::Open => peer.send_packet(kind::HEARTBEAT, &[]).await.unwrap(),
            closed => break closed,
        }
        assert!(started.elapsed() < Duration::from_secs(5), "still open");
    };
    assert!(closed.is_closed());
    let after = started.elapsed();
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "closed after {after:?}"
    );
    harness.finish();
}

/// A client that handshakes and acks in time stays connected past the
/// deadline (the deadline only applies to the handshake).
#[tokio::test]
async fn a_client_that_acks_in_time_outlives_the_deadline() {
    let harness = Harness::start(DEADLINE_ARGS);
    let (client, _events) = pitaya_client::Client::connect(harness.target.tcp_url())
        .await
        .unwrap();
    let mut raw = Peer::handshaken(harness.tcp()).await.unwrap();
    assert_open(
        &mut raw,
        Duration::from_millis(1500),
        "raw client after its ack",
    )
    .await;
    let reply: Value = client.request("echo.echo.echo", &json!(1)).await.unwrap();
    assert_eq!(reply, json!(1));
    assert_echo(&mut raw, 1, &json!("past the deadline")).await;
    assert!(client.is_connected());
    harness.finish();
}

/// The HTTP upgrade of a WebSocket connection has its own deadline
/// (`--ws-upgrade-timeout-ms`): an upgrade request sent one byte per
/// 100 ms is cut off.
#[tokio::test]
async fn slowloris_websocket_upgrade_is_closed_at_its_deadline() {
    let harness = Harness::start(&["--ws-upgrade-timeout-ms", "1000"]);
    let closed = hostile::stall_handshake(
        harness.ws(),
        Stall::SlowUpgrade(Duration::from_millis(100)),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let after = closed.after().expect("closed");
    assert!(
        after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
        "closed after {after:?}"
    );
    harness.finish();
}

// ---------------------------------------------------------------------------
// Strictness.

/// Fails at 68407ac (the ack was taken and skipped the handshake
/// validators): a handshake ack before any handshake closes.
#[tokio::test]
async fn ack_before_the_handshake_is_closed() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::tcp(harness.tcp()).await.unwrap();
    peer.ack().await.unwrap();
    assert_closed(&mut peer, CLOSE_DEADLINE, "ack before handshake").await;
    harness.finish();
}

/// Fails at 68407ac (answered again): a second handshake closes.
#[tokio::test]
async fn a_second_handshake_is_closed() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    peer.send_packet(kind::HANDSHAKE, HANDSHAKE).await.unwrap();
    assert_closed(&mut peer, CLOSE_DEADLINE, "second handshake").await;
    harness.finish();
}

/// Fails at 68407ac (answered): a request with id 0 runs but gets no
/// response (as Go's `ResponseMID`);
/// the request with id 1 after it is answered, first.
#[tokio::test]
async fn a_request_with_id_0_gets_no_response() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    peer.send_request(0, "echo.echo.echo", b"\"zero\"")
        .await
        .unwrap();
    peer.send_request(1, "echo.echo.echo", b"\"one\"")
        .await
        .unwrap();
    let response = peer.next_response(ANSWER).await.unwrap();
    assert_eq!(response.id, 1, "the id 0 request was answered");
    assert_eq!(response.json(), Some(json!("one")));
    harness.finish();
}

/// A notify runs and is never answered; a request after it sees it ran.
#[tokio::test]
async fn a_notify_runs_without_an_answer() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    peer.send_packet(
        kind::DATA,
        &hostile::notify_message("echo.echo.note", b"{}"),
    )
    .await
    .unwrap();
    let response = peer
        .request(7, "echo.echo.notes", b"", ANSWER)
        .await
        .unwrap();
    assert_eq!(response.id, 7);
    assert_eq!(response.json(), Some(json!(1)));
    harness.finish();
}

/// An unknown route is an error answer (PIT-404), not a closed connection.
#[tokio::test]
async fn an_unknown_route_is_answered_with_pit_404() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    let response = peer
        .request(1, "echo.echo.nothing", b"{}", ANSWER)
        .await
        .unwrap();
    assert_eq!(response.error_code().as_deref(), Some("PIT-404"));
    assert_echo(&mut peer, 2, &json!("still here")).await;
    harness.finish();
}

// ---------------------------------------------------------------------------
// Protocol violations that close the connection (all but the oversized
// WebSocket frame passed at 68407ac; they stay passing).

/// How far a violating connection gets before it misbehaves.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Nothing sent yet.
    Fresh,
    /// Handshake answered, no ack.
    Handshaken,
    /// Handshake and ack done.
    Working,
}

/// Opens a connection at `stage`, sends `bytes` (raw socket bytes), and
/// asserts the server closes it within [`CLOSE_DEADLINE`].
async fn assert_violation_closes(ws: bool, stage: Stage, bytes: &[u8]) {
    let harness = Harness::start(&[]);
    let addr = if ws { harness.ws() } else { harness.tcp() };
    let mut peer = if ws {
        Peer::ws(addr).await.unwrap()
    } else {
        Peer::tcp(addr).await.unwrap()
    };
    match stage {
        Stage::Fresh => {}
        Stage::Handshaken => peer.handshake().await.unwrap(),
        Stage::Working => {
            peer.handshake().await.unwrap();
            peer.ack().await.unwrap();
        }
    }
    // The server may close before it has read everything.
    let _ = peer.send_raw(bytes).await;
    assert_closed(
        &mut peer,
        CLOSE_DEADLINE,
        &format!("{stage:?} + {bytes:02x?}"),
    )
    .await;
    harness.finish();
}

fn data(message: &[u8]) -> Vec<u8> {
    hostile::packet(kind::DATA, message)
}

macro_rules! violations {
    ($($(#[$doc:meta])* $name:ident: $ws:expr, $stage:expr, $bytes:expr;)*) => {$(
        $(#[$doc])*
        #[tokio::test]
        async fn $name() {
            assert_violation_closes($ws, $stage, &$bytes).await;
        }
    )*};
}

violations! {
    /// An HTTP request on the TCP port: type byte `G`.
    garbage_bytes_are_closed: false, Stage::Fresh, *b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    packet_type_0_is_closed: false, Stage::Fresh, [0x00, 0, 0, 0];
    packet_type_6_is_closed: false, Stage::Working, [0x06, 0, 0, 0];
    packet_type_255_is_closed: false, Stage::Working, [0xff, 0, 0, 1, 0];
    data_before_the_handshake_is_closed: false, Stage::Fresh, data(&hostile::request_message(1, "echo.echo.echo", 0, b"1"));
    data_before_the_ack_is_closed: false, Stage::Handshaken, data(&hostile::request_message(1, "echo.echo.echo", 0, b"1"));
    /// Message type 4 (flag `0x08`).
    message_type_4_is_closed: false, Stage::Working, data(&[0x08, 0x01, 0x01, b'x']);
    message_type_5_is_closed: false, Stage::Working, data(&[0x0a, 0x01, 0x01, b'x']);
    message_type_6_is_closed: false, Stage::Working, data(&[0x0c, 0x01, 0x01, b'x']);
    message_type_7_is_closed: false, Stage::Working, data(&[0x0e, 0x01, 0x01, b'x']);
    /// A response (server-only type 2) sent by a client.
    a_response_from_the_client_is_closed: false, Stage::Working, data(&[0x04, 0x01, b'{', b'}']);
    /// A push (server-only type 3) sent by a client.
    a_push_from_the_client_is_closed: false, Stage::Working, data(&[0x06, 0x01, b'x', b'{', b'}']);
    /// A kick packet is server to client only.
    a_kick_from_the_client_is_closed: false, Stage::Working, [kind::KICK, 0, 0, 0];
    /// An id varint of 11 continuation bytes (over 64 bits).
    varint_id_overflow_is_closed: false, Stage::Working, data(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x01, b'x']);
    /// A route length of 200 with 3 bytes left.
    route_length_past_the_end_is_closed: false, Stage::Working, data(&[0x00, 0x01, 200, b'e', b'c', b'h']);
    /// A compressed route code that no dictionary holds (the target has
    /// none).
    unknown_dictionary_route_code_is_closed: false, Stage::Working, data(&[0x01, 0x01, 0x77, 0x77, b'{', b'}']);
    /// A compressed-body flag on bytes that are not zlib.
    bad_zlib_is_closed: false, Stage::Working, hostile::compressed_request(1, "echo.echo.echo", b"\x78\x9cnot zlib at all");
    /// A truncated zlib stream.
    truncated_zlib_is_closed: false, Stage::Working, hostile::compressed_request(1, "echo.echo.echo", &hostile::zlib_bomb_body(4096)[..10]);
    /// A WebSocket text message.
    websocket_text_frame_is_closed: true, Stage::Working, hostile::ws_frame(true, 1, b"\x04\x00\x00\x00");
    /// Two whole packets in one WebSocket message.
    two_packets_in_one_websocket_frame_are_closed: true, Stage::Working, hostile::ws_frame(true, 2, &[hostile::packet(kind::HEARTBEAT, &[]), hostile::packet(kind::HEARTBEAT, &[])].concat());
    /// Half a packet per WebSocket message.
    half_a_packet_per_websocket_frame_is_closed: true, Stage::Working, [hostile::ws_frame(true, 2, &hostile::request_packet(1, "echo.echo.echo", b"\"half\"")[..6]), hostile::ws_frame(true, 2, &hostile::request_packet(1, "echo.echo.echo", b"\"half\"")[6..])].concat();
    /// A WebSocket message shorter than a packet header.
    websocket_message_shorter_than_a_header_is_closed: true, Stage::Working, hostile::ws_frame(true, 2, &[0x03, 0]);
    /// A data packet over WebSocket before the handshake.
    websocket_data_before_the_handshake_is_closed: true, Stage::Fresh, hostile::ws_frame(true, 2, &data(&hostile::request_message(1, "echo.echo.echo", 0, b"1")));
    /// Fails at 68407ac (it waited for the payload): a WebSocket frame
    /// header announcing 1 MiB before the handshake (the payload is never
    /// sent: the header alone must be refused).
    oversized_websocket_frame_is_closed: true, Stage::Fresh, [vec![0x82], hostile::ws_len_header(1 << 20), vec![0, 0, 0, 0]].concat();
    /// An unmasked client frame (RFC 6455 requires masking).
    unmasked_websocket_frame_is_closed: true, Stage::Working, [0x82, 0x04, 0x03, 0x00, 0x00, 0x00];
}

/// A request split over two WebSocket fragments (a continuation frame) is
/// one message: answered.
#[tokio::test]
async fn a_fragmented_websocket_message_is_one_packet() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::handshaken_ws(harness.ws()).await.unwrap();
    let request = hostile::request_packet(1, "echo.echo.echo", b"\"in two parts\"");
    peer.send_ws_frame(false, 2, &request[..8]).await.unwrap();
    peer.send_ws_frame(true, 0, &request[8..]).await.unwrap();
    let response = peer.next_response(ANSWER).await.unwrap();
    assert_eq!(response.json(), Some(json!("in two parts")));
    harness.finish();
}

// ---------------------------------------------------------------------------
// Floods on one connection.

/// 10,000 WebSocket pings (125-byte payloads) in a burst: the connection
/// still answers a request, the server's RSS grows less than 16 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_flood_is_harmless() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::handshaken_ws(harness.ws()).await.unwrap();
    let sampler = harness.sampler();
    let burst = hostile::ws_frame(true, 9, &[0x55; 125]).repeat(10_000);
    peer.send_while_reading(&burst).await.unwrap();
    assert_echo(&mut peer, 1, &json!("after 10,000 pings")).await;
    assert_rss_below(&sampler.stop(), 16 * MIB, "10,000 websocket pings");
    harness.finish();
}

/// 100,000 heartbeats (400 KB) in one burst: the server answers none of
/// them, still answers a request after them, its RSS grows less than
/// 16 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_heartbeat_flood_is_harmless() {
    let harness = Harness::start(&[]);
    let mut peer = Peer::handshaken(harness.tcp()).await.unwrap();
    let sampler = harness.sampler();
    let burst = hostile::packet(kind::HEARTBEAT, &[]).repeat(100_000);
    peer.send_raw(&burst).await.unwrap();
    assert_echo(&mut peer, 1, &json!("after 100,000 heartbeats")).await;
    assert_rss_below(&sampler.stop(), 16 * MIB, "100,000 heartbeats");
    harness.finish();
}

/// Bytes deflate cannot shrink (the server compresses responses).
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_be_bytes()[0]
        })
        .collect()
}

/// A client that sends 16 MiB of requests with 256 KiB responses and never
/// reads: the server (write timeout 1 s here) closes it within 5 s and
/// its RSS grows less than 16 MiB meanwhile; other sessions are unharmed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_closed_and_costs_little() {
    let harness = Harness::start(&["--write-timeout-ms", "1000"]);
    let mut peer = Peer::tcp_small_window(harness.tcp(), 4096).await.unwrap();
    peer.handshake().await.unwrap();
    peer.ack().await.unwrap();
    let sampler = harness.sampler();
    let body = incompressible(256 * 1024);
    let requests: Vec<u8> = (1..=64)
        .flat_map(|id| hostile::request_packet(id, "echo.echo.raw", &body))
        .collect();
    let started = Instant::now();
    // Writing blocks once the server stops reading (it is blocked writing
    // to us); it fails once the server gives up and closes.
    let written = tokio::time::timeout(Duration::from_secs(5), async {
        peer.send_raw(&requests).await?;
        // Everything fitted in the buffers: keep poking until the close.
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            peer.send_raw(&hostile::packet(kind::HEARTBEAT, &[]))
                .await?;
        }
        #[allow(unreachable_code)]
        std::io::Result::Ok(())
    })
    .await;
    let peak = sampler.stop();
    eprintln!(
        "the client that never reads: {written:?} after {:?}",
        started.elapsed()
    );
    assert!(
        matches!(written, Ok(Err(_))),
        "not closed within 5 s ({:?})",
        started.elapsed()
    );
    assert_rss_below(&peak, 16 * MIB, "a client that never reads");
    harness.finish();
}

/// 500 raw clients handshaking at once: every one is answered (code 200
/// and a request), and the server's RSS grows less than 16 MiB (under
/// 32 KiB a session; Go Pitaya's idle session is 31.5 KiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_handshakes_are_all_served() {
    let harness = Harness::start(&[]);
    let sampler = harness.sampler();
    let addr = harness.tcp();
    let clients: Vec<_> = (0..500u64)
        .map(|n| {
            tokio::spawn(async move {
                let mut peer = Peer::handshaken(addr).await?;
                let body = serde_json::to_vec(&json!({"n": n})).unwrap();
                let response = peer.request(1, "echo.echo.echo", &body, ANSWER).await?;
                std::io::Result::Ok((peer, response.json() == Some(json!({"n": n}))))
            })
        })
        .collect();
    let mut peers = Vec::new();
    for client in clients {
        let (peer, answered) = client.await.unwrap().unwrap();
        assert!(answered);
        peers.push(peer);
    }
    let peak = sampler.stop();
    assert_eq!(peers.len(), 500);
    assert_rss_below(&peak, 16 * MIB, "500 sessions");
    drop(peers);
    harness.finish();
}

// ---------------------------------------------------------------------------
// Connection limits.

/// Asserts a new connection is refused: closed before it can handshake.
async fn assert_refused(peer: std::io::Result<Peer>, what: &str) {
    let Ok(mut peer) = peer else {
        return; // refused before the connection was usable
    };
    // The server closes it at once; a handshake sent anyway is not
    // answered.
    let _ = peer.send_packet(kind::HANDSHAKE, HANDSHAKE).await;
    let reply = peer.handshake_reply(CLOSE_DEADLINE).await.unwrap_or(None);
    assert_eq!(reply, None, "{what}: answered");
}

/// Retries a connection until the server admits it (it frees the place
/// of a closed connection once it has noticed the close).
async fn admitted_within(
    deadline: Duration,
    connect: impl AsyncFn() -> std::io::Result<Peer>,
) -> Peer {
    let started = Instant::now();
    loop {
        if let Ok(mut peer) = connect().await
            && peer.handshake().await.is_ok()
        {
            peer.ack().await.unwrap();
            return peer;
        }
        assert!(
            started.elapsed() < deadline,
            "not admitted within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fails at 68407ac (no limit), as the two below. With
/// `--max-connections 5` (the canary is one of them): the 6th socket
/// is closed at once, the 5 stay served, and once one closes a new one is
/// admitted.
#[tokio::test]
async fn max_connections_refuses_the_sixth_and_admits_after_a_close() {
    let harness = Harness::start(&["--max-connections", "5"]);
    let addr = harness.tcp();
    let mut peers = Vec::new();
    for _ in 0..4 {
        peers.push(Peer::handshaken(addr).await.unwrap());
    }
    assert_refused(Peer::tcp(addr).await, "the 6th TCP connection").await;
    assert_refused(Peer::ws(harness.ws()).await, "a 6th over WebSocket").await;
    for (id, peer) in (1..).zip(&mut peers) {
        assert_echo(peer, id, &json!("one of the five")).await;
    }
    drop(peers.pop());
    let mut again = admitted_within(Duration::from_secs(3), || Peer::tcp(addr)).await;
    assert_echo(&mut again, 1, &json!("admitted after a close")).await;
    harness.finish();
}

/// Fails at 68407ac. With `--max-connections-per-ip 3`: 127.0.0.1 (the canary and two raw
/// sockets) is full and its 4th socket refused, while 127.0.0.2 still
/// gets its own 3; a close on 127.0.0.1 frees a place there.
#[tokio::test]
async fn max_connections_per_ip_counts_each_address() {
    let harness = Harness::start(&["--max-connections-per-ip", "3"]);
    let addr = harness.tcp();
    let one = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let two = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut first = Vec::new();
    for _ in 0..2 {
        let mut peer = Peer::tcp_from(one, addr).await.unwrap();
        peer.handshake().await.unwrap();
        first.push(peer);
    }
    assert_refused(Peer::tcp_from(one, addr).await, "a 4th from 127.0.0.1").await;
    let mut second = Vec::new();
    for _ in 0..3 {
        let mut peer = Peer::tcp_from(two, addr).await.unwrap();
        assert_eq!(peer.local_addr().unwrap().ip(), two, "bound to 127.0.0.2");
        peer.handshake().await.unwrap();
        second.push(peer);
    }
    assert_refused(Peer::tcp_from(two, addr).await, "a 4th from 127.0.0.2").await;
    drop(first.pop());
    let mut again = admitted_within(Duration::from_secs(3), || Peer::tcp_from(one, addr)).await;
    assert_echo(&mut again, 1, &json!("admitted on 127.0.0.1")).await;
    harness.finish();
}

/// Fails at 68407ac. The per-address limit covers WebSocket connections
/// too.
#[tokio::test]
async fn max_connections_per_ip_covers_websocket() {
    let harness = Harness::start(&["--max-connections-per-ip", "3"]);
    let two = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(Peer::ws_from(two, harness.ws()).await.unwrap());
    }
    for peer in &mut peers {
        peer.handshake().await.unwrap();
    }
    assert_refused(Peer::ws_from(two, harness.ws()).await, "a 4th websocket").await;
    assert_refused(Peer::tcp_from(two, harness.tcp()).await, "then a TCP one").await;
    harness.finish();
}

// ---------------------------------------------------------------------------
// Malformed WebSocket upgrades.

async fn assert_upgrade_status(request: &[u8], expected: &str) {
    let harness = Harness::start(&[]);
    let status = hostile::http_status(harness.ws(), request, CLOSE_DEADLINE)
        .await
        .unwrap();
    assert!(
        status.starts_with(expected),
        "{:?} answered {status:?}",
        String::from_utf8_lossy(request)
    );
    harness.finish();
}

/// Fails at 68407ac (closed without an answer), as the three below.
#[tokio::test]
async fn garbage_instead_of_a_websocket_upgrade_gets_400() {
    assert_upgrade_status(b"\x16\x03\x01garbage\r\n\r\n", "HTTP/1.1 400").await;
}

/// Fails at 68407ac (closed without an answer).
#[tokio::test]
async fn a_post_websocket_upgrade_gets_400() {
    let request = "POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                   Content-Length: 0\r\n\r\n";
    assert_upgrade_status(request.as_bytes(), "HTTP/1.1 400").await;
}

/// Fails at 68407ac (closed without an answer).
#[tokio::test]
async fn a_websocket_upgrade_without_a_key_gets_400() {
    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    assert_upgrade_status(request.as_bytes(), "HTTP/1.1 400").await;
}

/// Fails at 68407ac (closed without an answer): a request head over the
/// 8 KiB the acceptor reads.
#[tokio::test]
async fn a_websocket_upgrade_head_over_8_kib_gets_400() {
    let mut request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Padding: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 16 * 1024));
    request.extend_from_slice(b"\r\n\r\n");
    assert_upgrade_status(&request, "HTTP/1.1 400").await;
}

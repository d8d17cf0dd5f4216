//! One connection: connect and handshake, wait for the common start, then
//! drive load until the run ends.
//!
//! The hot path is one task owning the [`PacketWriter`] and the
//! [`PacketReader`]: no channels, locks or per-request timers. Requests are
//! written from a per-connection [`RequestTemplate`] into one reused buffer
//! and flushed once per batch; in-flight requests sit in a queue ordered by
//! send time, so a response is usually matched at its front and timeouts
//! are found by looking at the front on a coarse tick.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::FutureExt as _;
use pitaya_client::transport::{self, ConnectOptions, PacketReader, PacketWriter};
use pitaya_client::{Endpoint, Result as ClientResult};
use pitaya_protocol::SerializerKind;
use pitaya_protocol::codec::{HandshakeRequest, MessageCodec, Packet, PacketType, RouteDictionary};
use pitaya_protocol::error::codes;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::MissedTickBehavior;

use crate::bench::args::{Kind, OPEN_LOOP_MAX_IN_FLIGHT};
use crate::bench::stats::{ConnStats, LiveCounters};
use crate::bench::wire::{self, Incoming, Payload, RequestTemplate};

/// Notifies written per flush in closed-loop notify mode.
const NOTIFY_BATCH: usize = 64;

/// Open loop: requests are written up to this long before their slot.
/// Tokio timers fire 1-2 ms late (the deadline and the `epoll_wait`
/// timeout are both rounded up to whole milliseconds), so waking this early
/// lets requests go out on time instead of measuring the timer's lateness.
const SEND_AHEAD: Duration = Duration::from_millis(2);

/// How long closing a connection at the end may take.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// Everything the connections of a run share (read-only but for `stop` and
/// `dropped`).
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where to connect.
    pub(crate) endpoint: Endpoint,
    /// Transport options (TLS, connect timeout).
    pub(crate) options: ConnectOptions,
    /// The handshake to send.
    pub(crate) handshake: HandshakeRequest,
    /// Bound on connect plus handshake.
    pub(crate) connect_timeout: Duration,
    /// Connects (and handshakes) running at the same time.
    pub(crate) connect_limit: Semaphore,
    /// Request route.
    pub(crate) route: String,
    /// Request body, before serialization.
    pub(crate) payload: Payload,
    /// Requests or notifies.
    pub(crate) kind: Kind,
    /// Closed loop: requests in flight per connection.
    pub(crate) depth: usize,
    /// Per-request timeout.
    pub(crate) timeout: Duration,
    /// Set to end the run early (Ctrl-C).
    pub(crate) stop: AtomicBool,
    /// Connections the server closed (or that failed) during the run.
    pub(crate) dropped: AtomicU64,
}

/// When one connection starts and how much it sends.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnPlan {
    /// When it starts sending (ramp-up).
    pub(crate) begin: Instant,
    /// Open loop: intended time of its first request.
    pub(crate) first_send: Instant,
    /// Measured requests it sends, when the run is by count.
    pub(crate) quota: Option<u64>,
}

/// The common schedule, sent to every connection once all are connected.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// Requests sent from here on are measured.
    pub(crate) measure_start: Instant,
    /// Measuring stops here (runs by duration).
    pub(crate) measure_end: Option<Instant>,
    /// Open loop: time between two requests of one connection.
    pub(crate) interval: Option<Duration>,
    /// Per connection, by index; `None` for connections that failed.
    pub(crate) conns: Arc<[Option<ConnPlan>]>,
}

/// What a connection says once connected (or not).
#[derive(Debug)]
pub(crate) struct Ready {
    /// Connection index.
    pub(crate) index: usize,
    /// The server's serializer, or why connecting failed.
    pub(crate) result: Result<String, String>,
}

/// How a connection ended.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// What it measured.
    pub(crate) stats: ConnStats,
    /// Why the server side ended it early, if it did.
    pub(crate) dropped: Option<String>,
    /// When it stopped.
    pub(crate) finished_at: Option<Instant>,
}

/// Runs connection `index`: connect, report on `ready`, wait for the plan,
/// drive load, return what it measured.
pub(crate) async fn run(
    index: usize,
    shared: Arc<Shared>,
    live: Arc<LiveCounters>,
    ready: mpsc::UnboundedSender<Ready>,
    mut plan: watch::Receiver<Option<Plan>>,
) -> Outcome {
    let connected = {
        let _permit = shared.connect_limit.acquire().await;
        tokio::time::timeout(shared.connect_timeout, connect(&shared))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "connect and handshake timed out after {:?}",
                    shared.connect_timeout
                ))
            })
    };
    let (writer, reader, server) = match connected {
        Ok(conn) => conn,
        Err(err) => {
            let _ = ready.send(Ready {
                index,
                result: Err(err),
            });
            return Outcome::default();
        }
    };
    let _ = ready.send(Ready {
        index,
        result: Ok(server.serializer.clone()),
    });
    drop(ready);

    // The runner sends the plan once every connection is ready, or drops
    // the sender to abort.
    let Ok(plan) = plan
        .wait_for(Option::is_some)
        .await
        .map(|plan| plan.clone())
    else {
        return Outcome::default();
    };
    let Some(plan) = plan else {
        return Outcome::default();
    };
    let Some(conn_plan) = plan.conns.get(index).copied().flatten() else {
        return Outcome::default();
    };

    let mut conn = match Conn::new(writer, reader, &shared, &server, &plan, conn_plan, &live) {
        Ok(conn) => conn,
        Err(err) => {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return Outcome {
                dropped: Some(err),
                ..Outcome::default()
            };
        }
    };
    tokio::time::sleep_until(conn_plan.begin.into()).await;
    let result = match shared.kind {
        Kind::Request => conn.run_requests().await,
        Kind::Notify => conn.run_notifies().await,
        Kind::Idle => conn.run_idle().await,
    };
    let finished_at = Instant::now();
    let dropped = match result {
        Ok(()) => {
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, conn.writer.close()).await;
            None
        }
        Err(reason) => {
            conn.fail_in_flight();
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            Some(reason)
        }
    };
    conn.publish();
    Outcome {
        stats: conn.stats,
        dropped,
        finished_at: Some(finished_at),
    }
}

/// What the handshake told us.
#[derive(Debug)]
struct ServerInfo {
    serializer: String,
    heartbeat: Duration,
    dictionary: RouteDictionary,
}

async fn connect(shared: &Shared) -> Result<(PacketWriter, PacketReader, ServerInfo), String> {
    let attempt = async {
        let (mut writer, mut reader) =
            transport::connect(&shared.endpoint, &shared.options).await?;
        let response = transport::handshake(&mut writer, &mut reader, &shared.handshake).await?;
        Ok::<_, pitaya_client::Error>((writer, reader, response))
    };
    let (writer, reader, response) = attempt.await.map_err(|err| err.to_string())?;
    let dictionary =
        RouteDictionary::new(response.sys.dict.iter().map(|(route, code)| (route, *code)))
            .map_err(|err| format!("invalid route dictionary in the handshake: {err}"))?;
    Ok((
        writer,
        reader,
        ServerInfo {
            serializer: response.sys.serializer,
            heartbeat: response.sys.heartbeat,
            dictionary,
        },
    ))
}

/// Why a connection ended early.
type Dropped = String;

/// A connected, handshaken connection and its counters.
struct Conn<'a> {
    writer: PacketWriter,
    reader: PacketReader,
    websocket: bool,
    shared: &'a Shared,
    live: &'a LiveCounters,
    /// Requests: the template; notifies: unused.
    template: RequestTemplate,
    /// Notifies: the whole packet.
    notify: Bytes,
    /// Requests encoded but not yet handed to the writer.
    scratch: BytesMut,
    /// Decodes error responses.
    codec: MessageCodec,
    serializer: Option<SerializerKind>,
    heartbeat: Duration,
    last_write: Instant,
    next_id: u64,
    /// `(id, start)` of requests awaiting a response, in start order.
    in_flight: VecDeque<(u64, Instant)>,
    measure_start: Instant,
    measure_end: Option<Instant>,
    interval: Option<Duration>,
    first_send: Instant,
    /// Measured requests still to send (runs by count).
    remaining: Option<u64>,
    stats: ConnStats,
    /// Successes (or notifies) including warm-up, for the progress line.
    done_all: u64,
    /// Failures including warm-up, for the progress line.
    errors_all: u64,
}

impl<'a> Conn<'a> {
    fn new(
        writer: PacketWriter,
        reader: PacketReader,
        shared: &'a Shared,
        server: &ServerInfo,
        plan: &Plan,
        conn_plan: ConnPlan,
        live: &'a LiveCounters,
    ) -> Result<Self, String> {
        let body = shared.payload.encode_for(&server.serializer)?;
        let template =
            RequestTemplate::new(&shared.route, body.clone(), server.dictionary.clone())?;
        let notify = wire::notify_packet(&shared.route, body, server.dictionary.clone())?;
        let depth = match plan.interval {
            Some(_) => OPEN_LOOP_MAX_IN_FLIGHT,
            None => shared.depth,
        };
        Ok(Self {
            writer,
            reader,
            websocket: shared.endpoint.is_websocket(),
            shared,
            live,
            template,
            notify,
            scratch: BytesMut::with_capacity(4096),
            codec: MessageCodec::default(),
            serializer: server.serializer.parse().ok(),
            heartbeat: server.heartbeat,
            last_write: Instant::now(),
            next_id: 1,
            in_flight: VecDeque::with_capacity(depth.min(1024)),
            measure_start: plan.measure_start,
            measure_end: plan.measure_end,
            interval: plan.interval,
            first_send: conn_plan.first_send,
            remaining: conn_plan.quota,
            stats: ConnStats::default(),
            done_all: 0,
            errors_all: 0,
        })
    }

    /// Whether a request started at `start` is measured.
    #[inline]
    fn measured(&self, start: Instant) -> bool {
        start >= self.measure_start
    }

    /// Whether a request may be sent with start time `start`.
    #[inline]
    fn may_send(&self, start: Instant) -> bool {
        !self.measured(start) || self.remaining != Some(0)
    }

    /// Whether this connection sent its whole quota.
    fn quota_done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Whether the run is over for this connection (Ctrl-C or time).
    #[inline]
    fn over(&self, now: Instant) -> bool {
        self.shared.stop.load(Ordering::Relaxed) || self.measure_end.is_some_and(|end| now >= end)
    }

    #[inline]
    fn publish(&self) {
        self.live.publish(self.done_all, self.errors_all);
    }

    /// Encodes a request started at `start`; websocket frames are handed
    /// to the writer one by one, stream bytes once per batch.
    async fn push_request(&mut self, start: Instant) -> Result<(), Dropped> {
        let id = self.next_id;
        self.next_id += 1;
        self.template.encode(id, &mut self.scratch);
        self.in_flight.push_back((id, start));
        if self.measured(start) {
            self.stats.sent += 1;
            if let Some(remaining) = &mut self.remaining {
                *remaining -= 1;
            }
        }
        if self.websocket {
            self.hand_over().await?;
        }
        Ok(())
    }

    /// Hands the encoded bytes to the writer (no write yet).
    async fn hand_over(&mut self) -> Result<(), Dropped> {
        if self.scratch.is_empty() {
            return Ok(());
        }
        // The frozen bytes are dropped once copied, so the next encode
        // reuses the same allocation.
        let frame = self.scratch.split().freeze();
        self.writer
            .feed_encoded(frame)
            .await
            .map_err(|err| format!("write failed: {err}"))
    }

    /// Writes everything queued, giving up after the request timeout.
    async fn flush(&mut self, now: Instant) -> Result<(), Dropped> {
        self.hand_over().await?;
        let limit = self.shared.timeout;
        let mut flush = std::pin::pin!(self.writer.flush());
        // Usually done at once: no timer needed.
        let result = match (&mut flush).now_or_never() {
            Some(result) => result,
            None => tokio::time::timeout(limit, flush)
                .await
                .map_err(|_| format!("write stalled for {limit:?}"))?,
        };
        self.last_write = now;
        result.map_err(|err| format!("write failed: {err}"))
    }

    /// Closed or open loop requests until the run ends.
    async fn run_requests(&mut self) -> Result<(), Dropped> {
        let mut now = Instant::now();
        let mut ticker = ticker(self.shared.timeout);
        let mut end = std::pin::pin!(sleep_until_opt(self.measure_end));
        let mut next_send = self.first_send.max(now);
        let mut send_timer = std::pin::pin!(tokio::time::sleep_until(next_send.into()));
        let mut armed = false;
        let cap = if self.interval.is_some() {
            OPEN_LOOP_MAX_IN_FLIGHT
        } else {
            self.shared.depth
        };

        loop {
            if self.over(now) {
                return Ok(());
            }
            let mut fed = false;
            match self.interval {
                None => {
                    while self.in_flight.len() < cap && self.may_send(now) {
                        self.push_request(now).await?;
                        fed = true;
                    }
                }
                Some(interval) => {
                    let horizon = now + SEND_AHEAD;
                    while next_send <= horizon
                        && self.in_flight.len() < cap
                        && self.may_send(next_send)
                    {
                        self.push_request(open_loop_start(next_send, now)).await?;
                        next_send += interval;
                        fed = true;
                    }
                    armed = self.in_flight.len() < cap && self.may_send(next_send);
                    let wake = next_send.checked_sub(SEND_AHEAD).unwrap_or(next_send);
                    if armed && send_timer.deadline() != wake.into() {
                        send_timer.as_mut().reset(wake.into());
                    }
                }
            }
            if fed {
                self.flush(now).await?;
            }
            if self.quota_done() && self.in_flight.is_empty() {
                return Ok(());
            }

            tokio::select! {
                biased;
                packet = self.reader.next() => {
                    now = Instant::now();
                    self.on_read(packet, now)?;
                    // Everything already received, before sending again.
                    while let Some(packet) = self.reader.next().now_or_never() {
                        self.on_read(packet, now)?;
                    }
                    self.publish();
                }
                () = &mut send_timer, if armed => now = Instant::now(),
                () = &mut end => return Ok(()),
                _ = ticker.tick() => {
                    now = Instant::now();
                    self.expire(now);
                    self.heartbeat(now).await?;
                    self.publish();
                }
            }
        }
    }

    /// Notifies, closed loop (batches as fast as the socket takes them) or
    /// open loop, until the run ends.
    async fn run_notifies(&mut self) -> Result<(), Dropped> {
        let mut now = Instant::now();
        let mut ticker = ticker(self.shared.timeout);
        let mut end = std::pin::pin!(sleep_until_opt(self.measure_end));
        let mut next_send = self.first_send.max(now);
        let mut send_timer = std::pin::pin!(tokio::time::sleep_until(next_send.into()));

        loop {
            if self.over(now) || self.quota_done() {
                return Ok(());
            }
            let mut count = 0;
            match self.interval {
                None => {
                    while count < NOTIFY_BATCH && self.may_send(now) {
                        self.push_notify(now).await?;
                        count += 1;
                    }
                }
                Some(interval) => {
                    while next_send <= now && self.may_send(next_send) {
                        self.push_notify(next_send).await?;
                        next_send += interval;
                        count += 1;
                    }
                    send_timer.as_mut().reset(next_send.into());
                }
            }
            if count > 0 {
                self.flush(now).await?;
                self.publish();
            }
            if self.interval.is_none() {
                while let Some(packet) = self.reader.next().now_or_never() {
                    self.on_read(packet, now)?;
                }
                // Let the other connections of this thread run.
                tokio::task::yield_now().await;
                now = Instant::now();
                continue;
            }
            tokio::select! {
                biased;
                packet = self.reader.next() => {
                    now = Instant::now();
                    self.on_read(packet, now)?;
                }
                () = &mut send_timer => now = Instant::now(),
                () = &mut end => return Ok(()),
                _ = ticker.tick() => now = Instant::now(),
            }
        }
    }

    /// Keeps the connection open and idle until the end of the run,
    /// answering nothing and sending only heartbeats.
    async fn run_idle(&mut self) -> Result<(), Dropped> {
        let mut ticker = ticker(self.shared.timeout);
        let mut end = std::pin::pin!(sleep_until_opt(self.measure_end));
        loop {
            tokio::select! {
                packet = self.reader.next() => self.on_read(packet, Instant::now())?,
                () = &mut end => return Ok(()),
                _ = ticker.tick() => {
                    let now = Instant::now();
                    if self.over(now) {
                        return Ok(());
                    }
                    self.heartbeat(now).await?;
                }
            }
        }
    }

    /// Queues one notify started at `start`.
    async fn push_notify(&mut self, start: Instant) -> Result<(), Dropped> {
        if self.measured(start) {
            self.stats.sent += 1;
            if let Some(remaining) = &mut self.remaining {
                *remaining -= 1;
            }
        }
        self.done_all += 1;
        self.writer
            .feed_encoded(self.notify.clone())
            .await
            .map_err(|err| format!("write failed: {err}"))
    }

    /// Handles the result of one read.
    #[inline]
    fn on_read(
        &mut self,
        packet: Option<ClientResult<Packet>>,
        now: Instant,
    ) -> Result<(), Dropped> {
        match packet {
            Some(Ok(packet)) => self.on_packet(packet, now),
            Some(Err(err)) => Err(format!("read failed: {err}")),
            None => Err("closed by the server".into()),
        }
    }

    fn on_packet(&mut self, packet: Packet, now: Instant) -> Result<(), Dropped> {
        match packet.kind {
            PacketType::Data => {}
            PacketType::Heartbeat => return Ok(()),
            PacketType::Kick => return Err("kicked by the server".into()),
            other => return Err(format!("unexpected {other:?} packet")),
        }
        let (id, error) = match wire::peek_message(&packet.body)? {
            Incoming::Response { id, error } => (id, error),
            Incoming::Push => {
                self.stats.pushes += 1;
                return Ok(());
            }
        };
        let start = match self.in_flight.front() {
            Some(&(front, start)) if front == id => {
                self.in_flight.pop_front();
                start
            }
            _ => match self
                .in_flight
                .iter()
                .position(|&(pending, _)| pending == id)
            {
                Some(index) => match self.in_flight.remove(index) {
                    Some((_, start)) => start,
                    None => return Ok(()),
                },
                None => {
                    self.stats.unmatched += 1;
                    return Ok(());
                }
            },
        };
        let measured = self.measured(start) && self.measure_end.is_none_or(|end| now <= end);
        if error {
            self.errors_all += 1;
            if measured {
                let code = wire::error_code(&self.codec, self.serializer, packet.body);
                self.stats.record_errors(&code, 1);
            }
        } else {
            self.done_all += 1;
            if measured {
                self.stats.record_ok(now.saturating_duration_since(start));
            }
        }
        Ok(())
    }

    /// Counts requests older than the timeout as `PIT-504`.
    fn expire(&mut self, now: Instant) {
        let timeout = self.shared.timeout;
        let mut expired = 0;
        while let Some(&(_, start)) = self.in_flight.front() {
            if now.saturating_duration_since(start) < timeout {
                break;
            }
            self.in_flight.pop_front();
            self.errors_all += 1;
            if self.measured(start) {
                expired += 1;
            }
        }
        self.stats.record_errors(codes::CLIENT_TIMEOUT, expired);
    }

    /// Sends a heartbeat if nothing was written for a heartbeat interval.
    async fn heartbeat(&mut self, now: Instant) -> Result<(), Dropped> {
        if self.heartbeat.is_zero()
            || now.saturating_duration_since(self.last_write) < self.heartbeat
        {
            return Ok(());
        }
        self.writer
            .feed(&Packet::heartbeat())
            .await
            .map_err(|err| format!("write failed: {err}"))?;
        self.flush(now).await
    }

    /// Counts the measured requests lost with the connection as `PIT-499`.
    fn fail_in_flight(&mut self) {
        let lost = self
            .in_flight
            .drain(..)
            .filter(|&(_, start)| start >= self.measure_start)
            .count();
        self.errors_all += lost as u64;
        self.stats
            .record_errors(codes::CLIENT_CLOSED_REQUEST, lost as u64);
    }
}

/// Start time of an open-loop request intended at `intended` and written
/// at `now`: when it was written if that was early (see [`SEND_AHEAD`]),
/// else the intended time, so the time it waited counts
/// (coordinated-omission correction).
fn open_loop_start(intended: Instant, now: Instant) -> Instant {
    now.min(intended)
}

/// The housekeeping tick: timeouts, heartbeats, Ctrl-C on idle connections.
fn ticker(timeout: Duration) -> tokio::time::Interval {
    let period = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_latency_counts_from_the_slot_when_late() {
        let intended = Instant::now() + Duration::from_secs(1);
        let us = Duration::from_micros;
        // Written ahead of its slot: from the actual write.
        assert_eq!(
            open_loop_start(intended, intended - us(700)),
            intended - us(700)
        );
        assert_eq!(open_loop_start(intended, intended), intended);
        // Written late (stall, in-flight cap, busy client): from the slot,
        // so the wait counts.
        assert_eq!(open_loop_start(intended, intended + us(50_000)), intended);
    }
}

//! The agent: one task per client connection. It runs the handshake,
//! reads packets, dispatches messages, writes responses and queued pushes,
//! sends heartbeats and closes silent, slow or misbehaving clients.
//!
//! Requests of one session run one at a time in arrival order (or
//! concurrently, if the app says so); sessions run in parallel. Nothing on
//! the request path is shared with other sessions except read-only state.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

use crate::PitayaError;
use crate::SerializerKind;
use crate::acceptor::{ConnError, PlayerConn};
use crate::codec::{CodecError, HandshakeRequest, Message, MessageType, Packet, PacketType};
use crate::config::DispatchMode;
use crate::dispatcher::{self, ClientMessage};
use crate::error::codes;
use crate::handler::{HandlerFuture, HandlerResult};
use crate::server::ServerCore;
use crate::session::Session;

/// Write buffers above this are released when the connection goes idle.
const IDLE_BUFFER_KEEP: usize = 1024;

/// While a request runs (sequential dispatch), the agent keeps reading so
/// heartbeats are seen; other packets wait, in order, up to this many ...
const MAX_WAITING_PACKETS: usize = 64;
/// ... and this many body bytes (one packet is always let in), then reading
/// pauses until the request is done.
const MAX_WAITING_BYTES: usize = 64 * 1024;

/// Requests of one session running at once in concurrent dispatch; reading
/// pauses beyond it.
const MAX_CONCURRENT_REQUESTS: usize = 64;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
enum Close {
    #[error("the client closed the connection")]
    PeerClosed,
    #[error("read failed: {0}")]
    Read(ConnError),
    #[error("write failed: {0}")]
    Write(std::io::Error),
    #[error("write timed out: the client does not read")]
    WriteTimeout,
    #[error("the client was silent for more than two heartbeat intervals")]
    HeartbeatTimeout,
    #[error("the client did not complete the handshake in time")]
    HandshakeTimeout,
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("undecodable message: {0}")]
    Decode(crate::codec::CodecError),
    #[error("handshake refused")]
    HandshakeRefused,
    #[error("kicked or closed by the server")]
    Kicked,
    #[error("server shutting down")]
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Start,
    Handshaken,
    Working,
}

struct InFlight {
    id: u64,
    kind: MessageType,
    future: HandlerFuture,
}

/// Serves one connection until it closes.
pub(crate) async fn serve<C: PlayerConn>(conn: C, core: Arc<ServerCore>) {
    let session = core.sessions.create(conn.remote_addr());
    // Whatever happens to this task (even a panic), the session is closed
    // and leaves the registry.
    let _closer = CloseOnDrop(session.clone());
    let span = tracing::info_span!("session", id = session.id(), peer = ?conn.remote_addr());
    let mut conn = conn;
    conn.set_max_packet_size(core.config.limits.max_packet_size_before_handshake);
    let handshake_timeout = core.config.limits.handshake_timeout;
    let mut agent = Agent {
        conn,
        session,
        core,
        offload: crate::heavy::can_offload(),
        handshake_deadline: (!handshake_timeout.is_zero())
            .then(|| Box::pin(tokio::time::sleep(handshake_timeout))),
        state: State::Start,
        last_seen: Instant::now(),
        out: BytesMut::new(),
        queued: VecDeque::new(),
        closing: false,
        in_flight: None,
        waiting: VecDeque::new(),
        waiting_bytes: 0,
        tasks: None,
        draining: false,
    };
    async move {
        tracing::debug!("connected");
        let reason = agent.run().await;
        agent.finish(reason).await;
    }
    .instrument(span)
    .await;
}

/// Marks a session closed when dropped (idempotent).
struct CloseOnDrop(Session);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.mark_closed();
    }
}

struct Agent<C> {
    conn: C,
    session: Session,
    core: Arc<ServerCore>,
    /// Whether large bodies may be decoded under `block_in_place`.
    offload: bool,
    /// Until the handshake is acknowledged: when the connection is closed
    /// for not completing it. Heartbeats do not move it.
    handshake_deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    state: State,
    last_seen: Instant,
    out: BytesMut,
    queued: VecDeque<Bytes>,
    /// The session asked to close (kick or close) once its queue is written.
    closing: bool,
    in_flight: Option<InFlight>,
    /// Packets read while a request was in flight, handled once it is done.
    waiting: VecDeque<Packet>,
    waiting_bytes: usize,
    /// Handlers running in their own tasks (concurrent dispatch only).
    tasks: Option<JoinSet<(u64, MessageType, HandlerResult)>>,
    draining: bool,
}

impl<C: PlayerConn> Agent<C> {
    /// Whether a new packet can be read now.
    fn can_read(&self) -> bool {
        !self.draining
            && self
                .tasks
                .as_ref()
                .is_none_or(|tasks| tasks.len() < MAX_CONCURRENT_REQUESTS)
            && (self.in_flight.is_none()
                || (self.waiting.len() < MAX_WAITING_PACKETS
                    && (self.waiting.is_empty() || self.waiting_bytes < MAX_WAITING_BYTES)))
    }

    /// Whether requests of this session are still running.
    fn busy(&self) -> bool {
        self.in_flight.is_some() || self.tasks.as_ref().is_some_and(|tasks| !tasks.is_empty())
    }

    /// Handles the packets that waited for a request, in order, until one
    /// of them starts a request that does not finish at once.
    async fn run_waiting(&mut self) -> Result<(), Close> {
        while self.in_flight.is_none() {
            let Some(packet) = self.waiting.pop_front() else {
                break;
            };
            self.waiting_bytes -= packet.body.len();
            self.on_packet(packet).await?;
        }
        Ok(())
    }

    async fn run(&mut self) -> Close {
        let heartbeat = self.core.config.heartbeat;
        let mut ticker = (!heartbeat.is_zero()).then(|| {
            let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            ticker
        });
        loop {
            // Shutdown is an atomic flag read here; the app wakes every
            // session through its own notifier when it sets it, so no lock
            // shared by all sessions is touched on the request path.
            if !self.draining && self.core.shutdown.is_cancelled() {
                self.draining = true;
            }
            if self.draining && !self.busy() {
                return Close::Shutdown;
            }
            let can_read = self.can_read();
            tokio::select! {
                biased;
                result = poll_in_flight(&mut self.in_flight), if self.in_flight.is_some() => {
                    if let Some(done) = self.in_flight.take() {
                        self.respond(done.id, done.kind, result);
                    }
                    if !self.draining && let Err(close) = self.run_waiting().await {
                        return close;
                    }
                }
                Some(joined) = join_next(&mut self.tasks), if self.tasks.as_ref().is_some_and(|t| !t.is_empty()) => {
                    match joined {
                        Ok((id, kind, result)) => self.respond(id, kind, result),
                        Err(err) => tracing::error!(error = %err, "request task failed"),
                    }
                }
                read = self.conn.read_packet(), if can_read => {
                    match read {
                        Ok(Some(packet)) => {
                            self.last_seen = Instant::now();
                            if self.in_flight.is_some() {
                                // Heartbeats only refresh `last_seen`; the
                                // rest waits for the request, in order.
                                if packet.kind != PacketType::Heartbeat {
                                    self.waiting_bytes += packet.body.len();
                                    self.waiting.push_back(packet);
                                }
                            } else if let Err(close) = self.on_packet(packet).await {
                                return close;
                            }
                        }
                        Ok(None) => return Close::PeerClosed,
                        Err(err) => return Close::Read(err),
                    }
                }
                () = self.session.outgoing_ready() => {}
                () = until(&mut self.handshake_deadline), if self.handshake_deadline.is_some() => {
                    return Close::HandshakeTimeout;
                }
                _ = tick(&mut ticker) => {
                    if self.last_seen.elapsed() > heartbeat * 2 {
                        return Close::HeartbeatTimeout;
                    }
                    append_packet(&mut self.out, &Packet::heartbeat());
                }
            }
            self.drain_outbox();
            if self.closing {
                return Close::Kicked;
            }
            if let Err(close) = self.flush_if_idle().await {
                return close;
            }
        }
    }

    /// Writes what is pending unless more input is already buffered (then
    /// the responses to it are batched into one write).
    async fn flush_if_idle(&mut self) -> Result<(), Close> {
        let more_input = self.in_flight.is_none()
            && (!self.waiting.is_empty() || self.conn.has_buffered_packet());
        if more_input {
            return Ok(());
        }
        self.flush().await?;
        if self.in_flight.is_none() {
            self.conn.shrink();
            if self.out.capacity() > IDLE_BUFFER_KEEP {
                self.out = BytesMut::new();
            }
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Close> {
        while let Some(frame) = self.queued.pop_front() {
            self.out.extend_from_slice(&frame);
        }
        if self.out.is_empty() {
            return Ok(());
        }
        let timeout = self.core.config.write_timeout;
        match tokio::time::timeout(timeout, self.conn.write_frames(&self.out)).await {
            Ok(Ok(())) => {
                self.out.clear();
                Ok(())
            }
            Ok(Err(err)) => Err(Close::Write(err)),
            Err(_) => Err(Close::WriteTimeout),
        }
    }

    async fn on_packet(&mut self, packet: Packet) -> Result<(), Close> {
        match packet.kind {
            PacketType::Handshake => {
                if self.state != State::Start {
                    return Err(Close::Protocol("a second handshake"));
                }
                self.on_handshake(&packet.body)
            }
            PacketType::HandshakeAck => {
                // Go Pitaya accepts an ack without a handshake, which skips
                // the handshake validators: refuse it.
                if self.state != State::Handshaken {
                    return Err(Close::Protocol("handshake ack without a handshake"));
                }
                self.state = State::Working;
                self.handshake_deadline = None;
                self.conn
                    .set_max_packet_size(self.core.config.limits.max_packet_size);
                tracing::debug!("handshake acknowledged");
                Ok(())
            }
            PacketType::Heartbeat => Ok(()),
            PacketType::Data => {
                if self.state != State::Working {
                    return Err(Close::Protocol("data packet before the handshake ack"));
                }
                let codec = &self.core.codec;
                let (mut message, compressed) =
                    codec.decode_deferred(packet.body).map_err(Close::Decode)?;
                if compressed {
                    let inflated = crate::heavy::run(
                        self.offload,
                        message.body.len() * crate::heavy::INFLATE_WEIGHT,
                        || codec.inflate_body(&message.body),
                    );
                    match inflated {
                        Ok(body) => message.body = body,
                        Err(
                            err @ (CodecError::InflatedTooLarge { .. }
                            | CodecError::InflateRatioExceeded { .. }),
                        ) => {
                            tracing::info!(route = %message.route, error = %err, "compressed body refused");
                            let refusal = PitayaError::new(codes::BAD_REQUEST, err.to_string());
                            self.respond(message.id, message.kind, Err(refusal));
                            return Ok(());
                        }
                        Err(err) => return Err(Close::Decode(err)),
                    }
                }
                self.on_message(message).await
            }
            PacketType::Kick => Err(Close::Protocol("kick packet from a client")),
        }
    }

    fn on_handshake(&mut self, body: &[u8]) -> Result<(), Close> {
        let handshake = match HandshakeRequest::decode(body) {
            Ok(handshake) => handshake,
            Err(err) => {
                tracing::info!(error = %err, "invalid handshake");
                self.out.extend_from_slice(&self.core.handshake_refused);
                return Err(Close::HandshakeRefused);
            }
        };
        let max_user = self.core.config.limits.max_handshake_user_data;
        if handshake.user_len() > max_user {
            tracing::info!(
                len = handshake.user_len(),
                max = max_user,
                "handshake user data too large"
            );
            self.out.extend_from_slice(&self.core.handshake_refused);
            return Err(Close::HandshakeRefused);
        }
        for validator in &self.core.config.handshake_validators {
            if let Err(err) = validator(&handshake) {
                tracing::info!(error = %err, "handshake rejected by a validator");
                self.out.extend_from_slice(&self.core.handshake_refused);
                return Err(Close::HandshakeRefused);
            }
        }
        self.session.set_handshake(handshake);
        self.out.extend_from_slice(&self.core.handshake_ok);
        self.state = State::Handshaken;
        Ok(())
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Close> {
        let kind = message.kind;
        match kind {
            MessageType::Request | MessageType::Notify => {}
            MessageType::Response | MessageType::Push => {
                return Err(Close::Protocol("response or push message from a client"));
            }
        }
        let (id, kind) = (message.id, message.kind);
        let message = ClientMessage {
            route: message.route,
            id,
            kind,
            body: message.body,
        };
        let future = match dispatcher::start(&self.core, &self.session, message, self.offload) {
            Ok(future) => future,
            Err(err) => {
                self.respond(id, kind, Err(err));
                return Ok(());
            }
        };
        match self.core.config.dispatch {
            DispatchMode::Sequential => {
                let mut in_flight = InFlight { id, kind, future };
                match futures::poll!(in_flight.future.as_mut()) {
                    Poll::Ready(result) => self.respond(id, kind, result),
                    Poll::Pending => self.in_flight = Some(in_flight),
                }
            }
            DispatchMode::Concurrent => {
                // The agent owns its handler tasks: it answers them as they
                // finish, and waits for them before closing at shutdown.
                self.tasks
                    .get_or_insert_with(JoinSet::new)
                    .spawn(async move { (id, kind, future.await) }.in_current_span());
            }
        }
        Ok(())
    }

    /// Moves packets queued for this session (pushes, a kick) into the
    /// write buffer, after what is already there.
    fn drain_outbox(&mut self) {
        if self.session.take_outgoing(&mut self.queued) {
            self.closing = true;
        }
        while let Some(frame) = self.queued.pop_front() {
            self.out.extend_from_slice(&frame);
        }
    }

    /// Encodes the reply to a request. Pushes the handler made go out
    /// before its reply, in the order they were made (as in Pitaya, where
    /// both share one write queue); a kick goes out after it.
    fn respond(&mut self, id: u64, kind: MessageType, result: HandlerResult) {
        let closing = self.session.take_outgoing(&mut self.queued);
        if !closing {
            self.drain_outbox();
        }
        let serializer = self.session.serializer();
        encode_reply(&self.core, serializer, id, kind, result, &mut self.out);
        if closing {
            self.closing = true;
            self.drain_outbox();
        }
    }

    async fn finish(&mut self, reason: Close) {
        match &reason {
            Close::PeerClosed | Close::Shutdown | Close::Kicked | Close::HandshakeTimeout => {
                tracing::debug!(%reason, "closing");
            }
            Close::HeartbeatTimeout | Close::WriteTimeout | Close::HandshakeRefused => {
                tracing::info!(%reason, "closing");
            }
            _ => tracing::warn!(%reason, "closing"),
        }
        let can_write = !matches!(
            reason,
            Close::PeerClosed | Close::Read(_) | Close::Write(_) | Close::WriteTimeout
        );
        if can_write {
            self.drain_outbox();
            let _ = self.flush().await;
        }
        self.session.mark_closed();
        self.conn.close().await;
        // Handlers still running when the client went away finish on their
        // own (their replies have nowhere to go), as in Go.
        if let Some(tasks) = &mut self.tasks {
            tasks.detach_all();
        }
    }
}

/// Encodes the reply to a request (nothing for a notify) into `out`.
fn encode_reply(
    core: &ServerCore,
    serializer: SerializerKind,
    id: u64,
    kind: MessageType,
    result: HandlerResult,
    out: &mut BytesMut,
) {
    if kind == MessageType::Notify {
        if let Err(err) = result {
            tracing::warn!(error = %err, "notify handler failed");
        }
        return;
    }
    if id == 0 {
        // As in Go Pitaya, whose `ResponseMID` refuses ids <= 0: a request
        // with id 0 runs but is never answered.
        tracing::debug!("request with id 0: no response is sent");
        return;
    }
    let message = match result {
        Ok(Some(body)) => Message::response(id, body),
        Ok(None) => error_message(
            serializer,
            id,
            &PitayaError::new(codes::UNKNOWN, "reply must not be null"),
        ),
        Err(err) => {
            tracing::debug!(error = %err, "request failed");
            error_message(serializer, id, &err)
        }
    };
    if let Err(err) = core.codec.encode_packet(&message, out) {
        tracing::error!(error = %err, "reply cannot be encoded");
        let fallback = error_message(
            serializer,
            id,
            &PitayaError::new(codes::INTERNAL, "reply too large"),
        );
        let _ = core.codec.encode_packet(&fallback, out);
    }
}

/// An error response: `err` as the session's serializer encodes error
/// payloads (`protos.Error` in protobuf, a `{"code","msg"}` map otherwise).
fn error_message(serializer: SerializerKind, id: u64, err: &PitayaError) -> Message {
    Message::error_response(id, err.encode(serializer))
}

fn append_packet(out: &mut BytesMut, packet: &Packet) {
    // Control packets have empty bodies: encoding cannot fail.
    let _ = packet.encode(out);
}

async fn poll_in_flight(in_flight: &mut Option<InFlight>) -> HandlerResult {
    match in_flight {
        Some(in_flight) => in_flight.future.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn until(deadline: &mut Option<Pin<Box<tokio::time::Sleep>>>) {
    match deadline {
        Some(sleep) => sleep.as_mut().await,
        None => std::future::pending().await,
    }
}

async fn join_next<T: 'static>(
    tasks: &mut Option<JoinSet<T>>,
) -> Option<Result<T, tokio::task::JoinError>> {
    match tasks {
        Some(tasks) => tasks.join_next().await,
        None => std::future::pending().await,
    }
}

async fn tick(ticker: &mut Option<tokio::time::Interval>) -> Instant {
    match ticker {
        Some(ticker) => ticker.tick().await,
        None => std::future::pending().await,
    }
}

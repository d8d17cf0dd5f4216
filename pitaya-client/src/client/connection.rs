//! The tasks behind a [`Client`](super::Client): one writer, one reader,
//! and the state they share with the client handles.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use pitaya_protocol::codec::{Message, MessageCodec, MessageType, Packet, PacketType};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{debug, trace, warn};

use super::events::Event;
use crate::transport::{PacketReader, PacketWriter};
use crate::{Error, Result};

/// How many commands may wait for the writer task.
pub(crate) const COMMAND_BUFFER: usize = 1024;

/// The server is declared dead after this many heartbeat intervals of
/// silence.
pub(crate) const DEAD_AFTER_HEARTBEATS: u32 = 3;

/// How long a graceful close may take to flush and close the write side.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// What the client handles ask the writer task to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Write one encoded packet.
    Frame(Bytes),
    /// Write everything queued before, close the write side, end.
    Close,
}

/// Why the connection ended; the first reason recorded wins.
#[derive(Debug)]
pub(crate) enum End {
    /// [`Client::close`](super::Client::close) or every handle dropped.
    Client,
    /// The server sent a kick packet.
    Kicked,
    /// The server closed the connection, broke the protocol or went silent.
    Failed(Error),
}

/// Whether requests that can no longer be answered fail with
/// [`Error::Closed`] or [`Error::Kicked`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClosedBy {
    Other,
    Kick,
}

impl ClosedBy {
    fn error(self) -> Error {
        match self {
            Self::Other => Error::Closed,
            Self::Kick => Error::Kicked,
        }
    }
}

#[derive(Debug, Default)]
struct Pending {
    waiting: HashMap<u64, oneshot::Sender<Result<Message>>>,
    closed: Option<ClosedBy>,
}

/// State shared by the client handles and the two tasks.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pending: Mutex<Pending>,
    end: Mutex<Option<End>>,
    connected: AtomicBool,
    /// Cancelled when the connection starts shutting down.
    shutdown: CancellationToken,
    /// Cancelled once the reader task has failed the pending requests and
    /// handed the final events over.
    finished: CancellationToken,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            connected: AtomicBool::new(true),
            ..Self::default()
        }
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The error for an operation on a connection that is gone.
    pub(crate) fn closed_error(&self) -> Error {
        let closed = lock(&self.pending).closed;
        // Between the start of the shutdown and `finish`, ask the end slot.
        let kicked = || matches!(*lock(&self.end), Some(End::Kicked));
        match closed {
            Some(closed) => closed.error(),
            None if kicked() => Error::Kicked,
            None => Error::Closed,
        }
    }

    /// Registers request `id`; fails at once if the connection is gone.
    pub(crate) fn register(&self, id: u64) -> Result<oneshot::Receiver<Result<Message>>> {
        let mut pending = lock(&self.pending);
        if let Some(closed) = pending.closed {
            return Err(closed.error());
        }
        let (tx, rx) = oneshot::channel();
        pending.waiting.insert(id, tx);
        Ok(rx)
    }

    /// Drops request `id` (timed out or abandoned).
    pub(crate) fn forget(&self, id: u64) {
        lock(&self.pending).waiting.remove(&id);
    }

    fn complete(&self, message: Message) {
        let waiter = lock(&self.pending).waiting.remove(&message.id);
        match waiter {
            Some(waiter) => {
                // The requester may have given up in the meantime.
                let _ = waiter.send(Ok(message));
            }
            None => debug!(
                id = message.id,
                "response to an unknown or abandoned request"
            ),
        }
    }

    /// Starts shutting the connection down for `end`, unless it already is.
    pub(crate) fn shutdown(&self, end: End) {
        {
            let mut slot = lock(&self.end);
            if slot.is_none() && !self.shutdown.is_cancelled() {
                match &end {
                    End::Failed(err) => debug!(error = %err, "connection ends"),
                    other => debug!(reason = ?other, "connection ends"),
                }
                *slot = Some(end);
            }
        }
        self.connected.store(false, Ordering::Release);
        self.shutdown.cancel();
    }

    pub(crate) fn finished(&self) -> impl Future<Output = ()> + '_ {
        self.finished.cancelled()
    }

    /// Fails every pending request and returns why the connection ended.
    fn finish(&self) -> End {
        let end = lock(&self.end).take().unwrap_or(End::Failed(Error::Closed));
        let closed = if matches!(end, End::Kicked) {
            ClosedBy::Kick
        } else {
            ClosedBy::Other
        };
        let waiting = {
            let mut pending = lock(&self.pending);
            pending.closed = Some(closed);
            std::mem::take(&mut pending.waiting)
        };
        for (_, waiter) in waiting {
            let _ = waiter.send(Err(closed.error()));
        }
        self.connected.store(false, Ordering::Release);
        end
    }
}

/// Runs `future` unless the connection starts shutting down first.
async fn unless_shutdown<F: Future>(shared: &Shared, future: F) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = shared.shutdown.cancelled() => None,
        output = future => Some(output),
    }
}

async fn tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(ticker) => {
            ticker.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The writer task: sends queued frames in batches (one flush per batch)
/// and a heartbeat every `heartbeat` (when not zero).
pub(crate) async fn write_loop(
    mut writer: PacketWriter,
    mut commands: mpsc::Receiver<Command>,
    shared: std::sync::Arc<Shared>,
    heartbeat: Duration,
) {
    let mut ticker = (!heartbeat.is_zero()).then(|| {
        let mut ticker = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        ticker
    });
    let heartbeat_packet = Packet::heartbeat();
    loop {
        let first = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => return,
            command = commands.recv() => command,
            () = tick(&mut ticker) => {
                trace!("sending heartbeat");
                match unless_shutdown(&shared, writer.send(&heartbeat_packet)).await {
                    None => return,
                    Some(Ok(())) => continue,
                    Some(Err(err)) => {
                        shared.shutdown(End::Failed(err));
                        return;
                    }
                }
            }
        };
        // Every client handle is gone: close like `Client::close` does.
        let mut next = Some(first.unwrap_or(Command::Close));
        let mut closing = false;
        while let Some(command) = next {
            match command {
                Command::Frame(frame) => {
                    match unless_shutdown(&shared, writer.feed_encoded(frame)).await {
                        None => return,
                        Some(Ok(())) => {}
                        Some(Err(err)) => {
                            shared.shutdown(End::Failed(err));
                            return;
                        }
                    }
                }
                Command::Close => {
                    closing = true;
                    break;
                }
            }
            next = commands.try_recv().ok();
        }
        match unless_shutdown(&shared, writer.flush()).await {
            None => return,
            Some(Ok(())) => {}
            Some(Err(err)) => {
                shared.shutdown(End::Failed(err));
                return;
            }
        }
        if closing {
            if let Ok(Err(err)) = tokio::time::timeout(CLOSE_GRACE, writer.close()).await {
                debug!(error = %err, "closing the write side failed");
            }
            shared.shutdown(End::Client);
            return;
        }
    }
}

/// The reader task: routes responses to their requests and pushes to the
/// events channel, watches for server silence, and once the connection
/// ends fails the pending requests and hands over the final events.
pub(crate) async fn read_loop(
    mut reader: PacketReader,
    codec: MessageCodec,
    shared: std::sync::Arc<Shared>,
    pushes: mpsc::Sender<Event>,
    final_events: oneshot::Sender<Vec<Event>>,
    heartbeat: Duration,
) {
    let silence_limit = (!heartbeat.is_zero()).then(|| heartbeat * DEAD_AFTER_HEARTBEATS);
    let mut push_drops = PushDrops::default();
    loop {
        let next = tokio::select! {
            biased;
            () = shared.shutdown.cancelled() => break,
            next = next_packet(&mut reader, silence_limit) => next,
        };
        let packet = match next {
            Some(Some(Ok(packet))) => packet,
            Some(Some(Err(err))) => {
                shared.shutdown(End::Failed(err));
                break;
            }
            Some(None) => {
                debug!("the server closed the connection");
                shared.shutdown(End::Failed(Error::Closed));
                break;
            }
            None => {
                let silent_for = silence_limit.unwrap_or_default();
                warn!(
                    ?silent_for,
                    "server silent for 3 heartbeat intervals, giving it up for dead"
                );
                shared.shutdown(End::Failed(Error::HeartbeatTimeout { silent_for }));
                break;
            }
        };
        match packet.kind {
            PacketType::Data => match codec.decode(packet.body) {
                Ok(message) => match message.kind {
                    MessageType::Response => shared.complete(message),
                    MessageType::Push => push_drops.deliver(
                        &pushes,
                        Event::Push {
                            route: message.route,
                            body: message.body,
                        },
                    ),
                    MessageType::Request | MessageType::Notify => {
                        warn!(kind = ?message.kind, route = %message.route, "ignoring a client-side message sent by the server");
                    }
                },
                Err(err) => {
                    shared.shutdown(End::Failed(err.into()));
                    break;
                }
            },
            PacketType::Heartbeat => trace!("heartbeat from the server"),
            PacketType::Kick => {
                debug!("kicked by the server");
                shared.shutdown(End::Kicked);
                break;
            }
            PacketType::Handshake | PacketType::HandshakeAck => {
                warn!(kind = ?packet.kind, "ignoring a handshake packet after the handshake");
            }
        }
    }

    let end = shared.finish();
    drop(pushes);
    let events = match end {
        End::Client => vec![Event::Disconnected { reason: None }],
        End::Kicked => vec![
            Event::Kicked,
            Event::Disconnected {
                reason: Some(Error::Kicked),
            },
        ],
        End::Failed(err) => vec![Event::Disconnected { reason: Some(err) }],
    };
    // Nobody may be listening for events any more.
    let _ = final_events.send(events);
    shared.finished.cancel();
}

/// The next packet; `None` when nothing arrived within `limit`.
async fn next_packet(
    reader: &mut PacketReader,
    limit: Option<Duration>,
) -> Option<Option<Result<Packet>>> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, reader.next()).await.ok(),
        None => Some(reader.next().await),
    }
}

/// Delivers pushes without ever waiting: a full buffer drops the push.
#[derive(Debug, Default)]
struct PushDrops {
    dropped: u64,
}

impl PushDrops {
    fn deliver(&mut self, pushes: &mpsc::Sender<Event>, event: Event) {
        match pushes.try_send(event) {
            Ok(()) => {
                if self.dropped > 0 {
                    warn!(dropped = self.dropped, "events buffer has room again");
                    self.dropped = 0;
                }
            }
            Err(mpsc::error::TrySendError::Full(event)) => {
                if self.dropped == 0 {
                    warn!("events buffer full (nobody reads Events?): dropping pushes");
                }
                if let Event::Push { route, .. } = &event {
                    debug!(%route, "push dropped");
                }
                self.dropped += 1;
            }
            // The application dropped its `Events`: pushes are not wanted.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

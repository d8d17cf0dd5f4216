//! What the server sends unasked: pushes, a kick, the end of the connection.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use pitaya_protocol::protos::prost;
use pitaya_protocol::{Serializer, SerializerKind};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

use crate::{Error, Result};

/// Something the server did on its own.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// A push on `route`; `body` is serialized with the session's
    /// serializer (see [`Events::decode`] and [`Event::decode`], or
    /// [`Events::decode_message`] and [`Event::decode_message`] for
    /// protobuf).
    Push {
        /// The push route, e.g. `"onMessage"`.
        route: String,
        /// The payload, already inflated if it was compressed.
        body: Bytes,
    },
    /// The server kicked this client; [`Event::Disconnected`] follows.
    Kicked,
    /// The connection is over. Always the last event, sent exactly once.
    Disconnected {
        /// `None` after [`Client::close`](crate::Client::close) (or when every
        /// client handle was dropped); otherwise why it ended:
        /// [`Error::Kicked`], [`Error::Closed`] when the server closed the
        /// connection, [`Error::HeartbeatTimeout`] when the server went
        /// silent, or the I/O or protocol error.
        reason: Option<Error>,
    },
}

impl Event {
    /// Decodes the body of a push with `serializer`; `None` for events that
    /// are not pushes.
    ///
    /// ```
    /// use pitaya_client::Event;
    /// use pitaya_protocol::SerializerKind;
    ///
    /// # fn check(event: Event) {
    /// if let Some(Ok(text)) = event.decode::<serde_json::Value>(SerializerKind::Json) {
    ///     println!("{text}");
    /// }
    /// # }
    /// ```
    pub fn decode<T: DeserializeOwned>(&self, serializer: SerializerKind) -> Option<Result<T>> {
        match self {
            Self::Push { body, .. } => Some(serializer.deserialize(body).map_err(Error::from)),
            _ => None,
        }
    }

    /// Decodes the body of a push as the prost message `M` with
    /// `serializer` (which must be [`SerializerKind::Protobuf`]); `None`
    /// for events that are not pushes.
    pub fn decode_message<M: prost::Message + Default>(
        &self,
        serializer: SerializerKind,
    ) -> Option<Result<M>> {
        match self {
            Self::Push { body, .. } => Some(serializer.decode_message(body).map_err(Error::from)),
            _ => None,
        }
    }
}

/// The stream of [`Event`]s of one connection, returned by
/// [`ClientBuilder::connect`](crate::ClientBuilder::connect).
///
/// Pushes come in the order the server sent them, then, when the connection
/// ends, [`Event::Kicked`] (after a kick) and finally one
/// [`Event::Disconnected`]; then the stream ends.
///
/// Pushes wait in a bounded buffer (see
/// [`ClientBuilder::event_buffer`](crate::ClientBuilder::event_buffer)).
/// The reader never waits for room: **when the buffer is full, new pushes
/// are dropped** (with a `warn` log), so an application that does not read
/// its events still gets its responses. The final events never get lost.
/// Dropping `Events` discards every push.
#[derive(Debug)]
pub struct Events {
    pushes: Option<mpsc::Receiver<Event>>,
    final_events: Option<oneshot::Receiver<Vec<Event>>>,
    ready: VecDeque<Event>,
    serializer: SerializerKind,
}

impl Events {
    pub(crate) fn new(
        pushes: mpsc::Receiver<Event>,
        final_events: oneshot::Receiver<Vec<Event>>,
        serializer: SerializerKind,
    ) -> Self {
        Self {
            pushes: Some(pushes),
            final_events: Some(final_events),
            ready: VecDeque::new(),
            serializer,
        }
    }

    /// The next event; `None` after [`Event::Disconnected`].
    pub async fn next(&mut self) -> Option<Event> {
        futures::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    /// Decodes a push body with the session's serializer.
    pub fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T> {
        Ok(self.serializer.deserialize(body)?)
    }

    /// Decodes a push body as the prost message `M`, on a protobuf session
    /// (else an [`Error::Serializer`]).
    pub fn decode_message<M: prost::Message + Default>(&self, body: &[u8]) -> Result<M> {
        Ok(self.serializer.decode_message(body)?)
    }

    /// The session's serializer.
    pub fn serializer(&self) -> SerializerKind {
        self.serializer
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Poll::Ready(Some(event));
            }
            if let Some(pushes) = &mut self.pushes {
                match pushes.poll_recv(cx) {
                    Poll::Ready(Some(event)) => return Poll::Ready(Some(event)),
                    Poll::Ready(None) => self.pushes = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            let Some(final_events) = &mut self.final_events else {
                return Poll::Ready(None);
            };
            match Pin::new(final_events).poll(cx) {
                Poll::Ready(events) => {
                    self.final_events = None;
                    // The reader task always sends them, unless the runtime
                    // is shutting down under it.
                    let events = events.unwrap_or_else(|_| {
                        vec![Event::Disconnected {
                            reason: Some(Error::Closed),
                        }]
                    });
                    self.ready.extend(events);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.get_mut().poll_event(cx)
    }
}

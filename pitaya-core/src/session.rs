//! Sessions: one per client connection, with a bound user id, typed
//! key/value data, pushes and kick.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::Notify;

use crate::codec::{HandshakeRequest, Message, MessageCodec, Packet};
use crate::{PitayaError, Serializer, SerializerKind};

/// Why a session operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SessionError {
    /// `bind` on a session that already has a uid.
    #[error("session is already bound to uid {0:?}")]
    AlreadyBound(String),
    /// `bind` with an empty uid.
    #[error("uid must not be empty")]
    EmptyUid,
    /// Another session holds the uid and unique sessions are off... or the
    /// older one could not be kicked.
    #[error("uid {0:?} is already bound to another session")]
    UidTaken(String),
    /// The session is closed.
    #[error("session is closed")]
    Closed,
    /// A value could not be (de)serialized.
    #[error("session value: {0}")]
    Value(String),
    /// An encoded push did not fit the protocol.
    #[error("push: {0}")]
    Encode(String),
    /// A session pool callback (`on_session_bind`, `on_after_session_bind`)
    /// refused the bind; the error is the callback's.
    #[error("bind refused: {0}")]
    Refused(PitayaError),
    /// On a backend: the frontend holding the connection could not bind the
    /// uid (`sys.bindsession` failed); the error is the frontend's.
    #[error("the frontend could not bind the uid: {0}")]
    Frontend(PitayaError),
    /// On a backend: `on_close` for a session of a frontend that does not
    /// report closes (a Go frontend answered the watch "route not found").
    #[error(
        "frontend {0} does not report session closes (a Go Pitaya frontend?): on_close cannot run on this backend"
    )]
    CloseNotReported(String),
}

impl From<SessionError> for PitayaError {
    fn from(err: SessionError) -> Self {
        let code = match err {
            SessionError::AlreadyBound(_) | SessionError::EmptyUid | SessionError::UidTaken(_) => {
                crate::error::codes::BAD_REQUEST
            }
            SessionError::Closed => crate::error::codes::CLIENT_CLOSED_REQUEST,
            SessionError::Refused(err) | SessionError::Frontend(err) => return err,
            _ => crate::error::codes::INTERNAL,
        };
        PitayaError::new(code, err.to_string())
    }
}

/// Settings and registry shared by every session of one server.
#[derive(Debug)]
pub struct SessionHub {
    next_id: AtomicU64,
    codec: MessageCodec,
    serializer: SerializerKind,
    max_queued_writes: usize,
    unique: bool,
    by_id: Mutex<HashMap<u64, Weak<SessionInner>>>,
    by_uid: Mutex<HashMap<String, Weak<SessionInner>>>,
    bind_hook: OnceLock<HookCell>,
    callbacks: OnceLock<Arc<PoolCallbacks>>,
}

struct HookCell(BindHook);

impl fmt::Debug for HookCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BindHook")
    }
}

/// A boxed future of the session API.
pub type SessionFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Run after a frontend session binds a uid (the cluster subscribes it).
pub(crate) type BindHook = Arc<dyn Fn(Session) -> SessionFuture<()> + Send + Sync>;

/// A session pool callback run when a frontend session binds a uid (Go's
/// `OnSessionBind` and `OnAfterSessionBind`): `(session, uid)`. Before the
/// bind an error refuses it; after it, the error is what `bind` returns
/// but the uid stays bound.
pub type BindCallback =
    Arc<dyn Fn(Session, String) -> SessionFuture<Result<(), PitayaError>> + Send + Sync>;

/// A session pool callback run when a frontend session closes (Go's
/// `OnSessionClose`), after the session's own `on_close` callbacks.
pub type SessionCloseCallback = Arc<dyn Fn(&Session) + Send + Sync>;

/// The session pool callbacks of a frontend (set by the app builder).
#[derive(Clone, Default)]
pub(crate) struct PoolCallbacks {
    /// Before the uid is bound; an error refuses the bind.
    pub(crate) on_bind: Vec<BindCallback>,
    /// After the uid is bound (and subscribed in the cluster).
    pub(crate) after_bind: Vec<BindCallback>,
    /// When a session closes.
    pub(crate) on_close: Vec<SessionCloseCallback>,
}

impl fmt::Debug for PoolCallbacks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolCallbacks")
            .field("on_bind", &self.on_bind.len())
            .field("after_bind", &self.after_bind.len())
            .field("on_close", &self.on_close.len())
            .finish()
    }
}

/// What a backend session view does over the cluster: its operations go to
/// the frontend that holds the client connection.
pub(crate) trait RemoteSession: Send + Sync + 'static {
    /// The frontend server holding the connection.
    fn frontend_id(&self) -> &str;
    /// The session id on that frontend.
    fn frontend_session_id(&self) -> i64;
    /// Asks the frontend to bind `uid`; resolves with its answer.
    fn bind(&self, uid: &str) -> SessionFuture<Result<(), PitayaError>>;
    /// Runs `callback` when the frontend's session closes (the frontend is
    /// asked to tell this server); an error when the frontend is known not
    /// to report closes.
    fn watch_close(&self, session: &Session, callback: CloseCallback) -> Result<(), SessionError>;
    /// Pushes a serialized body to the client bound to `uid`.
    fn push(&self, uid: &str, route: &str, body: Bytes);
    /// Kicks the client.
    fn kick(&self, session: &Session);
    /// Sends the session data to the frontend.
    fn push_to_front(&self, session: &Session);
    /// Resolves once the operations queued so far are done.
    fn flush(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;
}

impl SessionHub {
    /// A hub for sessions using `codec` for pushes and `serializer` for
    /// payloads; a session whose write queue holds more than
    /// `max_queued_writes` packets is closed as too slow; with `unique`, a
    /// second bind of a uid kicks the older session.
    pub fn new(
        codec: MessageCodec,
        serializer: SerializerKind,
        max_queued_writes: usize,
        unique: bool,
    ) -> Arc<Self> {
        Arc::new(Self {
            // Ids start at a random epoch (in the high bits, below i64's
            // sign): a frontend restarted under the same server id does not
            // reuse the ids of its previous run, which backends may still
            // hold watches for.
            next_id: AtomicU64::new((u64::from(fastrand::u32(1..1 << 30)) << 32) | 1),
            codec,
            serializer,
            max_queued_writes: max_queued_writes.max(1),
            unique,
            by_id: Mutex::new(HashMap::new()),
            by_uid: Mutex::new(HashMap::new()),
            bind_hook: OnceLock::new(),
            callbacks: OnceLock::new(),
        })
    }

    /// Sets the session pool callbacks (once, by the app builder).
    pub(crate) fn set_callbacks(&self, callbacks: PoolCallbacks) {
        let _ = self.callbacks.set(Arc::new(callbacks));
    }

    /// Sets the hook run after each frontend bind (once).
    pub(crate) fn set_bind_hook(&self, hook: BindHook) {
        let _ = self.bind_hook.set(HookCell(hook));
    }

    /// A backend view of a session held by a frontend: not registered here,
    /// its bind, push and kick go through `remote`.
    pub(crate) fn create_backend(
        self: &Arc<Self>,
        uid: Option<String>,
        data: HashMap<String, serde_json::Value>,
        remote: Box<dyn RemoteSession>,
    ) -> Session {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let bound = OnceLock::new();
        if let Some(uid) = uid.filter(|uid| !uid.is_empty()) {
            let _ = bound.set(uid);
        }
        Session {
            inner: Arc::new(SessionInner {
                id,
                serializer: self.serializer,
                hub: Arc::downgrade(self),
                uid: bound,
                data: Mutex::new(data),
                handshake: OnceLock::new(),
                remote_addr: None,
                outbox: Mutex::new(Outbox::default()),
                wake: Notify::new(),
                closed: AtomicBool::new(false),
                on_close: Mutex::new(Vec::new()),
                remote: Some(remote),
            }),
        }
    }

    /// Creates and registers a session for a new connection.
    pub fn create(self: &Arc<Self>, remote_addr: Option<SocketAddr>) -> Session {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let inner = Arc::new(SessionInner {
            id,
            serializer: self.serializer,
            hub: Arc::downgrade(self),
            uid: OnceLock::new(),
            data: Mutex::new(HashMap::new()),
            handshake: OnceLock::new(),
            remote_addr,
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
            closed: AtomicBool::new(false),
            on_close: Mutex::new(Vec::new()),
            remote: None,
        });
        lock(&self.by_id).insert(id, Arc::downgrade(&inner));
        Session { inner }
    }

    /// The session with `id`, if it is open.
    pub fn by_id(&self, id: u64) -> Option<Session> {
        lock(&self.by_id)
            .get(&id)
            .and_then(Weak::upgrade)
            .map(|inner| Session { inner })
    }

    /// The session bound to `uid`, if any.
    pub fn by_uid(&self, uid: &str) -> Option<Session> {
        lock(&self.by_uid)
            .get(uid)
            .and_then(Weak::upgrade)
            .map(|inner| Session { inner })
    }

    /// Number of open sessions.
    pub fn count(&self) -> usize {
        lock(&self.by_id).len()
    }

    /// Every open session (a snapshot).
    pub fn sessions(&self) -> Vec<Session> {
        lock(&self.by_id)
            .values()
            .filter_map(Weak::upgrade)
            .map(|inner| Session { inner })
            .collect()
    }

    /// The codec pushes are encoded with.
    pub fn codec(&self) -> &MessageCodec {
        &self.codec
    }

    /// The payload serializer.
    pub fn serializer(&self) -> SerializerKind {
        self.serializer
    }

    fn remove(&self, session: &SessionInner) {
        lock(&self.by_id).remove(&session.id);
        if let Some(uid) = session.uid.get() {
            let mut by_uid = lock(&self.by_uid);
            // Only remove the entry if it still points at this session.
            if by_uid
                .get(uid)
                .is_some_and(|weak| weak.as_ptr() == std::ptr::from_ref(session))
            {
                by_uid.remove(uid);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short critical sections leaves the
    // data consistent (single inserts/removes), so poisoning is ignored.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Packets waiting for the connection's writer.
#[derive(Debug, Default)]
struct Outbox {
    queue: VecDeque<Bytes>,
    /// Close after writing what is queued.
    closing: bool,
}

/// A callback run once when a session closes.
pub(crate) type CloseCallback = Box<dyn FnOnce(&Session) + Send>;

struct SessionInner {
    id: u64,
    serializer: SerializerKind,
    hub: Weak<SessionHub>,
    uid: OnceLock<String>,
    data: Mutex<HashMap<String, serde_json::Value>>,
    handshake: OnceLock<Arc<HandshakeRequest>>,
    remote_addr: Option<SocketAddr>,
    outbox: Mutex<Outbox>,
    wake: Notify,
    closed: AtomicBool,
    on_close: Mutex<Vec<CloseCallback>>,
    /// Set on backend views of a frontend's session.
    remote: Option<Box<dyn RemoteSession>>,
}

/// A client's session. Cheap to clone; all clones are the same session.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.inner.id)
            .field("uid", &self.inner.uid.get())
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The session id, unique within this server process.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The bound user id, if any.
    pub fn uid(&self) -> Option<&str> {
        self.inner.uid.get().map(String::as_str)
    }

    /// The client's address.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote_addr
    }

    /// The client's handshake, once it happened.
    pub fn handshake(&self) -> Option<&HandshakeRequest> {
        self.inner.handshake.get().map(AsRef::as_ref)
    }

    /// Records the client's handshake (done by the agent).
    pub(crate) fn set_handshake(&self, handshake: HandshakeRequest) {
        let _ = self.inner.handshake.set(Arc::new(handshake));
    }

    /// The payload serializer.
    pub fn serializer(&self) -> SerializerKind {
        self.inner.serializer
    }

    /// Binds the session to `uid`. Fails if it is already bound. With
    /// unique sessions on, an older session bound to the same uid is kicked
    /// (on every frontend of this type, in a cluster).
    ///
    /// On a frontend the session pool callbacks run around it
    /// ([`AppBuilder::on_session_bind`](crate::app::AppBuilder::on_session_bind)
    /// before, which can refuse it, and
    /// [`on_after_session_bind`](crate::app::AppBuilder::on_after_session_bind)
    /// after); once it resolves, pushes to the uid reach this session from
    /// any server.
    ///
    /// On a backend (a session forwarded by a frontend) the frontend is
    /// asked to bind it (`sys.bindsession`, carrying the request's
    /// context), and the uid is bound here once the frontend said yes; its
    /// refusal is [`SessionError::Frontend`], as Go's `Bind` returns it.
    ///
    /// # Errors
    /// An empty uid, a session already bound, a uid taken with unique
    /// sessions off, a refusal by a callback or the frontend, a closed
    /// session.
    pub async fn bind(&self, uid: impl Into<String>) -> Result<(), SessionError> {
        let uid = uid.into();
        if uid.is_empty() {
            return Err(SessionError::EmptyUid);
        }
        if let Some(existing) = self.inner.uid.get() {
            return Err(SessionError::AlreadyBound(existing.clone()));
        }
        if let Some(remote) = &self.inner.remote {
            if self.is_closed() {
                return Err(SessionError::Closed);
            }
            remote.bind(&uid).await.map_err(SessionError::Frontend)?;
            return self.set_uid(uid);
        }
        self.bind_local(uid, true).await
    }

    /// Binds a frontend session: pool callbacks, the registry (kicking an
    /// older session of the uid), then the cluster's subscription when
    /// `cluster_hook` (not for a bind a backend asked for, which the
    /// inbound path subscribes itself).
    pub(crate) async fn bind_local(
        &self,
        uid: String,
        cluster_hook: bool,
    ) -> Result<(), SessionError> {
        if uid.is_empty() {
            return Err(SessionError::EmptyUid);
        }
        if let Some(existing) = self.inner.uid.get() {
            return Err(SessionError::AlreadyBound(existing.clone()));
        }
        let hub = self.inner.hub.upgrade().ok_or(SessionError::Closed)?;
        let callbacks = hub.callbacks.get().cloned().unwrap_or_default();
        for callback in &callbacks.on_bind {
            callback(self.clone(), uid.clone())
                .await
                .map_err(SessionError::Refused)?;
        }
        self.register_uid(&hub, uid.clone())?;
        if cluster_hook && let Some(hook) = hub.bind_hook.get() {
            (hook.0)(self.clone()).await;
        }
        if self.is_closed() {
            // The client left while the bind was under way: its close
            // already ran; nothing more to announce.
            return Err(SessionError::Closed);
        }
        for callback in &callbacks.after_bind {
            callback(self.clone(), uid.clone())
                .await
                .map_err(SessionError::Refused)?;
        }
        Ok(())
    }

    fn set_uid(&self, uid: String) -> Result<(), SessionError> {
        self.inner.uid.set(uid).map_err(|_| {
            SessionError::AlreadyBound(self.inner.uid.get().cloned().unwrap_or_default())
        })
    }

    /// Records `uid` in the hub's registry, kicking an older session of it
    /// (unique sessions) or refusing it.
    fn register_uid(&self, hub: &SessionHub, uid: String) -> Result<(), SessionError> {
        let previous = {
            let mut by_uid = lock(&hub.by_uid);
            let previous = by_uid
                .get(&uid)
                .and_then(Weak::upgrade)
                .filter(|p| !Arc::ptr_eq(p, &self.inner));
            if previous.is_some() && !hub.unique {
                return Err(SessionError::UidTaken(uid));
            }
            // `mark_closed` sets `closed` before it takes this lock to
            // unregister: a session closed meanwhile is not registered.
            if self.is_closed() {
                return Err(SessionError::Closed);
            }
            self.set_uid(uid.clone())?;
            by_uid.insert(uid, Arc::downgrade(&self.inner));
            previous
        };
        if let Some(previous) = previous {
            let previous = Session { inner: previous };
            tracing::info!(
                uid = self.uid(),
                old = previous.id(),
                new = self.id(),
                "uid bound again: kicking the older session"
            );
            previous.kick();
        }
        Ok(())
    }

    /// Whether this is a backend view of a session held by a frontend.
    pub fn is_backend(&self) -> bool {
        self.inner.remote.is_some()
    }

    /// On a backend, the id of the frontend server holding the client.
    pub fn frontend_id(&self) -> Option<&str> {
        self.inner
            .remote
            .as_ref()
            .map(|remote| remote.frontend_id())
    }

    /// On a backend, the session id on the frontend.
    pub fn frontend_session_id(&self) -> Option<i64> {
        self.inner
            .remote
            .as_ref()
            .map(|remote| remote.frontend_session_id())
    }

    /// On a backend, waits until the operations sent to the frontend so far
    /// ([`bind`](Self::bind), [`push`](Self::push),
    /// [`push_to_front`](Self::push_to_front), [`kick`](Self::kick)) are
    /// done; they are also done before the handler's reply is sent. Call it
    /// after a `bind` before pushing to the uid through
    /// [`AppHandle`](crate::handle::AppHandle), which does not wait for the
    /// session. Returns at once on a frontend.
    pub async fn flush(&self) {
        if let Some(remote) = &self.inner.remote {
            remote.flush().await;
        }
    }

    /// On a backend, sends this session's data to the frontend
    /// (`sys.pushsession`), replacing the frontend's copy. Does nothing on
    /// a frontend, whose data is the original.
    pub fn push_to_front(&self) {
        if let Some(remote) = &self.inner.remote {
            remote.push_to_front(self);
        }
    }

    /// Stores `value` under `key` (as JSON, like Pitaya's session data).
    pub fn set<T: Serialize + ?Sized>(
        &self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<(), SessionError> {
        let value =
            serde_json::to_value(value).map_err(|err| SessionError::Value(err.to_string()))?;
        lock(&self.inner.data).insert(key.into(), value);
        Ok(())
    }

    /// The value under `key` as a `T`; `Ok(None)` if absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionError> {
        let data = lock(&self.inner.data);
        data.get(key)
            .map(|value| T::deserialize(value).map_err(|err| SessionError::Value(err.to_string())))
            .transpose()
    }

    /// Whether `key` is set.
    pub fn contains(&self, key: &str) -> bool {
        lock(&self.inner.data).contains_key(key)
    }

    /// Removes `key`, returning whether it was set.
    pub fn remove(&self, key: &str) -> bool {
        lock(&self.inner.data).remove(key).is_some()
    }

    /// All session data as a JSON object (what crosses the cluster).
    pub fn data(&self) -> serde_json::Map<String, serde_json::Value> {
        lock(&self.inner.data)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Replaces all session data.
    pub fn set_data(&self, data: serde_json::Map<String, serde_json::Value>) {
        *lock(&self.inner.data) = data.into_iter().collect();
    }

    /// Pushes the serde `value` on `route` to this client, encoded with the
    /// session's serializer (JSON or MessagePack).
    ///
    /// On a protobuf session this is an error: push a prost message with
    /// [`push_message`](Self::push_message) (or bytes with
    /// [`push_raw`](Self::push_raw)).
    pub fn push<T: Serialize + ?Sized>(&self, route: &str, value: &T) -> Result<(), SessionError> {
        let hub = self.inner.hub.upgrade().ok_or(SessionError::Closed)?;
        if hub.serializer.is_protobuf() {
            return Err(SessionError::Value(format!(
                "push on {route}: this session uses the protobuf serializer, which encodes prost messages, not serde values; use Session::push_message with a prost message (or push_raw)"
            )));
        }
        let body = hub
            .serializer
            .serialize(value)
            .map_err(|err| SessionError::Value(err.to_string()))?;
        self.push_encoded(&hub, route, Bytes::from(body))
    }

    /// Pushes the prost `message` on `route` to this client, protobuf
    /// encoded: what a session of an app serving
    /// [`SerializerKind::Protobuf`] pushes (Go Pitaya's protobuf
    /// serializer).
    ///
    /// On a JSON or MessagePack session this is an error: push a serde
    /// value with [`push`](Self::push).
    pub fn push_message<M: prost::Message>(
        &self,
        route: &str,
        message: &M,
    ) -> Result<(), SessionError> {
        let hub = self.inner.hub.upgrade().ok_or(SessionError::Closed)?;
        let body = hub.serializer.encode_message(message).map_err(|_| {
            SessionError::Value(format!(
                "push on {route}: this session uses the {} serializer, which encodes serde values, not prost messages; use Session::push with a serde value (or push_raw)",
                hub.serializer
            ))
        })?;
        self.push_encoded(&hub, route, Bytes::from(body))
    }

    /// Pushes a body already encoded with `hub`'s serializer.
    fn push_encoded(&self, hub: &SessionHub, route: &str, body: Bytes) -> Result<(), SessionError> {
        if self.inner.remote.is_some() {
            return self.push_raw(route, body);
        }
        let frame = encode_push(hub.codec(), route, body)?;
        self.send_encoded(frame)
    }

    /// Pushes an already serialized body on `route`.
    pub fn push_raw(&self, route: &str, body: Bytes) -> Result<(), SessionError> {
        if let Some(remote) = &self.inner.remote {
            let uid = self.uid().ok_or(SessionError::Value(
                "a backend can only push to a bound session".into(),
            ))?;
            remote.push(uid, route, body);
            return Ok(());
        }
        let hub = self.inner.hub.upgrade().ok_or(SessionError::Closed)?;
        let frame = encode_push(hub.codec(), route, body)?;
        self.send_encoded(frame)
    }

    /// Queues an encoded packet (header included) for this client; the
    /// same bytes can be queued on many sessions (broadcasts encode once).
    /// A client whose queue is full is disconnected.
    pub(crate) fn send_encoded(&self, frame: Bytes) -> Result<(), SessionError> {
        if self.is_closed() {
            return Err(SessionError::Closed);
        }
        let max = self
            .inner
            .hub
            .upgrade()
            .map_or(usize::MAX, |hub| hub.max_queued_writes);
        {
            let mut outbox = lock(&self.inner.outbox);
            if outbox.closing {
                return Err(SessionError::Closed);
            }
            if outbox.queue.len() >= max {
                tracing::warn!(
                    session = self.id(),
                    uid = self.uid(),
                    queued = outbox.queue.len(),
                    "write queue full: disconnecting slow client"
                );
                outbox.closing = true;
                outbox.queue.clear();
                drop(outbox);
                self.inner.wake.notify_one();
                return Err(SessionError::Closed);
            }
            outbox.queue.push_back(frame);
        }
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Sends a kick packet, then closes the connection.
    ///
    /// On a backend the frontend is asked to kick (`sys.kick`).
    pub fn kick(&self) {
        if let Some(remote) = &self.inner.remote {
            remote.kick(self);
            return;
        }
        let kick = Packet::kick().to_bytes().unwrap_or_default();
        let mut outbox = lock(&self.inner.outbox);
        if !outbox.closing {
            outbox.queue.push_back(kick);
            outbox.closing = true;
        }
        drop(outbox);
        self.inner.wake.notify_one();
    }

    /// Closes the connection after writing what is queued.
    pub fn close(&self) {
        lock(&self.inner.outbox).closing = true;
        self.inner.wake.notify_one();
    }

    /// Whether the session is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Runs `callback` when the session closes (immediately if it already is).
    ///
    /// On a backend's view of a session (see [`is_backend`](Self::is_backend))
    /// the frontend holding the connection is asked to tell this server
    /// when it closes (a pitaya-rs extension: Go Pitaya refuses it with
    /// `ErrOnCloseBackend`); the callback then gets a closed view with the
    /// uid and the session data the frontend had. It also runs when the
    /// frontend leaves the cluster for good. A Go frontend does not know the
    /// request: the first callback for its sessions is dropped (logged as
    /// an error) and the later ones are refused.
    ///
    /// # Errors
    /// [`SessionError::CloseNotReported`] on a backend, for a frontend known
    /// not to report closes.
    pub fn on_close(
        &self,
        callback: impl FnOnce(&Session) + Send + 'static,
    ) -> Result<(), SessionError> {
        if let Some(remote) = &self.inner.remote {
            if self.is_closed() {
                callback(self);
                return Ok(());
            }
            return remote.watch_close(self, Box::new(callback));
        }
        // Checked under the lock `mark_closed` takes the callbacks with,
        // after it set `closed`: a callback is either taken or run here.
        let mut callbacks = lock(&self.inner.on_close);
        if self.is_closed() {
            drop(callbacks);
            callback(self);
            return Ok(());
        }
        callbacks.push(Box::new(callback));
        Ok(())
    }

    /// Takes the queued packets for the writer, and whether to close after
    /// writing them. Used by the agent.
    pub(crate) fn take_outgoing(&self, into: &mut VecDeque<Bytes>) -> bool {
        let mut outbox = lock(&self.inner.outbox);
        into.append(&mut outbox.queue);
        if outbox.queue.capacity() > 16 {
            outbox.queue = VecDeque::new();
        }
        outbox.closing
    }

    /// Wakes the connection's agent so it re-checks its state (used by the
    /// app at shutdown).
    pub(crate) fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Waits until something is queued for the writer. Used by the agent.
    pub(crate) async fn outgoing_ready(&self) {
        self.inner.wake.notified().await;
    }

    /// Marks the session closed, unregisters it and runs the close
    /// callbacks. Called once by the agent when the connection ends.
    pub(crate) fn mark_closed(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some(hub) = self.inner.hub.upgrade() {
            hub.remove(&self.inner);
        }
        let callbacks = std::mem::take(&mut *lock(&self.inner.on_close));
        for callback in callbacks {
            callback(self);
        }
        if self.inner.remote.is_none()
            && let Some(pool) = self
                .inner
                .hub
                .upgrade()
                .and_then(|hub| hub.callbacks.get().cloned())
        {
            for callback in &pool.on_close {
                callback(self);
            }
        }
    }
}

/// Encodes a push as a whole data packet.
pub fn encode_push(codec: &MessageCodec, route: &str, body: Bytes) -> Result<Bytes, SessionError> {
    let mut out = BytesMut::new();
    codec
        .encode_packet(&Message::push(route, body), &mut out)
        .map_err(|err| SessionError::Encode(err.to_string()))?;
    Ok(out.freeze())
}

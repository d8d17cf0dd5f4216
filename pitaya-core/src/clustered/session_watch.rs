//! Session close events across servers (a pitaya-rs extension).
//!
//! A backend that registers `on_close` on its view of a session asks the
//! frontend holding the connection to tell it when the session closes:
//!
//! 1. backend → frontend, user RPC `sys.watchsessionclose` with a
//!    `protos.Session {id, uid}`; the frontend answers `ack`, or `closed`
//!    when the session is already gone;
//! 2. frontend → backend (the `peer.id` of the watch), once the connection
//!    ends: user RPC `sys.sessionclosed` with `protos.Session {id, uid,
//!    data}` (data as JSON, like every session transfer).
//!
//! Only pitaya-rs servers send these routes, so Go servers never see them
//! unless a pitaya-rs backend asks a Go frontend, which answers "route not
//! found": the callback is dropped (logged as an error) and later
//! `on_close` calls for that frontend's sessions fail at once with
//! [`SessionError::CloseNotReported`](crate::session::SessionError::CloseNotReported).
//!
//! A frontend that leaves the cluster (and is still gone after
//! [`FRONTEND_GONE_GRACE`], so a lease renewed late is not a close) has
//! lost all its sessions: their callbacks run.
//!
//! Bounds: a frontend keeps at most [`MAX_WATCHERS_PER_SESSION`] watching
//! servers per session, each once, and only servers of the cluster may
//! watch; a backend accepts `sys.sessionclosed` only from a frontend it
//! knows, and only for sessions it watches.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use bytes::Bytes;

use crate::session::{CloseCallback, RemoteSession, Session, SessionFuture, SessionHub};
use crate::{PitayaError, error::codes};

/// The watch route a backend calls on a frontend.
pub(crate) const WATCH_ROUTE: &str = "sys.watchsessionclose";
/// The route a frontend calls on a backend when a watched session closed.
pub(crate) const CLOSED_ROUTE: &str = "sys.sessionclosed";
/// The frontend's answer to a watch of a session that is already gone.
pub(crate) const ALREADY_CLOSED: &[u8] = b"closed";
/// How long a frontend that left discovery has to come back (a lease
/// renewed late, a re-registration) before its sessions count as closed.
pub(crate) const FRONTEND_GONE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// The most servers that may watch one session of a frontend.
pub(crate) const MAX_WATCHERS_PER_SESSION: usize = 32;

/// The close callbacks this server registered on sessions of frontends.
#[derive(Default)]
pub(crate) struct SessionWatches {
    hub: Weak<SessionHub>,
    sessions: Mutex<HashMap<(String, i64), Watched>>,
    /// Frontends that answered a watch with "route not found" (Go's).
    unsupported: Mutex<HashSet<String>>,
    /// Frontend side: the servers watching each session of this server.
    watchers: Mutex<HashMap<u64, HashSet<String>>>,
}

struct Watched {
    uid: Option<String>,
    callbacks: Vec<CloseCallback>,
}

impl std::fmt::Debug for SessionWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionWatches").finish_non_exhaustive()
    }
}

impl SessionWatches {
    /// Watches whose closed views are made by `hub`.
    pub(crate) fn new(hub: &Arc<SessionHub>) -> Self {
        Self {
            hub: Arc::downgrade(hub),
            sessions: Mutex::new(HashMap::new()),
            unsupported: Mutex::new(HashSet::new()),
            watchers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `frontend_id` is known not to report closes.
    pub(crate) fn is_unsupported(&self, frontend_id: &str) -> bool {
        self.unsupported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(frontend_id)
    }

    /// The frontend answered a watch for `session_id` with an error: the
    /// session's callbacks cannot run and are dropped; with `unsupported`
    /// (a Go frontend), the later watches of its sessions fail at once.
    pub(crate) fn refused(
        &self,
        frontend_id: &str,
        session_id: i64,
        unsupported: bool,
        err: &PitayaError,
    ) {
        let dropped = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(frontend_id.to_owned(), session_id));
        let first = unsupported
            && self
                .unsupported
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(frontend_id.to_owned());
        let callbacks = dropped.map_or(0, |watched| watched.callbacks.len());
        if first || !unsupported {
            tracing::error!(
                frontend = %frontend_id,
                session = session_id,
                callbacks,
                error = %err,
                "the frontend will not report this session's close: its on_close callbacks are dropped"
            );
        }
    }

    /// Frontend side: `watcher` watches session `session_id` here. False
    /// when it already did (nothing more to register); an error beyond
    /// [`MAX_WATCHERS_PER_SESSION`].
    pub(crate) fn add_watcher(&self, session_id: u64, watcher: &str) -> Result<bool, PitayaError> {
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        let set = watchers.entry(session_id).or_default();
        if set.contains(watcher) {
            return Ok(false);
        }
        if set.len() >= MAX_WATCHERS_PER_SESSION {
            return Err(PitayaError::new(
                codes::BAD_REQUEST,
                format!("session {session_id} has {MAX_WATCHERS_PER_SESSION} watchers already"),
            ));
        }
        set.insert(watcher.to_owned());
        Ok(true)
    }

    /// Frontend side: the session closed; its watchers, told once.
    pub(crate) fn take_watchers(&self, session_id: u64) -> HashSet<String> {
        self.watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session_id)
            .unwrap_or_default()
    }

    /// The frontends this server watches sessions of.
    pub(crate) fn frontends(&self) -> Vec<String> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut frontends: Vec<String> = sessions.keys().map(|(fid, _)| fid.clone()).collect();
        frontends.sort();
        frontends.dedup();
        frontends
    }

    /// Whether this server watches session `session_id` of `frontend_id`.
    pub(crate) fn watches(&self, frontend_id: &str, session_id: i64) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(&(frontend_id.to_owned(), session_id))
    }

    /// A frontend came (back) into the cluster: it may report closes again.
    pub(crate) fn frontend_seen(&self, frontend_id: &str) {
        self.unsupported
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(frontend_id);
    }

    /// Adds `callback` for session `session_id` of `frontend_id`; true when
    /// it is the first for that session (the frontend must be asked).
    pub(crate) fn add(
        &self,
        frontend_id: &str,
        session_id: i64,
        uid: Option<String>,
        callback: CloseCallback,
    ) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (frontend_id.to_owned(), session_id);
        match sessions.get_mut(&key) {
            Some(watched) => {
                watched.uid = watched.uid.take().or(uid);
                watched.callbacks.push(callback);
                false
            }
            None => {
                sessions.insert(
                    key,
                    Watched {
                        uid,
                        callbacks: vec![callback],
                    },
                );
                true
            }
        }
    }

    /// The session closed: its callbacks run with a closed view holding
    /// the uid (the frontend's, when it sent one) and `data` (the
    /// frontend's last session data).
    pub(crate) fn closed(
        &self,
        frontend_id: &str,
        session_id: i64,
        uid: Option<String>,
        data: Option<HashMap<String, serde_json::Value>>,
    ) {
        let watched = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(frontend_id.to_owned(), session_id));
        if let Some(mut watched) = watched {
            if let Some(uid) = uid.filter(|uid| !uid.is_empty()) {
                watched.uid = Some(uid);
            }
            self.run(frontend_id, session_id, watched, data.unwrap_or_default());
        }
    }

    /// The frontend left the cluster: every session it held is gone.
    pub(crate) fn frontend_gone(&self, frontend_id: &str) {
        let gone: Vec<((String, i64), Watched)> = {
            let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
            let keys: Vec<(String, i64)> = sessions
                .keys()
                .filter(|(fid, _)| fid == frontend_id)
                .cloned()
                .collect();
            keys.into_iter()
                .filter_map(|key| sessions.remove(&key).map(|watched| (key, watched)))
                .collect()
        };
        if !gone.is_empty() {
            tracing::info!(frontend = %frontend_id, sessions = gone.len(), "frontend left the cluster: its sessions are closed");
        }
        for ((_, session_id), watched) in gone {
            self.run(frontend_id, session_id, watched, HashMap::new());
        }
    }

    fn run(
        &self,
        frontend_id: &str,
        session_id: i64,
        watched: Watched,
        data: HashMap<String, serde_json::Value>,
    ) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let view = hub.create_backend(
            watched.uid,
            data,
            Box::new(ClosedLink {
                frontend_id: frontend_id.to_owned(),
                session_id,
            }),
        );
        view.mark_closed();
        for callback in watched.callbacks {
            callback(&view);
        }
    }
}

/// The link of a closed backend view: nothing reaches a session that is
/// gone.
struct ClosedLink {
    frontend_id: String,
    session_id: i64,
}

impl RemoteSession for ClosedLink {
    fn frontend_id(&self) -> &str {
        &self.frontend_id
    }

    fn frontend_session_id(&self) -> i64 {
        self.session_id
    }

    fn bind(&self, _uid: &str) -> SessionFuture<Result<(), PitayaError>> {
        Box::pin(async {
            Err(PitayaError::new(
                codes::CLIENT_CLOSED_REQUEST,
                "session is closed",
            ))
        })
    }

    fn watch_close(
        &self,
        session: &Session,
        callback: CloseCallback,
    ) -> Result<(), crate::session::SessionError> {
        callback(session);
        Ok(())
    }

    fn push(&self, _uid: &str, _route: &str, _body: Bytes) {}

    fn kick(&self, _session: &Session) {}

    fn push_to_front(&self, _session: &Session) {}

    fn flush(&self) -> SessionFuture<()> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SerializerKind;
    use crate::codec::MessageCodec;

    fn recorder(seen: &Arc<Mutex<Vec<String>>>) -> CloseCallback {
        let seen = seen.clone();
        Box::new(move |view: &Session| {
            let room: Option<String> = view.get("room").ok().flatten();
            seen.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!(
                    "{}:{}:{}",
                    view.uid().unwrap_or("-"),
                    room.unwrap_or_default(),
                    view.is_closed()
                ));
        })
    }

    #[test]
    fn callbacks_run_once_when_the_session_or_its_frontend_goes() {
        let hub = SessionHub::new(MessageCodec::default(), SerializerKind::Json, 8, true);
        let watches = SessionWatches::new(&hub);
        let seen = Arc::new(Mutex::new(Vec::new()));
        assert!(watches.add("f1", 1, Some("ana".into()), recorder(&seen)));
        assert!(
            !watches.add("f1", 1, None, recorder(&seen)),
            "one watch per session"
        );
        assert!(watches.add("f1", 2, Some("bob".into()), recorder(&seen)));
        assert!(watches.add("f2", 1, Some("cid".into()), recorder(&seen)));

        let data = HashMap::from([("room".to_owned(), serde_json::json!("r7"))]);
        watches.closed("f2", 1, None, Some(data));
        watches.closed("f2", 1, None, None);
        assert_eq!(*seen.lock().unwrap(), ["cid:r7:true"]);

        watches.frontend_gone("f1");
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, ["ana::true", "ana::true", "bob::true", "cid:r7:true"]);
        // Nothing is left to run.
        assert!(watches.sessions.lock().unwrap().is_empty());
    }

    #[test]
    fn the_frontend_uid_wins_and_watchers_are_bounded() {
        let hub = SessionHub::new(MessageCodec::default(), SerializerKind::Json, 8, true);
        let watches = SessionWatches::new(&hub);
        let seen = Arc::new(Mutex::new(Vec::new()));
        // Registered before the bind: the frontend's report has the uid.
        assert!(watches.add("f1", 7, None, recorder(&seen)));
        watches.closed("f1", 7, Some("late".into()), None);
        assert_eq!(*seen.lock().unwrap(), ["late::true"]);

        // Each watcher once, and a bounded number of them.
        assert!(watches.add_watcher(1, "room-1").unwrap());
        assert!(!watches.add_watcher(1, "room-1").unwrap());
        for n in 2..=MAX_WATCHERS_PER_SESSION {
            assert!(watches.add_watcher(1, &format!("room-{n}")).unwrap());
        }
        assert!(watches.add_watcher(1, "one-too-many").is_err());
        assert_eq!(watches.take_watchers(1).len(), MAX_WATCHERS_PER_SESSION);
        assert!(watches.take_watchers(1).is_empty(), "taken once");

        // A frontend that does not report closes: its watch is dropped and
        // remembered until it comes back.
        assert!(watches.add("go-1", 3, None, recorder(&seen)));
        watches.refused(
            "go-1",
            3,
            true,
            &PitayaError::new(codes::NOT_FOUND, "route not found"),
        );
        assert!(watches.is_unsupported("go-1"));
        assert!(!watches.watches("go-1", 3));
        watches.frontend_seen("go-1");
        assert!(!watches.is_unsupported("go-1"));
    }
}

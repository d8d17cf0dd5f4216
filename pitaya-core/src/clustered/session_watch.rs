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
//! Only pitaya-rs servers send these routes, so Go servers never see them;
//! a Go frontend answers the watch with "route not found", and the backend
//! then falls back to the other signal: a frontend that leaves the cluster
//! has lost all its sessions, and their callbacks run.

use std::collections::HashMap;
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

/// The close callbacks this server registered on sessions of frontends.
#[derive(Default)]
pub(crate) struct SessionWatches {
    hub: Weak<SessionHub>,
    sessions: Mutex<HashMap<(String, i64), Watched>>,
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
        }
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
    /// the uid and `data` (the frontend's last session data).
    pub(crate) fn closed(
        &self,
        frontend_id: &str,
        session_id: i64,
        data: Option<HashMap<String, serde_json::Value>>,
    ) {
        let watched = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(frontend_id.to_owned(), session_id));
        if let Some(watched) = watched {
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

    fn watch_close(&self, session: &Session, callback: CloseCallback) {
        callback(session);
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
        watches.closed("f2", 1, Some(data));
        watches.closed("f2", 1, None);
        assert_eq!(*seen.lock().unwrap(), ["cid:r7:true"]);

        watches.frontend_gone("f1");
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, ["ana::true", "ana::true", "bob::true", "cid:r7:true"]);
        // Nothing is left to run.
        assert!(watches.sessions.lock().unwrap().is_empty());
    }
}

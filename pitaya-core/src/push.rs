//! Pushes and kicks, one method family with an [`Audience`]:
//! [`AppHandle::push`] (a `Serialize` value in the app's serializer),
//! [`AppHandle::push_message`] (a prost message, on a protobuf app),
//! [`AppHandle::push_raw`] (bytes already serialized) and
//! [`AppHandle::kick`].
//!
//! An audience is one session, users by uid, the members of a group or
//! every session of this server. Users connected to this server get the
//! push on their connection at once (the packet is encoded once for all of
//! them); in a cluster the others get it through their frontend, fire and
//! forget, as Go Pitaya's `SendPushToUsers` and `SendKickToUsers` do.
//!
//! ```
//! use pitaya_core::push::Audience;
//!
//! # async fn demo(app: pitaya_core::handle::AppHandle) -> Result<(), pitaya_core::PitayaError> {
//! // Everyone in a room, wherever they are connected.
//! app.push(Audience::group("room-1"), "onMove", &(3, 4)).await?;
//! // Two players, through the frontends of type "connector".
//! let report = app
//!     .push(Audience::uids(["ana", "bob"]).via("connector"), "onStart", &"go")
//!     .await?;
//! assert!(report.unreachable.len() <= 2);
//! # Ok(()) }
//! ```

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::clustered::ClusterParts;
use crate::error::codes;
use crate::handle::AppHandle;
use crate::session::{Session, SessionError, encode_push};
use crate::{PitayaError, Serializer, protos};

/// Who a push or a kick reaches.
#[derive(Clone, Debug)]
#[non_exhaustive]
#[doc(alias = "PushTarget")]
pub enum Audience {
    /// One session. On a backend, a view of a frontend's session: the push
    /// goes to that frontend.
    Session(Session),
    /// Users by uid: those bound on this server directly, the others
    /// through frontends of `frontend_type` (see [`Audience::via`]).
    Users {
        /// The users' uids.
        uids: Vec<String>,
        /// The frontend type the users are bound on, when not this server's.
        frontend_type: Option<String>,
    },
    /// The members of a group of [`AppHandle::groups`], reached as
    /// [`Audience::Users`].
    Group {
        /// The group's name.
        name: String,
        /// The frontend type the members are bound on, when not this
        /// server's.
        frontend_type: Option<String>,
    },
    /// Every session connected to this server.
    All,
}

impl Audience {
    /// The user bound to `uid`.
    pub fn uid(uid: impl Into<String>) -> Self {
        Self::Users {
            uids: vec![uid.into()],
            frontend_type: None,
        }
    }

    /// The users bound to `uids`.
    pub fn uids<I>(uids: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        Self::Users {
            uids: uids.into_iter().map(Into::into).collect(),
            frontend_type: None,
        }
    }

    /// The members of the group `name`.
    pub fn group(name: impl Into<String>) -> Self {
        Self::Group {
            name: name.into(),
            frontend_type: None,
        }
    }

    /// One session.
    pub fn session(session: &Session) -> Self {
        Self::Session(session.clone())
    }

    /// Every session connected to this server.
    pub fn all() -> Self {
        Self::All
    }

    /// Users not bound on this server are reached through the frontends of
    /// `frontend_type` (Go's `frontendType` argument). Without it, a
    /// frontend reaches the other frontends of its own type, and a backend
    /// the one frontend type of the cluster (an error when there are
    /// several). Sessions and [`Audience::All`] ignore it.
    #[must_use]
    pub fn via(self, frontend_type: impl Into<String>) -> Self {
        let frontend_type = Some(frontend_type.into());
        match self {
            Self::Users { uids, .. } => Self::Users {
                uids,
                frontend_type,
            },
            Self::Group { name, .. } => Self::Group {
                name,
                frontend_type,
            },
            other => other,
        }
    }
}

impl From<&Session> for Audience {
    fn from(session: &Session) -> Self {
        Self::session(session)
    }
}

impl From<Session> for Audience {
    fn from(session: Session) -> Self {
        Self::Session(session)
    }
}

/// What a push or a kick reached.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Delivery {
    /// Sessions it was queued on here, plus users it was sent to through
    /// the cluster (fire and forget: sent, not necessarily received).
    pub delivered: usize,
    /// The uids it could not reach: not connected here and not reachable
    /// through the cluster (standalone: not connected), or a closed session.
    pub unreachable: Vec<String>,
}

impl Delivery {
    fn reached(&mut self) {
        self.delivered += 1;
    }

    fn missed(&mut self, uid: impl Into<String>) {
        self.unreachable.push(uid.into());
    }
}

impl AppHandle {
    /// Pushes `value`, serialized once with the app's serializer, on
    /// `route` to `to`.
    ///
    /// # Errors
    /// `PIT-500` when the value cannot be serialized or the route cannot be
    /// encoded; `PIT-404` for a group that does not exist; `PIT-500` when
    /// the group service fails, or when a backend cannot tell which
    /// frontend type its users are on. Users who
    /// cannot be reached are not an error: see [`Delivery::unreachable`].
    pub async fn push<T: Serialize + ?Sized>(
        &self,
        to: impl Into<Audience>,
        route: &str,
        value: &T,
    ) -> Result<Delivery, PitayaError> {
        let body = self
            .shared
            .sessions
            .serializer()
            .serialize(value)
            .map_err(|err| PitayaError::new(codes::INTERNAL, format!("push {route}: {err}")))?;
        self.push_raw(to, route, Bytes::from(body)).await
    }

    /// Pushes a protobuf `message` on `route` to `to`: the push family of a
    /// protobuf app (`SerializerKind::Protobuf`); see [`push`](Self::push).
    ///
    /// # Errors
    /// `PIT-500` on an app whose serializer is not protobuf; otherwise as
    /// [`push`](Self::push).
    pub async fn push_message<M: prost::Message>(
        &self,
        to: impl Into<Audience>,
        route: &str,
        message: &M,
    ) -> Result<Delivery, PitayaError> {
        let body = self
            .shared
            .sessions
            .serializer()
            .encode_message(message)
            .map_err(|err| PitayaError::new(codes::INTERNAL, format!("push {route}: {err}")))?;
        self.push_raw(to, route, Bytes::from(body)).await
    }

    /// Pushes an already serialized body on `route` to `to`; see
    /// [`push`](Self::push).
    ///
    /// # Errors
    /// As [`push`](Self::push), serialization aside.
    pub async fn push_raw(
        &self,
        to: impl Into<Audience>,
        route: &str,
        body: Bytes,
    ) -> Result<Delivery, PitayaError> {
        let mut delivery = Delivery::default();
        match to.into() {
            Audience::Session(session) => match session.push_raw(route, body) {
                Ok(()) => delivery.reached(),
                Err(SessionError::Closed) => {
                    delivery.missed(session.uid().unwrap_or_default());
                }
                Err(err) => return Err(err.into()),
            },
            Audience::All => {
                let frame = self.encode_push(route, body)?;
                for session in self.shared.sessions.sessions() {
                    match session.send_encoded(frame.clone()) {
                        Ok(()) => delivery.reached(),
                        Err(_) => delivery.missed(session.uid().unwrap_or_default()),
                    }
                }
            }
            Audience::Users {
                uids,
                frontend_type,
            } => {
                self.push_to_users(&uids, frontend_type.as_deref(), route, body, &mut delivery)
                    .await?;
            }
            Audience::Group {
                name,
                frontend_type,
            } => {
                let uids = self.shared.groups.members(&name).await?;
                self.push_to_users(&uids, frontend_type.as_deref(), route, body, &mut delivery)
                    .await?;
            }
        }
        Ok(delivery)
    }

    /// Kicks `to`: each session gets a kick packet and is closed once its
    /// queued writes are out. Users not bound here are kicked through
    /// their frontend in a cluster.
    ///
    /// # Errors
    /// `PIT-404` for a group that does not exist; `PIT-500` when the group
    /// service fails, or when a backend cannot tell which frontend type its
    /// users are on.
    pub async fn kick(&self, to: impl Into<Audience>) -> Result<Delivery, PitayaError> {
        let mut delivery = Delivery::default();
        let (uids, frontend_type) = match to.into() {
            Audience::Session(session) => {
                session.kick();
                delivery.reached();
                return Ok(delivery);
            }
            Audience::All => {
                for session in self.shared.sessions.sessions() {
                    session.kick();
                    delivery.reached();
                }
                return Ok(delivery);
            }
            Audience::Users {
                uids,
                frontend_type,
            } => (uids, frontend_type),
            Audience::Group {
                name,
                frontend_type,
            } => (self.shared.groups.members(&name).await?, frontend_type),
        };
        let mut remote = Vec::new();
        for uid in uids {
            match self.local_session(&uid, frontend_type.as_deref()) {
                Some(session) => {
                    session.kick();
                    delivery.reached();
                }
                None => remote.push(uid),
            }
        }
        if remote.is_empty() {
            return Ok(delivery);
        }
        let Some((cluster, frontend_type)) = self.remote_route(frontend_type.as_deref())? else {
            delivery.unreachable.extend(remote);
            return Ok(delivery);
        };
        for uid in remote {
            let kick = protos::KickMsg {
                user_id: uid.clone(),
            };
            match cluster.client.kick_user(&frontend_type, kick).await {
                Ok(()) => delivery.reached(),
                Err(err) => {
                    tracing::warn!(%uid, error = %err, "kick through the cluster failed");
                    delivery.missed(uid);
                }
            }
        }
        Ok(delivery)
    }

    async fn push_to_users(
        &self,
        uids: &[String],
        frontend_type: Option<&str>,
        route: &str,
        body: Bytes,
        delivery: &mut Delivery,
    ) -> Result<(), PitayaError> {
        let mut frame = None;
        let mut remote = Vec::new();
        for uid in uids {
            let Some(session) = self.local_session(uid, frontend_type) else {
                remote.push(uid);
                continue;
            };
            let frame = match &frame {
                Some(frame) => Bytes::clone(frame),
                None => frame.insert(self.encode_push(route, body.clone())?).clone(),
            };
            match session.send_encoded(frame) {
                Ok(()) => delivery.reached(),
                Err(_) => delivery.missed(uid.clone()),
            }
        }
        if remote.is_empty() {
            return Ok(());
        }
        let Some((cluster, frontend_type)) = self.remote_route(frontend_type)? else {
            delivery.unreachable.extend(remote.into_iter().cloned());
            return Ok(());
        };
        for uid in remote {
            let push = protos::Push {
                route: route.to_owned(),
                uid: uid.clone(),
                data: body.clone(),
            };
            match cluster.client.push_to_user(&frontend_type, push).await {
                Ok(()) => delivery.reached(),
                Err(err) => {
                    tracing::warn!(%uid, error = %err, "push through the cluster failed");
                    delivery.missed(uid.clone());
                }
            }
        }
        Ok(())
    }

    /// The session of `uid` on this server, when pushes for users of
    /// `frontend_type` are delivered here.
    fn local_session(&self, uid: &str, frontend_type: Option<&str>) -> Option<Session> {
        if frontend_type.is_some_and(|wanted| wanted != self.shared.server_type) {
            return None;
        }
        self.shared.sessions.by_uid(uid)
    }

    /// The cluster and the frontend type that users not bound here are
    /// reached through; `None` standalone.
    fn remote_route(
        &self,
        frontend_type: Option<&str>,
    ) -> Result<Option<(Arc<ClusterParts>, String)>, PitayaError> {
        let Some(cluster) = self.cluster() else {
            return Ok(None);
        };
        if let Some(frontend_type) = frontend_type {
            return Ok(Some((cluster, frontend_type.to_owned())));
        }
        if cluster.me.frontend {
            let own = cluster.me.server_type.clone();
            return Ok(Some((cluster, own)));
        }
        let mut types: Vec<String> = cluster
            .discovery
            .servers()
            .iter()
            .filter(|server| server.frontend)
            .map(|server| server.server_type.clone())
            .collect();
        types.sort();
        types.dedup();
        match types.as_slice() {
            [only] => {
                let only = only.clone();
                Ok(Some((cluster, only)))
            }
            [] => Err(PitayaError::new(
                codes::INTERNAL,
                "no frontend server is known: cannot reach users from this backend",
            )),
            several => Err(PitayaError::new(
                codes::INTERNAL,
                format!(
                    "users may be on frontends of types {}: name one with Audience::via",
                    several.join(", ")
                ),
            )),
        }
    }

    fn encode_push(&self, route: &str, body: Bytes) -> Result<Bytes, PitayaError> {
        encode_push(self.shared.sessions.codec(), route, body).map_err(PitayaError::from)
    }
}

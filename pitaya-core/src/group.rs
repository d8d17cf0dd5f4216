//! Groups: named sets of users (by uid) to push to, kept in memory.
//!
//! A member is a bound session's uid; a member leaves its groups when its
//! session closes. Push to a group with
//! [`AppHandle::push`](crate::handle::AppHandle::push) and
//! [`Audience::group`](crate::push::Audience::group): the push is encoded
//! once and the same bytes are queued on every member's session.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;

use crate::PitayaError;
use crate::session::Session;

/// Why a group operation failed (Pitaya's group errors).
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// `create` of a group that exists.
    #[error("group {0:?} already exists")]
    Exists(String),
    /// The group does not exist.
    #[error("group {0:?} not found")]
    NotFound(String),
    /// `add` of a member already in the group.
    #[error("uid {uid:?} is already in group {group:?}")]
    MemberExists {
        /// The group.
        group: String,
        /// The member.
        uid: String,
    },
    /// `remove` of a member not in the group.
    #[error("uid {uid:?} is not in group {group:?}")]
    MemberNotFound {
        /// The group.
        group: String,
        /// The member.
        uid: String,
    },
    /// The session has no uid to be a member with.
    #[error("the session is not bound to a uid")]
    Unbound,
    /// `add` of a backend's view of a session: these groups hold the
    /// sessions connected to this server, and a backend is not told when a
    /// forwarded session closes, so its member would never leave.
    #[error("groups of this server hold only sessions connected to it, not a backend's view")]
    BackendSession,
}

impl From<GroupError> for PitayaError {
    fn from(err: GroupError) -> Self {
        let code = match err {
            GroupError::NotFound(_) | GroupError::MemberNotFound { .. } => {
                crate::error::codes::NOT_FOUND
            }
            GroupError::BackendSession => crate::error::codes::INTERNAL,
            _ => crate::error::codes::BAD_REQUEST,
        };
        PitayaError::new(code, err.to_string())
    }
}

/// The in-memory group registry of one server.
///
/// ```
/// use pitaya_core::group::Groups;
/// use pitaya_core::session::SessionHub;
/// use pitaya_core::{SerializerKind, codec::MessageCodec};
///
/// let hub = SessionHub::new(MessageCodec::default(), SerializerKind::Json, 16, true);
/// let groups = Groups::new();
/// let session = hub.create(None);
/// session.bind("ana").unwrap();
/// groups.create("lobby").unwrap();
/// groups.add("lobby", &session).unwrap();
/// assert_eq!(groups.members("lobby").unwrap(), vec!["ana".to_string()]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Groups {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    groups: Mutex<HashMap<String, BTreeSet<String>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Groups {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates an empty group.
    pub fn create(&self, name: &str) -> Result<(), GroupError> {
        let mut groups = lock(&self.inner.groups);
        if groups.contains_key(name) {
            return Err(GroupError::Exists(name.to_owned()));
        }
        groups.insert(name.to_owned(), BTreeSet::new());
        Ok(())
    }

    /// Whether the group exists.
    pub fn exists(&self, name: &str) -> bool {
        lock(&self.inner.groups).contains_key(name)
    }

    /// Adds the session's uid to the group; it leaves when the session closes.
    pub fn add(&self, name: &str, session: &Session) -> Result<(), GroupError> {
        let uid = session.uid().ok_or(GroupError::Unbound)?.to_owned();
        if session.is_backend() {
            return Err(GroupError::BackendSession);
        }
        {
            let mut groups = lock(&self.inner.groups);
            let members = groups
                .get_mut(name)
                .ok_or_else(|| GroupError::NotFound(name.to_owned()))?;
            if !members.insert(uid.clone()) {
                return Err(GroupError::MemberExists {
                    group: name.to_owned(),
                    uid,
                });
            }
        }
        let registry = Arc::downgrade(&self.inner);
        let group = name.to_owned();
        // Not a backend view (checked above): registering cannot fail.
        let _ = session.on_close(move |_| {
            if let Some(inner) = registry.upgrade()
                && let Some(members) = lock(&inner.groups).get_mut(&group)
            {
                members.remove(&uid);
            }
        });
        Ok(())
    }

    /// Removes `uid` from the group.
    pub fn remove(&self, name: &str, uid: &str) -> Result<(), GroupError> {
        let mut groups = lock(&self.inner.groups);
        let members = groups
            .get_mut(name)
            .ok_or_else(|| GroupError::NotFound(name.to_owned()))?;
        if members.remove(uid) {
            Ok(())
        } else {
            Err(GroupError::MemberNotFound {
                group: name.to_owned(),
                uid: uid.to_owned(),
            })
        }
    }

    /// Whether `uid` is in the group.
    pub fn contains(&self, name: &str, uid: &str) -> Result<bool, GroupError> {
        lock(&self.inner.groups)
            .get(name)
            .map(|members| members.contains(uid))
            .ok_or_else(|| GroupError::NotFound(name.to_owned()))
    }

    /// The members' uids, sorted.
    pub fn members(&self, name: &str) -> Result<Vec<String>, GroupError> {
        lock(&self.inner.groups)
            .get(name)
            .map(|members| members.iter().cloned().collect())
            .ok_or_else(|| GroupError::NotFound(name.to_owned()))
    }

    /// Number of members.
    pub fn count(&self, name: &str) -> Result<usize, GroupError> {
        lock(&self.inner.groups)
            .get(name)
            .map(BTreeSet::len)
            .ok_or_else(|| GroupError::NotFound(name.to_owned()))
    }

    /// Removes every member.
    pub fn clear(&self, name: &str) -> Result<(), GroupError> {
        lock(&self.inner.groups)
            .get_mut(name)
            .map(BTreeSet::clear)
            .ok_or_else(|| GroupError::NotFound(name.to_owned()))
    }

    /// Deletes the group.
    pub fn delete(&self, name: &str) -> Result<(), GroupError> {
        lock(&self.inner.groups)
            .remove(name)
            .map(drop)
            .ok_or_else(|| GroupError::NotFound(name.to_owned()))
    }
}

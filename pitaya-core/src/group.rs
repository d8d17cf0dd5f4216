//! Groups: named sets of users (by uid) to push to, behind a
//! [`GroupService`], Go Pitaya's group service.
//!
//! [`Groups`] is what [`AppHandle::groups`](crate::handle::AppHandle::groups)
//! returns: a cheap handle on the app's service, with
//! [`add_session`](Groups::add_session) to make a session's uid a member
//! that leaves when the session closes. Two services exist:
//!
//! - [`MemoryGroups`], the default: groups live in this process only (Go's
//!   memory group service); groups with a TTL are swept periodically,
//! - `EtcdGroups` (`pitaya-cluster`, feature `etcd`): groups live in etcd,
//!   on Go Pitaya's key layout, so every server of a cluster, Go or Rust,
//!   sees the same groups.
//!
//! Choose one with [`AppBuilder::groups`](crate::app::AppBuilder::groups).
//! Push to a group with [`AppHandle::push`](crate::handle::AppHandle::push)
//! and [`Audience::group`](crate::push::Audience::group): the push is
//! encoded once and the same bytes are queued on every member's session.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), pitaya_core::group::GroupError> {
//! use std::time::Duration;
//! use pitaya_core::group::{GroupError, Groups};
//!
//! let groups = Groups::new();
//! groups.create("lobby").await?;
//! groups.add("lobby", "bob").await?;
//! groups.add("lobby", "ana").await?;
//! assert_eq!(groups.members("lobby").await?, ["ana", "bob"]);
//! assert_eq!(
//!     groups.add("lobby", "ana").await,
//!     Err(GroupError::MemberExists { group: "lobby".into(), uid: "ana".into() })
//! );
//!
//! // A group with a TTL is gone that long after its creation or last renewal.
//! groups.create_with_ttl("match-7", Duration::from_secs(60)).await?;
//! groups.renew_ttl("match-7").await?;
//! # Ok(())
//! # }
//! ```

mod memory;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};
use std::time::Duration;

use thiserror::Error;
use tokio_util::sync::CancellationToken;

pub use memory::{DEFAULT_SWEEP_INTERVAL, MemoryGroups};

use crate::PitayaError;
use crate::session::Session;

/// Why a group operation failed (Pitaya's group errors).
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupError {
    /// `create` of a group that exists (Go's `ErrGroupAlreadyExists`).
    #[error("group {0:?} already exists")]
    Exists(String),
    /// The group does not exist (Go's `ErrGroupNotFound`).
    #[error("group {0:?} not found")]
    NotFound(String),
    /// `add` of a member already in the group (Go's `ErrMemberAlreadyExists`).
    #[error("uid {uid:?} is already in group {group:?}")]
    MemberExists {
        /// The group.
        group: String,
        /// The member.
        uid: String,
    },
    /// `remove` of a member not in the group (Go's `ErrMemberNotFound`).
    #[error("uid {uid:?} is not in group {group:?}")]
    MemberNotFound {
        /// The group.
        group: String,
        /// The member.
        uid: String,
    },
    /// `add` or `contains` with an empty uid (Go's `ErrEmptyUID`).
    #[error("empty uid")]
    EmptyUid,
    /// `renew_ttl` of a group created without a TTL (Go's
    /// `ErrMemoryTTLNotFound` and `ErrEtcdLeaseNotFound`).
    #[error("group {0:?} has no ttl")]
    NoTtl(String),
    /// `create_with_ttl` with a zero TTL.
    #[error("a group ttl must not be zero")]
    ZeroTtl,
    /// A group name or uid a service cannot store (for etcd: empty, or
    /// holding a `/`, which would reach into another group's keys).
    #[error("invalid group name or uid {0:?}: empty or with a '/'")]
    InvalidName(String),
    /// The session has no uid to be a member with.
    #[error("the session is not bound to a uid")]
    Unbound,
    /// [`Groups::add_session`] of a session whose close this server is not
    /// told of (a backend's view of a session of a frontend that does not
    /// report closes, e.g. a Go frontend): its member would never leave.
    /// Add its uid with [`Groups::add`] and remove it yourself instead.
    #[error(
        "add_session needs a session whose close this server learns of (its frontend does not report closes)"
    )]
    BackendSession,
    /// The service's storage failed or did not answer in time (etcd).
    #[error("group service: {0}")]
    Backend(String),
}

impl From<GroupError> for PitayaError {
    fn from(err: GroupError) -> Self {
        let code = match err {
            GroupError::NotFound(_) | GroupError::MemberNotFound { .. } => {
                crate::error::codes::NOT_FOUND
            }
            GroupError::BackendSession | GroupError::Backend(_) => crate::error::codes::INTERNAL,
            _ => crate::error::codes::BAD_REQUEST,
        };
        PitayaError::new(code, err.to_string())
    }
}

/// The boxed future returned by [`GroupService`] methods.
pub type GroupFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GroupError>> + Send + 'a>>;

/// A group service: named groups of uids, with Go Pitaya's operations and
/// errors (`GroupCreate`, `GroupAddMember`, ...).
///
/// The trait is object safe (methods return boxed futures): the app holds
/// an `Arc<dyn GroupService>`, which [`Groups`] wraps. Implementations:
/// [`MemoryGroups`] here, `EtcdGroups` in `pitaya-cluster`.
///
/// Every operation on a group that does not exist fails with
/// [`GroupError::NotFound`]; a group created with a TTL no longer exists
/// once the TTL has passed since its creation or last
/// [`renew_ttl`](Self::renew_ttl), and its members are gone with it.
pub trait GroupService: Send + Sync + 'static {
    /// Creates an empty group without TTL ([`GroupError::Exists`] if there
    /// is one).
    fn create<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()>;

    /// Creates an empty group that expires `ttl` after its creation or last
    /// [`renew_ttl`](Self::renew_ttl) ([`GroupError::Exists`] if there is
    /// one, [`GroupError::ZeroTtl`] for a zero `ttl`).
    fn create_with_ttl<'a>(&'a self, name: &'a str, ttl: Duration) -> GroupFuture<'a, ()>;

    /// Creates the group without TTL unless it exists (a convenience Go
    /// lacks: no error when it exists).
    fn get_or_create<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            match self.create(name).await {
                Err(GroupError::Exists(_)) => Ok(()),
                other => other,
            }
        })
    }

    /// The members' uids, sorted.
    fn members<'a>(&'a self, name: &'a str) -> GroupFuture<'a, Vec<String>>;

    /// Whether `uid` is a member ([`GroupError::EmptyUid`] for `""`).
    fn contains<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, bool>;

    /// Adds `uid` ([`GroupError::MemberExists`] if it is a member,
    /// [`GroupError::EmptyUid`] for `""`). In a group with a TTL the member
    /// expires with the group.
    fn add<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()>;

    /// Removes `uid` ([`GroupError::MemberNotFound`] if it is not a member).
    fn remove<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()>;

    /// Removes every member; the group stays.
    fn remove_all<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()>;

    /// Number of members.
    fn count<'a>(&'a self, name: &'a str) -> GroupFuture<'a, usize>;

    /// Restarts the TTL of a group created with one ([`GroupError::NoTtl`]
    /// for a group without).
    fn renew_ttl<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()>;

    /// Deletes the group and its members.
    fn delete<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()>;

    /// Stops the service's background work (such as a TTL sweep) once
    /// `shutdown` is cancelled; the groups keep working. The app calls it
    /// with its shutdown signal when it is built. The default does nothing.
    fn stop_with(&self, shutdown: &CancellationToken) {
        let _ = shutdown;
    }
}

/// Fails with [`GroupError::EmptyUid`] for an empty uid.
pub(crate) fn check_uid(uid: &str) -> Result<(), GroupError> {
    if uid.is_empty() {
        Err(GroupError::EmptyUid)
    } else {
        Ok(())
    }
}

/// The groups of an app: a cheap handle on its [`GroupService`]
/// ([`MemoryGroups`] unless the app was built with another, see
/// [`AppBuilder::groups`](crate::app::AppBuilder::groups)).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), pitaya_core::group::GroupError> {
/// use pitaya_core::group::Groups;
/// use pitaya_core::session::SessionHub;
/// use pitaya_core::{SerializerKind, codec::MessageCodec};
///
/// let hub = SessionHub::new(MessageCodec::default(), SerializerKind::Json, 16, true);
/// let groups = Groups::new();
/// let session = hub.create(None);
/// session.bind("ana").await.unwrap();
/// groups.get_or_create("lobby").await?;
/// // "ana" is a member until removed or until her session closes.
/// groups.add_session("lobby", &session).await?;
/// assert_eq!(groups.members("lobby").await?, ["ana"]);
/// assert!(groups.contains("lobby", "ana").await?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Groups {
    service: Arc<dyn GroupService>,
}

impl Default for Groups {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Groups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Groups").finish_non_exhaustive()
    }
}

impl From<Arc<dyn GroupService>> for Groups {
    fn from(service: Arc<dyn GroupService>) -> Self {
        Self { service }
    }
}

impl Groups {
    /// Groups in this process' memory: a new [`MemoryGroups`].
    pub fn new() -> Self {
        Self::with_service(MemoryGroups::new())
    }

    /// Groups kept by `service`.
    pub fn with_service(service: impl GroupService) -> Self {
        Self {
            service: Arc::new(service),
        }
    }

    /// The groups of an app: its service (memory by default), whose
    /// background work stops with the app.
    pub(crate) fn for_app(
        service: Option<Arc<dyn GroupService>>,
        shutdown: &CancellationToken,
    ) -> Self {
        let service = service.unwrap_or_else(|| Arc::new(MemoryGroups::new()));
        service.stop_with(shutdown);
        Self { service }
    }

    /// The service behind these groups.
    pub fn service(&self) -> &Arc<dyn GroupService> {
        &self.service
    }

    /// Creates an empty group; see [`GroupService::create`].
    pub async fn create(&self, name: &str) -> Result<(), GroupError> {
        self.service.create(name).await
    }

    /// Creates an empty group expiring `ttl` after its creation or last
    /// renewal; see [`GroupService::create_with_ttl`].
    pub async fn create_with_ttl(&self, name: &str, ttl: Duration) -> Result<(), GroupError> {
        self.service.create_with_ttl(name, ttl).await
    }

    /// Creates the group unless it exists; see
    /// [`GroupService::get_or_create`].
    pub async fn get_or_create(&self, name: &str) -> Result<(), GroupError> {
        self.service.get_or_create(name).await
    }

    /// The members' uids, sorted.
    pub async fn members(&self, name: &str) -> Result<Vec<String>, GroupError> {
        self.service.members(name).await
    }

    /// Whether `uid` is a member.
    pub async fn contains(&self, name: &str, uid: &str) -> Result<bool, GroupError> {
        self.service.contains(name, uid).await
    }

    /// Adds `uid`; it stays a member until removed (or the group expires
    /// or is deleted). For a session's uid that leaves when the session
    /// closes, see [`add_session`](Self::add_session).
    pub async fn add(&self, name: &str, uid: &str) -> Result<(), GroupError> {
        self.service.add(name, uid).await
    }

    /// Adds the session's uid, which leaves the group when the session
    /// closes.
    ///
    /// # Errors
    /// [`GroupError::Unbound`] for a session without uid;
    /// [`GroupError::BackendSession`] when this server cannot be told of
    /// the session's close (on a backend, a frontend known not to report
    /// closes), in which case the uid is not added; the errors of
    /// [`add`](Self::add).
    pub async fn add_session(&self, name: &str, session: &Session) -> Result<(), GroupError> {
        let uid = session.uid().ok_or(GroupError::Unbound)?.to_owned();
        self.service.add(name, &uid).await?;
        let leave = leave_on_close(self.service.clone(), name.to_owned(), uid.clone());
        if session.on_close(leave).is_err() {
            // The member could never leave: undo the add.
            if let Err(err) = self.service.remove(name, &uid).await {
                tracing::warn!(group = name, %uid, error = %err, "undoing a group add failed");
            }
            return Err(GroupError::BackendSession);
        }
        Ok(())
    }

    /// Removes `uid`.
    pub async fn remove(&self, name: &str, uid: &str) -> Result<(), GroupError> {
        self.service.remove(name, uid).await
    }

    /// Removes every member; the group stays.
    pub async fn remove_all(&self, name: &str) -> Result<(), GroupError> {
        self.service.remove_all(name).await
    }

    /// Number of members.
    pub async fn count(&self, name: &str) -> Result<usize, GroupError> {
        self.service.count(name).await
    }

    /// Restarts the TTL of a group created with one.
    pub async fn renew_ttl(&self, name: &str) -> Result<(), GroupError> {
        self.service.renew_ttl(name).await
    }

    /// Deletes the group and its members.
    pub async fn delete(&self, name: &str) -> Result<(), GroupError> {
        self.service.delete(name).await
    }
}

/// The close callback of [`Groups::add_session`]: `uid` leaves `group`.
///
/// Close callbacks are synchronous. The removal is polled once at once, so
/// a service that answers without waiting (the memory one) is done when
/// the session's close returns; otherwise it finishes in a task on the
/// runtime.
fn leave_on_close(
    service: Arc<dyn GroupService>,
    group: String,
    uid: String,
) -> impl FnOnce(&Session) + Send + 'static {
    let runtime = tokio::runtime::Handle::try_current().ok();
    move |_| {
        let mut removal: Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
            match service.remove(&group, &uid).await {
                // Removed, or already gone with its group.
                Ok(()) | Err(GroupError::NotFound(_) | GroupError::MemberNotFound { .. }) => {}
                Err(err) => {
                    tracing::warn!(%group, %uid, error = %err, "a closed session could not leave its group");
                }
            }
        });
        let Some(runtime) = tokio::runtime::Handle::try_current().ok().or(runtime) else {
            tracing::warn!("no tokio runtime: a closed session could not leave its group");
            return;
        };
        let _entered = runtime.enter();
        // A task polls it again (with a real waker) if it has to wait.
        if removal
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
        {
            runtime.spawn(removal);
        }
    }
}

#[cfg(test)]
mod tests;

//! [`Groups`] over [`MemoryGroups`]: every operation and error, TTLs on
//! the paused clock, members leaving with their session.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::codec::MessageCodec;
use crate::error::codes;
use crate::session::SessionHub;
use crate::{PitayaError, SerializerKind};

fn hub() -> Arc<SessionHub> {
    SessionHub::new(MessageCodec::default(), SerializerKind::Json, 16, true)
}

fn not_found(name: &str) -> GroupError {
    GroupError::NotFound(name.to_owned())
}

fn member_exists(group: &str, uid: &str) -> GroupError {
    GroupError::MemberExists {
        group: group.to_owned(),
        uid: uid.to_owned(),
    }
}

fn member_not_found(group: &str, uid: &str) -> GroupError {
    GroupError::MemberNotFound {
        group: group.to_owned(),
        uid: uid.to_owned(),
    }
}

#[tokio::test]
async fn create_and_get_or_create() {
    let groups = Groups::new();
    groups.create("a").await.unwrap();
    assert_eq!(
        groups.create("a").await,
        Err(GroupError::Exists("a".into()))
    );
    assert_eq!(
        groups.create_with_ttl("a", Duration::from_secs(5)).await,
        Err(GroupError::Exists("a".into()))
    );
    // get_or_create leaves an existing group as it is.
    groups.add("a", "ana").await.unwrap();
    groups.get_or_create("a").await.unwrap();
    assert_eq!(groups.members("a").await.unwrap(), ["ana"]);
    groups.get_or_create("b").await.unwrap();
    assert_eq!(groups.count("b").await, Ok(0));
}

#[tokio::test]
async fn add_members_contains_and_count() {
    let groups = Groups::new();
    groups.create("g").await.unwrap();
    for uid in ["carl", "ana", "bob"] {
        groups.add("g", uid).await.unwrap();
    }
    assert_eq!(groups.add("g", "ana").await, Err(member_exists("g", "ana")));
    assert_eq!(groups.add("g", "").await, Err(GroupError::EmptyUid));
    assert_eq!(groups.members("g").await.unwrap(), ["ana", "bob", "carl"]);
    assert_eq!(groups.count("g").await, Ok(3));
    assert_eq!(groups.contains("g", "bob").await, Ok(true));
    assert_eq!(groups.contains("g", "dan").await, Ok(false));
    assert_eq!(groups.contains("g", "").await, Err(GroupError::EmptyUid));
}

#[tokio::test]
async fn remove_remove_all_and_delete() {
    let groups = Groups::new();
    groups.create("g").await.unwrap();
    groups.add("g", "ana").await.unwrap();
    groups.add("g", "bob").await.unwrap();
    groups.remove("g", "ana").await.unwrap();
    assert_eq!(
        groups.remove("g", "ana").await,
        Err(member_not_found("g", "ana"))
    );
    assert_eq!(groups.members("g").await.unwrap(), ["bob"]);
    groups.remove_all("g").await.unwrap();
    assert_eq!(groups.count("g").await, Ok(0));
    // remove_all keeps the group.
    groups.add("g", "carl").await.unwrap();
    groups.delete("g").await.unwrap();
    assert_eq!(groups.delete("g").await, Err(not_found("g")));
    // A new group of the same name starts empty.
    groups.create("g").await.unwrap();
    assert_eq!(groups.members("g").await, Ok(Vec::new()));
}

#[tokio::test]
async fn every_operation_on_a_missing_group_is_not_found() {
    let groups = Groups::new();
    let missing = Err(not_found("nope"));
    assert_eq!(groups.members("nope").await.map(drop), missing);
    assert_eq!(groups.contains("nope", "ana").await.map(drop), missing);
    assert_eq!(groups.add("nope", "ana").await, missing);
    assert_eq!(groups.remove("nope", "ana").await, missing);
    assert_eq!(groups.remove_all("nope").await, missing);
    assert_eq!(groups.count("nope").await.map(drop), missing);
    assert_eq!(groups.renew_ttl("nope").await, missing);
    assert_eq!(groups.delete("nope").await, missing);
}

#[tokio::test]
async fn errors_map_to_pitaya_codes() {
    let code = |err: GroupError| PitayaError::from(err).code;
    assert_eq!(code(not_found("g")), codes::NOT_FOUND);
    assert_eq!(code(member_not_found("g", "a")), codes::NOT_FOUND);
    assert_eq!(code(GroupError::Exists("g".into())), codes::BAD_REQUEST);
    assert_eq!(code(member_exists("g", "a")), codes::BAD_REQUEST);
    assert_eq!(code(GroupError::EmptyUid), codes::BAD_REQUEST);
    assert_eq!(code(GroupError::NoTtl("g".into())), codes::BAD_REQUEST);
    assert_eq!(code(GroupError::ZeroTtl), codes::BAD_REQUEST);
    assert_eq!(code(GroupError::Unbound), codes::BAD_REQUEST);
    assert_eq!(code(GroupError::BackendSession), codes::INTERNAL);
    assert_eq!(
        code(GroupError::Backend("etcd txn: timed out".into())),
        codes::INTERNAL
    );
    assert_eq!(
        PitayaError::from(not_found("lobby")).msg,
        r#"group "lobby" not found"#
    );
}

#[tokio::test(start_paused = true)]
async fn a_ttl_group_expires_with_its_members() {
    let groups = Groups::new();
    groups
        .create_with_ttl("match", Duration::from_secs(10))
        .await
        .unwrap();
    groups.add("match", "ana").await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(groups.members("match").await.unwrap(), ["ana"]);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(groups.members("match").await, Err(not_found("match")));
    assert_eq!(groups.add("match", "ana").await, Err(not_found("match")));
    // The name is free again, and the new group has no members.
    groups.create("match").await.unwrap();
    assert_eq!(groups.count("match").await, Ok(0));
    assert_eq!(
        groups.renew_ttl("match").await,
        Err(GroupError::NoTtl("match".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn renewing_restarts_the_ttl() {
    let groups = Groups::new();
    groups
        .create_with_ttl("match", Duration::from_secs(10))
        .await
        .unwrap();
    groups.add("match", "ana").await.unwrap();
    for _ in 0..3 {
        tokio::time::advance(Duration::from_secs(8)).await;
        groups.renew_ttl("match").await.unwrap();
    }
    // 24 s after its creation, 8 s after the last renewal.
    tokio::time::advance(Duration::from_secs(8)).await;
    assert_eq!(groups.contains("match", "ana").await, Ok(true));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(groups.renew_ttl("match").await, Err(not_found("match")));
    assert_eq!(groups.delete("match").await, Err(not_found("match")));
}

#[tokio::test]
async fn a_zero_ttl_is_refused() {
    let groups = Groups::new();
    assert_eq!(
        groups.create_with_ttl("g", Duration::ZERO).await,
        Err(GroupError::ZeroTtl)
    );
    assert_eq!(groups.members("g").await, Err(not_found("g")));
}

#[tokio::test]
async fn a_session_leaves_its_groups_when_it_closes() {
    let hub = hub();
    let groups = Groups::new();
    groups.create("lobby").await.unwrap();
    groups.create("room").await.unwrap();
    let ana = hub.create(None);
    let bob = hub.create(None);
    ana.bind("ana").await.unwrap();
    bob.bind("bob").await.unwrap();
    groups.add_session("lobby", &ana).await.unwrap();
    groups.add_session("room", &ana).await.unwrap();
    groups.add_session("lobby", &bob).await.unwrap();
    assert_eq!(
        groups.add_session("lobby", &bob).await,
        Err(member_exists("lobby", "bob"))
    );
    assert_eq!(groups.members("lobby").await.unwrap(), ["ana", "bob"]);

    ana.mark_closed();
    // The memory service answers at once: gone when the close returns.
    assert_eq!(groups.members("lobby").await.unwrap(), ["bob"]);
    assert_eq!(groups.count("room").await, Ok(0));
}

#[tokio::test]
async fn a_member_removed_or_deleted_before_the_close_is_no_trouble() {
    let hub = hub();
    let groups = Groups::new();
    groups.create("lobby").await.unwrap();
    groups.create("gone").await.unwrap();
    let ana = hub.create(None);
    ana.bind("ana").await.unwrap();
    groups.add_session("lobby", &ana).await.unwrap();
    groups.add_session("gone", &ana).await.unwrap();
    groups.remove("lobby", "ana").await.unwrap();
    groups.delete("gone").await.unwrap();
    // Added again by uid only: that membership is not the session's.
    groups.add("lobby", "bob").await.unwrap();
    ana.mark_closed();
    assert_eq!(groups.members("lobby").await.unwrap(), ["bob"]);
    assert_eq!(groups.members("gone").await, Err(not_found("gone")));
}

#[tokio::test]
async fn add_session_needs_a_bound_session_and_a_group() {
    let hub = hub();
    let groups = Groups::new();
    groups.create("lobby").await.unwrap();
    let anonymous = hub.create(None);
    assert_eq!(
        groups.add_session("lobby", &anonymous).await,
        Err(GroupError::Unbound)
    );
    let ana = hub.create(None);
    ana.bind("ana").await.unwrap();
    assert_eq!(
        groups.add_session("nope", &ana).await,
        Err(not_found("nope"))
    );
    // A session already closed leaves at once.
    ana.mark_closed();
    groups.add_session("lobby", &ana).await.unwrap();
    assert_eq!(groups.count("lobby").await, Ok(0));
}

/// A service that answers later: the removal at close runs in a task.
struct Slow(MemoryGroups);

impl GroupService for Slow {
    fn create<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        self.0.create(name)
    }
    fn create_with_ttl<'a>(&'a self, name: &'a str, ttl: Duration) -> GroupFuture<'a, ()> {
        self.0.create_with_ttl(name, ttl)
    }
    fn members<'a>(&'a self, name: &'a str) -> GroupFuture<'a, Vec<String>> {
        self.0.members(name)
    }
    fn contains<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, bool> {
        self.0.contains(name, uid)
    }
    fn add<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()> {
        self.0.add(name, uid)
    }
    fn remove<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            self.0.remove(name, uid).await
        })
    }
    fn remove_all<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        self.0.remove_all(name)
    }
    fn count<'a>(&'a self, name: &'a str) -> GroupFuture<'a, usize> {
        self.0.count(name)
    }
    fn renew_ttl<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        self.0.renew_ttl(name)
    }
    fn delete<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        self.0.delete(name)
    }
}

#[tokio::test(start_paused = true)]
async fn a_service_that_waits_finishes_the_leave_in_a_task() {
    let memory = MemoryGroups::new();
    let groups = Groups::with_service(Slow(memory.clone()));
    // The default get_or_create of the trait.
    groups.get_or_create("lobby").await.unwrap();
    groups.get_or_create("lobby").await.unwrap();
    let hub = hub();
    let ana = hub.create(None);
    ana.bind("ana").await.unwrap();
    groups.add_session("lobby", &ana).await.unwrap();
    ana.mark_closed();
    assert_eq!(memory.members("lobby").await.unwrap(), ["ana"]);
    tokio::time::sleep(Duration::from_millis(10)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(memory.members("lobby").await, Ok(Vec::new()));
}

#[tokio::test]
async fn clones_share_the_groups() {
    let groups = Groups::new();
    let clone = groups.clone();
    groups.create("g").await.unwrap();
    clone.add("g", "ana").await.unwrap();
    assert_eq!(groups.members("g").await.unwrap(), ["ana"]);
    let service = Groups::from(groups.service().clone());
    assert_eq!(service.count("g").await, Ok(1));
    assert!(format!("{groups:?}").starts_with("Groups"));
}

#[tokio::test(start_paused = true)]
async fn the_apps_groups_stop_their_sweep_with_the_app() {
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = alive();
    let shutdown = CancellationToken::new();
    let groups = Groups::for_app(None, &shutdown);
    groups
        .create_with_ttl("g", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(alive(), before + 1, "the sweep runs");
    shutdown.cancel();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(alive(), before, "the sweep ended with the app");
    // The groups still work, TTLs included.
    assert_eq!(groups.count("g").await, Ok(0));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(groups.count("g").await, Err(not_found("g")));
}

//! Groups in etcd, as Go Pitaya's `EtcdGroupService`: every server of a
//! cluster, Go or Rust, sees the same groups.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, DeleteOptions, GetOptions, GetResponse, KeyValue, PutOptions, Txn,
    TxnOp, TxnOpResponse, TxnResponse,
};
use pitaya_core::group::{GroupError, GroupFuture, GroupService};

use crate::etcd::{EtcdConfig, connect_client};

/// How many times `add` reads the group again when it was deleted and
/// created anew between its read and its transaction.
const ADD_ATTEMPTS: usize = 3;

/// Settings of [`EtcdGroups`], with Go Pitaya's defaults
/// (`pitaya.groups.etcd.*`).
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
#[derive(Clone)]
#[non_exhaustive]
pub struct EtcdGroupsConfig {
    /// etcd endpoints (`endpoints`, `localhost:2379`); `http://` is assumed
    /// without a scheme.
    pub endpoints: Vec<String>,
    /// User name; authentication is used when user and password are both
    /// non-empty (Go's group service has no authentication).
    pub user: String,
    /// Password.
    pub pass: String,
    /// Connection timeout (`dialtimeout`, 5 s).
    pub dial_timeout: Duration,
    /// Key prefix shared by every server of the application (`prefix`,
    /// `pitaya/`): groups are at `<prefix>groups/<name>`.
    pub prefix: String,
    /// Bound of each etcd call (`transactiontimeout`, 5 s); past it the
    /// operation fails with [`GroupError::Backend`].
    pub transaction_timeout: Duration,
}

impl Default for EtcdGroupsConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["localhost:2379".to_owned()],
            user: String::new(),
            pass: String::new(),
            dial_timeout: Duration::from_secs(5),
            prefix: "pitaya/".to_owned(),
            transaction_timeout: Duration::from_secs(5),
        }
    }
}

impl EtcdGroupsConfig {
    /// The defaults with other endpoints.
    pub fn new<I, S>(endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// The etcd of a service discovery: its endpoints, credentials, dial
/// timeout and prefix, with the default transaction timeout.
impl From<&EtcdConfig> for EtcdGroupsConfig {
    fn from(config: &EtcdConfig) -> Self {
        Self {
            endpoints: config.endpoints.clone(),
            user: config.user.clone(),
            pass: config.pass.clone(),
            dial_timeout: config.dial_timeout,
            prefix: config.prefix.clone(),
            ..Self::default()
        }
    }
}

impl fmt::Debug for EtcdGroupsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdGroupsConfig")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user)
            .field("pass", &if self.pass.is_empty() { "" } else { "***" })
            .field("dial_timeout", &self.dial_timeout)
            .field("prefix", &self.prefix)
            .field("transaction_timeout", &self.transaction_timeout)
            .finish()
    }
}

/// A [`GroupService`] on etcd, on Go Pitaya's key layout, so Go and Rust
/// servers of a cluster share their groups:
///
/// - a group is the key `<prefix>groups/<name>` (empty value),
/// - a member is the key `<prefix>groups/<name>/uids/<uid>` (empty value),
/// - a group created with a TTL holds an etcd lease of that TTL (rounded up
///   to whole seconds), attached to the group key and to every member key:
///   when the lease expires etcd deletes them all;
///   [`renew_ttl`](GroupService::renew_ttl) refreshes the lease once (it
///   is not kept alive in the background),
/// - every operation is an etcd transaction guarded by `CreateRevision`
///   comparisons, as in Go (adding a member: the group exists and the
///   member does not), each call bounded by
///   [`transaction_timeout`](EtcdGroupsConfig::transaction_timeout).
///
/// [`connect`](Self::connect) connects and checks that etcd answers; the
/// client reconnects by itself afterwards. Clones share the connection.
/// There is no background task.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use pitaya_cluster::{EtcdGroups, EtcdGroupsConfig};
/// use pitaya_core::app::App;
///
/// let groups = EtcdGroups::connect(EtcdGroupsConfig::new(["http://etcd:2379"])).await?;
/// let app = App::builder("room").groups(groups).build()?;
/// app.handle().groups().get_or_create("lobby").await?;
/// app.handle().groups().add("lobby", "ana").await?;
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
#[derive(Clone)]
pub struct EtcdGroups {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: EtcdGroupsConfig,
}

impl fmt::Debug for EtcdGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdGroups")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl EtcdGroups {
    /// Connects to etcd and checks that it answers within the dial timeout.
    ///
    /// # Errors
    /// [`GroupError::Backend`] when etcd cannot be reached.
    pub async fn connect(config: EtcdGroupsConfig) -> Result<Self, GroupError> {
        let client = connect_client(
            &config.endpoints,
            &config.user,
            &config.pass,
            config.dial_timeout,
        )
        .await
        .map_err(|reason| GroupError::Backend(format!("etcd connect: {reason}")))?;
        // The client connects lazily: one small read tells whether etcd is there.
        let probe = format!("{}groups", config.prefix);
        let mut kv = client.kv_client();
        let read = kv.get(probe, Some(GetOptions::new().with_count_only()));
        match tokio::time::timeout(config.dial_timeout, read).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(GroupError::Backend(format!("etcd connect: {err}"))),
            Err(_) => return Err(GroupError::Backend("etcd connect: timed out".to_owned())),
        }
        Ok(Self {
            inner: Arc::new(Inner { client, config }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &EtcdGroupsConfig {
        &self.inner.config
    }
}

/// Group names and uids become etcd key segments (`groups/<name>/uids/<uid>`,
/// as Go writes them): a `/` in either would reach into another group's
/// keys (`"a/uids/x"` is member `x` of group `a`), so it is refused.
fn check_keys(name: &str, uid: Option<&str>) -> Result<(), GroupError> {
    if name.is_empty() || name.contains('/') {
        return Err(GroupError::InvalidName(name.to_owned()));
    }
    if let Some(uid) = uid
        && uid.contains('/')
    {
        return Err(GroupError::InvalidName(uid.to_owned()));
    }
    Ok(())
}

fn check_uid(uid: &str) -> Result<(), GroupError> {
    if uid.is_empty() {
        Err(GroupError::EmptyUid)
    } else {
        Ok(())
    }
}

fn not_found(name: &str) -> GroupError {
    GroupError::NotFound(name.to_owned())
}

/// The range answer of the transaction's operation `index`.
fn range_at(response: &TxnResponse, index: usize) -> Result<GetResponse, GroupError> {
    match response.op_responses().into_iter().nth(index) {
        Some(TxnOpResponse::Get(get)) => Ok(get),
        _ => Err(GroupError::Backend(
            "etcd txn: answer without the expected range".to_owned(),
        )),
    }
}

fn count_of(get: &GetResponse) -> usize {
    usize::try_from(get.count()).unwrap_or(0)
}

/// A whole number of seconds, at least one, at least `ttl`.
fn lease_seconds(ttl: Duration) -> i64 {
    let seconds = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0));
    i64::try_from(seconds.max(1)).unwrap_or(i64::MAX)
}

fn exists(key: &str) -> Compare {
    Compare::create_revision(key, CompareOp::Greater, 0)
}

fn absent(key: &str) -> Compare {
    Compare::create_revision(key, CompareOp::Equal, 0)
}

fn count_only() -> Option<GetOptions> {
    Some(GetOptions::new().with_count_only())
}

impl Inner {
    fn group_key(&self, name: &str) -> String {
        format!("{}groups/{name}", self.config.prefix)
    }

    fn members_prefix(&self, name: &str) -> String {
        format!("{}groups/{name}/uids/", self.config.prefix)
    }

    fn member_key(&self, name: &str, uid: &str) -> String {
        format!("{}{uid}", self.members_prefix(name))
    }

    /// Runs one etcd call bounded by the transaction timeout.
    async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, GroupError> {
        let timeout = self.config.transaction_timeout;
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(GroupError::Backend(format!("etcd {what}: {err}"))),
            Err(_) => Err(GroupError::Backend(format!(
                "etcd {what}: no answer within {timeout:?}"
            ))),
        }
    }

    async fn txn(&self, what: &str, txn: Txn) -> Result<TxnResponse, GroupError> {
        let mut kv = self.client.kv_client();
        self.call(what, kv.txn(txn)).await
    }

    /// The group's key-value ([`GroupError::NotFound`] without).
    async fn group(&self, name: &str) -> Result<KeyValue, GroupError> {
        let mut kv = self.client.kv_client();
        let response = self
            .call("get group", kv.get(self.group_key(name), None))
            .await?;
        response
            .kvs()
            .first()
            .cloned()
            .ok_or_else(|| not_found(name))
    }

    async fn create(&self, name: &str, lease: Option<i64>) -> Result<(), GroupError> {
        let key = self.group_key(name);
        let options = lease.map(|lease| PutOptions::new().with_lease(lease));
        let txn = Txn::new()
            .when([absent(&key)])
            .and_then([TxnOp::put(key.as_str(), "", options)]);
        if self.txn("create group", txn).await?.succeeded() {
            Ok(())
        } else {
            Err(GroupError::Exists(name.to_owned()))
        }
    }

    async fn create_with_ttl(&self, name: &str, ttl: Duration) -> Result<(), GroupError> {
        if ttl.is_zero() {
            return Err(GroupError::ZeroTtl);
        }
        let mut leases = self.client.lease_client();
        let lease = self
            .call("grant lease", leases.grant(lease_seconds(ttl), None))
            .await?
            .id();
        let created = self.create(name, Some(lease)).await;
        if created.is_err() {
            // Nothing holds the lease: do not leave it to expire.
            if let Err(err) = self.call("revoke lease", leases.revoke(lease)).await {
                tracing::debug!(group = name, error = %err, "revoking an unused group lease");
            }
        }
        created
    }

    async fn members(&self, name: &str) -> Result<Vec<String>, GroupError> {
        let prefix = self.members_prefix(name);
        let txn = Txn::new()
            .when([exists(&self.group_key(name))])
            .and_then([TxnOp::get(
                prefix.as_str(),
                Some(GetOptions::new().with_prefix().with_keys_only()),
            )]);
        let response = self.txn("list members", txn).await?;
        if !response.succeeded() {
            return Err(not_found(name));
        }
        let mut uids: Vec<String> = range_at(&response, 0)?
            .kvs()
            .iter()
            .filter_map(|kv| {
                let uid = kv.key().strip_prefix(prefix.as_bytes())?;
                match std::str::from_utf8(uid) {
                    Ok("") => None,
                    Ok(uid) => Some(uid.to_owned()),
                    Err(_) => {
                        tracing::warn!(group = name, "a member key that is not UTF-8 is skipped");
                        None
                    }
                }
            })
            .collect();
        uids.sort();
        Ok(uids)
    }

    async fn contains(&self, name: &str, uid: &str) -> Result<bool, GroupError> {
        check_uid(uid)?;
        let txn = Txn::new()
            .when([exists(&self.group_key(name))])
            .and_then([TxnOp::get(self.member_key(name, uid), count_only())]);
        let response = self.txn("find member", txn).await?;
        if !response.succeeded() {
            return Err(not_found(name));
        }
        Ok(count_of(&range_at(&response, 0)?) > 0)
    }

    async fn add(&self, name: &str, uid: &str) -> Result<(), GroupError> {
        check_uid(uid)?;
        let group_key = self.group_key(name);
        let member_key = self.member_key(name, uid);
        for _ in 0..ADD_ATTEMPTS {
            let group = self.group(name).await?;
            // The member shares the group's lease: they expire together.
            let options = (group.lease() != 0).then(|| PutOptions::new().with_lease(group.lease()));
            let txn = Txn::new()
                .when([
                    Compare::create_revision(
                        group_key.as_str(),
                        CompareOp::Equal,
                        group.create_revision(),
                    ),
                    absent(&member_key),
                ])
                .and_then([TxnOp::put(member_key.as_str(), "", options)])
                .or_else([TxnOp::get(member_key.as_str(), count_only())]);
            let response = self.txn("add member", txn).await?;
            if response.succeeded() {
                return Ok(());
            }
            if count_of(&range_at(&response, 0)?) > 0 {
                return Err(GroupError::MemberExists {
                    group: name.to_owned(),
                    uid: uid.to_owned(),
                });
            }
            // The group was deleted, or deleted and created again, since it
            // was read: read it again.
        }
        Err(GroupError::Backend(format!(
            "group {name:?} kept changing while {uid:?} was added"
        )))
    }

    async fn remove(&self, name: &str, uid: &str) -> Result<(), GroupError> {
        let member_key = self.member_key(name, uid);
        let txn = Txn::new()
            .when([exists(&member_key)])
            .and_then([TxnOp::delete(member_key.as_str(), None)])
            .or_else([TxnOp::get(self.group_key(name), count_only())]);
        let response = self.txn("remove member", txn).await?;
        if response.succeeded() {
            Ok(())
        } else if count_of(&range_at(&response, 0)?) == 0 {
            Err(not_found(name))
        } else {
            Err(GroupError::MemberNotFound {
                group: name.to_owned(),
                uid: uid.to_owned(),
            })
        }
    }

    async fn remove_all(&self, name: &str) -> Result<(), GroupError> {
        let txn = Txn::new()
            .when([exists(&self.group_key(name))])
            .and_then([TxnOp::delete(
                self.members_prefix(name),
                Some(DeleteOptions::new().with_prefix()),
            )]);
        if self.txn("remove members", txn).await?.succeeded() {
            Ok(())
        } else {
            Err(not_found(name))
        }
    }

    async fn count(&self, name: &str) -> Result<usize, GroupError> {
        let txn = Txn::new()
            .when([exists(&self.group_key(name))])
            .and_then([TxnOp::get(
                self.members_prefix(name),
                Some(GetOptions::new().with_prefix().with_count_only()),
            )]);
        let response = self.txn("count members", txn).await?;
        if !response.succeeded() {
            return Err(not_found(name));
        }
        Ok(count_of(&range_at(&response, 0)?))
    }

    async fn renew_ttl(&self, name: &str) -> Result<(), GroupError> {
        let lease = self.group(name).await?.lease();
        if lease == 0 {
            return Err(GroupError::NoTtl(name.to_owned()));
        }
        let mut leases = self.client.lease_client();
        let timeout = self.config.transaction_timeout;
        // One keep-alive round trip; the stream closes when dropped.
        match tokio::time::timeout(timeout, leases.keep_alive(lease)).await {
            Ok(Ok(_)) => Ok(()),
            // etcd answers a TTL of 0: the lease (and the group) just expired.
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(_))) => Err(not_found(name)),
            Ok(Err(err)) => Err(GroupError::Backend(format!("etcd renew lease: {err}"))),
            Err(_) => Err(GroupError::Backend(format!(
                "etcd renew lease: no answer within {timeout:?}"
            ))),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), GroupError> {
        let group_key = self.group_key(name);
        let txn = Txn::new().when([exists(&group_key)]).and_then([
            TxnOp::delete(
                self.members_prefix(name),
                Some(DeleteOptions::new().with_prefix()),
            ),
            TxnOp::delete(group_key.as_str(), None),
        ]);
        if self.txn("delete group", txn).await?.succeeded() {
            Ok(())
        } else {
            Err(not_found(name))
        }
    }
}

impl GroupService for EtcdGroups {
    fn create<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            check_keys(name, None)?;
            self.inner.create(name, None).await
        })
    }

    fn create_with_ttl<'a>(&'a self, name: &'a str, ttl: Duration) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            check_keys(name, None)?;
            self.inner.create_with_ttl(name, ttl).await
        })
    }

    fn members<'a>(&'a self, name: &'a str) -> GroupFuture<'a, Vec<String>> {
        Box::pin(async move {
            check_keys(name, None)?;
            self.inner.members(name).await
        })
    }

    fn contains<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, bool> {
        Box::pin(async move {
            check_keys(name, Some(uid))?;
            self.inner.contains(name, uid).await
        })
    }

    fn add<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            check_keys(name, Some(uid))?;
            self.inner.add(name, uid).await
        })
    }

    fn remove<'a>(&'a self, name: &'a str, uid: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            check_keys(name, Some(uid))?;
            self.inner.remove(name, uid).await
        })
    }

    fn remove_all<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            check_keys(name, None)?;
            self.inner.remove_all(name).await
        })
    }

    fn count<'a>(&'a self, name: &'a str) -> GroupFuture<'a, usize> {
        Box::pin(async move {
            check_keys(name, None)?;
            self.inner.count(name).await
        })
    }

    fn renew_ttl<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            check_keys(name, None)?;
            self.inner.renew_ttl(name).await
        })
    }

    fn delete<'a>(&'a self, name: &'a str) -> GroupFuture<'a, ()> {
        Box::pin(async move {
            check_keys(name, None)?;
            self.inner.delete(name).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_pitayas() {
        let config = EtcdGroupsConfig::default();
        assert_eq!(config.endpoints, ["localhost:2379"]);
        assert_eq!(config.prefix, "pitaya/");
        assert_eq!(config.dial_timeout, Duration::from_secs(5));
        assert_eq!(config.transaction_timeout, Duration::from_secs(5));
        assert_eq!(EtcdGroupsConfig::new(["a:1"]).endpoints, ["a:1"]);
    }

    #[test]
    fn a_discovery_config_gives_its_etcd() {
        let mut discovery = EtcdConfig::new(["http://etcd:2379"]);
        discovery.prefix = "game/".into();
        discovery.user = "u".into();
        discovery.pass = "secret".into();
        discovery.dial_timeout = Duration::from_secs(2);
        let config = EtcdGroupsConfig::from(&discovery);
        assert_eq!(config.endpoints, ["http://etcd:2379"]);
        assert_eq!(config.prefix, "game/");
        assert_eq!(
            (config.user.as_str(), config.pass.as_str()),
            ("u", "secret")
        );
        assert_eq!(config.dial_timeout, Duration::from_secs(2));
        assert_eq!(config.transaction_timeout, Duration::from_secs(5));
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn leases_are_whole_seconds_of_at_least_the_ttl() {
        assert_eq!(lease_seconds(Duration::from_millis(1)), 1);
        assert_eq!(lease_seconds(Duration::from_secs(2)), 2);
        assert_eq!(lease_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(lease_seconds(Duration::MAX), i64::MAX);
    }

    #[tokio::test]
    async fn an_unreachable_etcd_is_a_backend_error() {
        let mut config = EtcdGroupsConfig::new(["http://127.0.0.1:1"]);
        config.dial_timeout = Duration::from_millis(300);
        let err = EtcdGroups::connect(config).await.unwrap_err();
        assert!(
            matches!(&err, GroupError::Backend(reason) if reason.starts_with("etcd connect")),
            "{err}"
        );
    }
}

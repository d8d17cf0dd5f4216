//! A `room` backend in its own process, for the cluster suites that kill,
//! SIGTERM or restart a server (see `pitaya_tests::node`). Configured by
//! `NODE_ETCD`, `NODE_NATS`, `NODE_PREFIX` (etcd key prefix), `NODE_ID`
//! and `NODE_LEASE_TTL_MS`; logs by `RUST_LOG`. Runs until SIGINT or
//! SIGTERM, then shuts down gracefully.

use std::time::Duration;

use pitaya::app::App;
use pitaya::cluster::{Cluster, NatsConfig};
use pitaya_tests::cluster::Plane;
use pitaya_tests::room::Room;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn var(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let id = var("NODE_ID")?;
    let mut etcd = Plane::etcd_config(&var("NODE_ETCD")?, &var("NODE_PREFIX")?);
    etcd.heartbeat_ttl = Duration::from_millis(var("NODE_LEASE_TTL_MS")?.parse()?);
    App::builder("room")
        .register(Room::new(&id))
        .cluster(Cluster::etcd_nats(etcd, NatsConfig::new(var("NODE_NATS")?)))
        .server_id(id)
        .build()?
        .run()
        .await?;
    Ok(())
}

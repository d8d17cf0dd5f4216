//! Acceptor wrappers inside a running app: the rate limiter drops what is
//! over the limit and counts it, and the connection keeps working.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use pitaya::prelude::*;
use pitaya_acceptors::{AcceptorExt, TcpAcceptor};
use pitaya_client::Client;
use serde_json::{Value, json};

struct Echo;

#[component(name = "echo")]
impl Echo {
    #[handler]
    async fn echo(&self, body: Value) -> Result<Value, PitayaError> {
        Ok(body)
    }
}

#[tokio::test]
async fn rate_limited_acceptor_drops_and_counts_excess_packets() {
    // 5 packets per hour per connection: the handshake and its ack use 2.
    let acceptor = TcpAcceptor::bind("127.0.0.1:0")
        .await
        .unwrap()
        .rate_limited(5, Duration::from_secs(3600));
    let dropped = acceptor.dropped();
    let url = pitaya::acceptor::Acceptor::url(&acceptor);
    let app = App::builder("game")
        .acceptor(acceptor)
        .register(Echo)
        .build()
        .unwrap();
    let handle = app.handle();
    let server = tokio::spawn(app.run_until(std::future::pending()));

    let (client, _events) = Client::builder()
        .request_timeout(Duration::from_millis(500))
        .connect(url.as_str())
        .await
        .unwrap();
    let mut answered = 0;
    let mut timed_out = 0;
    for index in 0..6 {
        match client
            .request::<_, Value>("game.echo.echo", &json!(index))
            .await
        {
            Ok(reply) => {
                assert_eq!(reply, json!(index));
                answered += 1;
            }
            Err(err) => {
                assert_eq!(err.code(), codes::CLIENT_TIMEOUT, "{err}");
                timed_out += 1;
            }
        }
    }
    assert_eq!(answered, 3, "handshake + ack + 3 requests fit in 5 packets");
    assert_eq!(timed_out, 3, "the rest were dropped, not answered");
    assert_eq!(dropped.load(Ordering::SeqCst), 3);

    // Another connection has its own budget.
    let (other, _other_events) = Client::connect(url.as_str()).await.unwrap();
    let reply: Value = other
        .request("game.echo.echo", &json!("fresh"))
        .await
        .unwrap();
    assert_eq!(reply, json!("fresh"));

    handle.shutdown();
    server.await.unwrap().unwrap();
}

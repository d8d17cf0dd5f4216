//! Dispatch of one request without I/O: decode the message, find the route,
//! run the generated glue (decode the JSON payload, call the handler,
//! encode the reply) and encode the response packet. This is what the
//! agent does per request between a read and a write.
#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use pitaya::codec::{Message, MessageCodec};
use pitaya::dispatch::{RouteTable, parse_route};
use pitaya::handler::Request;
use pitaya::pipeline::Pipelines;
use pitaya::prelude::*;
use pitaya::session::SessionHub;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Join {
    name: String,
    room: String,
    level: u32,
}

#[derive(Serialize, Deserialize)]
struct Joined {
    name: String,
    members: u32,
}

struct Room;

#[component(name = "room")]
impl Room {
    #[handler]
    async fn join(&self, session: &Session, request: Join) -> Result<Joined, PitayaError> {
        black_box(session.id());
        Ok(Joined {
            name: request.name,
            members: request.level + 1,
        })
    }

    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        body
    }
}

fn bench_dispatch(c: &mut Criterion) {
    let mut routes = RouteTable::default();
    routes.register(Room).unwrap();
    let pipelines = Pipelines::default();
    let codec = MessageCodec::default();
    let hub = SessionHub::new(codec.clone(), SerializerKind::Json, 100, true);
    let session = hub.create(None);
    let body = br#"{"name":"player-1234","room":"lobby","level":17}"#;

    let mut group = c.benchmark_group("dispatch");
    for (name, route) in [
        ("json_handler", "game.room.join"),
        ("raw_handler", "game.room.raw"),
    ] {
        let wire = codec
            .encode_to_bytes(&Message::request(42, route, &body[..]))
            .unwrap();
        group.bench_function(name, |b| {
            let mut out = BytesMut::with_capacity(256);
            b.iter(|| {
                let message = codec.decode(black_box(wire.clone())).unwrap();
                let parts = parse_route(&message.route).unwrap();
                let handler = routes.handler(parts.local).unwrap();
                let request = Request::from_client(
                    session.clone(),
                    Context::new(message.route),
                    message.body,
                );
                let reply = futures::executor::block_on(handler.call(&pipelines, request)).unwrap();
                out.clear();
                codec
                    .encode_packet(&Message::response(message.id, reply.unwrap()), &mut out)
                    .unwrap();
                black_box(&out);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_dispatch);
criterion_main!(benches);

//! Encode/decode costs of a typical request and push.
#![allow(missing_docs, clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pitaya_protocol::codec::{Message, MessageCodec, Packet, PacketCodec};
use std::hint::black_box;

const REQUEST_BODY: &[u8] = br#"{"name":"player-1234","room":"lobby","level":17}"#;
const PUSH_BODY: &[u8] =
    br#"{"from":"player-1234","text":"hello everyone, good luck and have fun"}"#;

fn bench_request(c: &mut Criterion) {
    let codec = MessageCodec::default();
    let request = Message::request(4242, "room.room.join", Bytes::from_static(REQUEST_BODY));
    let mut wire = BytesMut::new();
    codec.encode_packet(&request, &mut wire).unwrap();
    let wire = wire.freeze();

    let mut group = c.benchmark_group("request");
    group.throughput(Throughput::Bytes(wire.len() as u64));
    group.bench_function("encode_packet", |b| {
        let mut dst = BytesMut::with_capacity(256);
        b.iter(|| {
            dst.clear();
            codec.encode_packet(black_box(&request), &mut dst).unwrap();
        });
    });
    group.bench_function("decode_packet_and_message", |b| {
        let mut packets = PacketCodec::new();
        b.iter(|| {
            let mut src = BytesMut::from(&black_box(&wire)[..]);
            let packet = packets.decode(&mut src).unwrap().unwrap();
            black_box(codec.decode(packet.body).unwrap());
        });
    });
    group.finish();
}

/// A 300-byte JSON state push: above the compression threshold.
fn large_push_body() -> Vec<u8> {
    let players: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"id":"player-{i:04}","x":{},"y":{},"hp":100}}"#,
                i * 13,
                i * 7
            )
        })
        .collect();
    format!(r#"{{"tick":1234,"players":[{}]}}"#, players.join(",")).into_bytes()
}

fn bench_push(c: &mut Criterion) {
    let plain = MessageCodec::default().with_compression(false);
    let compressing = MessageCodec::default();
    let push = Message::push("onMessage", Bytes::from_static(PUSH_BODY));
    let mut group = c.benchmark_group("push");
    group.bench_function("encode_packet_uncompressed", |b| {
        let mut dst = BytesMut::with_capacity(256);
        b.iter(|| {
            dst.clear();
            plain.encode_packet(black_box(&push), &mut dst).unwrap();
        });
    });
    group.bench_function("encode_packet_compression_on", |b| {
        let mut dst = BytesMut::with_capacity(256);
        b.iter(|| {
            dst.clear();
            compressing
                .encode_packet(black_box(&push), &mut dst)
                .unwrap();
        });
    });
    let large = Message::push("onState", Bytes::from(large_push_body()));
    group.bench_function("encode_packet_300b_compressed", |b| {
        let mut dst = BytesMut::with_capacity(512);
        b.iter(|| {
            dst.clear();
            compressing
                .encode_packet(black_box(&large), &mut dst)
                .unwrap();
        });
    });
    let wire = Packet::new(
        pitaya_protocol::codec::PacketType::Data,
        plain.encode_to_bytes(&push).unwrap(),
    )
    .to_bytes()
    .unwrap();
    group.bench_function("decode_packet_and_message", |b| {
        b.iter(|| {
            let packet = Packet::decode_exact(black_box(wire.clone()), 1 << 20).unwrap();
            black_box(plain.decode(packet.body).unwrap());
        });
    });
    group.finish();
}

criterion_group!(benches, bench_request, bench_push);
criterion_main!(benches);

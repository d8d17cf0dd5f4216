//! What a peer server sends over NATS (and etcd): Go Pitaya's protobuf
//! envelopes in `pitaya_core::protos`, the JSON of a `ServerInfo`, and the
//! parts of a received `Request` a backend interprets before dispatch
//! (metadata JSON with `reqTimeout`, the route, the session data JSON).
//!
//! Input: the whole input, decoded as every envelope type.
//!
//! Invariants:
//! - no decoder panics;
//! - a decoded envelope re-encodes to `encoded_len()` bytes that decode to
//!   an equal value and re-encode to the same bytes (prost drops unknown
//!   fields, so the first encoding is canonical, not the input);
//! - a `Response` turns into a `Result` without losing its error, and an
//!   `Error` survives `PitayaError` and back (an empty code reads `PIT-000`);
//! - a `ServerInfo` JSON re-encodes (Go's form) and parses back equal;
//! - a `Request`'s route parses into parts that rebuild it, its
//!   `reqTimeout` re-formats to (nearly) the same duration, and its
//!   metadata goes into a `Context` unchanged.

#![no_main]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pitaya_core::cluster::{ServerInfo, go_duration};
use pitaya_core::dispatch::parse_route;
use pitaya_core::protos::{self, prost::Message};
use pitaya_core::{Context, PitayaError};

/// Decodes `data` as `M`; on success checks the canonical round trip and
/// returns the value.
fn round_trip<M: Message + Default + PartialEq + Debug>(data: &[u8]) -> Option<M> {
    let decoded = M::decode(data).ok()?;
    let bytes = decoded.encode_to_vec();
    assert_eq!(bytes.len(), decoded.encoded_len(), "encoded_len is wrong");
    let again = M::decode(&bytes[..])
        .unwrap_or_else(|err| panic!("re-encoded {decoded:?} does not decode: {err}"));
    assert_eq!(again, decoded, "round trip changed the message");
    assert_eq!(again.encode_to_vec(), bytes, "encoding is not canonical");

    // Length-delimited framing of the same value.
    let delimited = decoded.encode_length_delimited_to_vec();
    let again = M::decode_length_delimited(&delimited[..]).expect("length-delimited round trip");
    assert_eq!(again, decoded);
    Some(decoded)
}

/// What the backend does with `Request.metadata`: a JSON object, or empty.
/// (Mirrors `clustered::decode_metadata`, which is private.)
fn metadata(raw: &[u8]) -> BTreeMap<String, serde_json::Value> {
    if raw.is_empty() {
        return BTreeMap::new();
    }
    serde_json::from_slice(raw).unwrap_or_default()
}

fn check_duration(text: &str) {
    let Some(duration) = go_duration::parse(text) else {
        return;
    };
    let formatted = go_duration::format(duration);
    let back = go_duration::parse(&formatted).unwrap_or_else(|| {
        panic!("{text:?} parses to {duration:?}, formatted {formatted:?} does not parse")
    });
    // Parsing sums f64 nanoseconds: exact below 2^53 ns (~104 days),
    // within a relative 2^-50 above.
    let (a, b) = (duration.as_nanos(), back.as_nanos());
    let diff = a.abs_diff(b);
    assert!(
        diff <= 1 || diff <= a >> 50,
        "{text:?} -> {duration:?} -> {formatted:?} -> {back:?}"
    );
    assert!(back <= Duration::from_nanos(u64::MAX));
}

fn check_request(request: &protos::Request) {
    let route = request.route();
    if let Ok(parts) = parse_route(route) {
        let rebuilt = match parts.server_type {
            Some(server_type) => format!("{server_type}.{}", parts.local),
            None => parts.local.to_owned(),
        };
        assert_eq!(rebuilt, route, "route parts do not rebuild the route");
        assert_eq!(
            parts.local.split('.').count(),
            2,
            "local route is not component.method"
        );
        assert!(
            parts.local.split('.').all(|p| !p.trim().is_empty()),
            "empty route part accepted"
        );
    }

    let metadata = metadata(&request.metadata);
    if let Some(timeout) = metadata
        .get("reqTimeout")
        .and_then(serde_json::Value::as_str)
    {
        check_duration(timeout);
    }
    let context = Context::with_metadata(route.to_owned(), metadata.clone());
    assert_eq!(context.route(), route);
    assert_eq!(context.metadata(), &metadata);

    if let Some(session) = &request.session {
        // The backend refuses session data that is not a JSON object.
        let _ = serde_json::from_slice::<HashMap<String, serde_json::Value>>(&session.data);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(request) = round_trip::<protos::Request>(data) {
        check_request(&request);
    }
    if let Some(response) = round_trip::<protos::Response>(data) {
        let had_error = response.error.clone();
        match response.into_result() {
            Ok(_) => assert!(had_error.is_none()),
            Err(err) => {
                let wire = had_error.expect("an error from a response without one");
                if wire.code.is_empty() {
                    assert_eq!(err.code, "PIT-000");
                } else {
                    assert_eq!(err.code, wire.code);
                }
                assert_eq!((&err.msg, &err.metadata), (&wire.msg, &wire.metadata));
            }
        }
    }
    if let Some(error) = round_trip::<protos::Error>(data) {
        let pitaya = PitayaError::from(error.clone());
        let back = protos::Error::from(pitaya);
        if !error.code.is_empty() {
            assert_eq!(back, error, "Error -> PitayaError -> Error changed it");
        }
    }
    round_trip::<protos::Session>(data);
    round_trip::<protos::Msg>(data);
    round_trip::<protos::Push>(data);
    round_trip::<protos::BindMsg>(data);
    round_trip::<protos::KickMsg>(data);
    round_trip::<protos::KickAnswer>(data);
    round_trip::<protos::Doc>(data);
    round_trip::<protos::DocMsg>(data);
    round_trip::<protos::ProtoDescriptor>(data);
    round_trip::<protos::ProtoName>(data);
    round_trip::<protos::ProtoDescriptors>(data);
    round_trip::<protos::ProtoNames>(data);

    // etcd: a server's registration JSON.
    if let Ok(server) = ServerInfo::from_json(data) {
        let json = server.to_json();
        let again = ServerInfo::from_json(json.as_bytes())
            .unwrap_or_else(|err| panic!("to_json output {json:?} does not parse: {err}"));
        assert_eq!(again, server, "ServerInfo JSON round trip changed it");
        assert_eq!(again.to_json(), json);
    }

    // The duration syntax on its own (reqTimeout, error metadata).
    if let Ok(text) = std::str::from_utf8(data) {
        if text.len() <= 64 {
            check_duration(text);
        }
    }
});

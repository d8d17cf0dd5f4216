//! Handshake bodies: the client's request (JSON) and the server's response
//! (JSON, possibly zlib or gzip).
//!
//! Input: the whole input is a handshake body, decoded as a request and as
//! a response.
//!
//! Invariants:
//! - neither decoder panics;
//! - a decoded request encodes to JSON that decodes again, to a request
//!   whose encoding is the same bytes (compared through `encode()`, which
//!   does not depend on how `user` is represented);
//! - a decoded response round-trips through `encode(false)` and
//!   `encode(true)` to an equal value, and its plain encoding is stable.

#![no_main]

use libfuzzer_sys::fuzz_target;
use pitaya_core::codec::{HandshakeRequest, HandshakeResponse, compression};

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = HandshakeRequest::decode(data) {
        let json = request.encode();
        assert!(
            serde_json::from_slice::<serde_json::Value>(&json).is_ok_and(|v| v.is_object()),
            "request encodes to something that is not a JSON object: {json:?}"
        );
        let again = HandshakeRequest::decode(&json)
            .unwrap_or_else(|err| panic!("re-encoded request {json:?} does not decode: {err}"));
        assert_eq!(again.encode(), json, "request round trip is not stable");
        assert_eq!(
            again.sys, request.sys,
            "sys block changed in the round trip"
        );
        assert_eq!(again, request, "request changed in the round trip");
    }

    if let Ok(response) = HandshakeResponse::decode(data) {
        let plain = response.encode(false);
        assert!(
            !compression::looks_compressed(&plain),
            "plain encoding looks compressed"
        );
        let again = HandshakeResponse::decode(&plain)
            .unwrap_or_else(|err| panic!("re-encoded response {plain:?} does not decode: {err}"));
        assert_eq!(again, response, "response changed in the plain round trip");
        assert_eq!(
            again.encode(false),
            plain,
            "response encoding is not stable"
        );
        assert_eq!(again.is_ok(), response.code == HandshakeResponse::OK);

        let packed = response.encode(true);
        assert!(
            packed.len() <= plain.len(),
            "compressed form chosen while longer"
        );
        let again = HandshakeResponse::decode(&packed)
            .unwrap_or_else(|err| panic!("compressed response does not decode: {err}"));
        assert_eq!(
            again, response,
            "response changed in the compressed round trip"
        );
    }
});

//! Acceptors of pitaya-rs: TCP and WebSocket listeners (TLS for both) and
//! acceptor wrappers such as rate limiting.
//!
//! Empty until the standalone-server issue; the crate exists so the
//! workspace has its final shape.

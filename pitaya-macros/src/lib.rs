//! Procedural macros of pitaya-rs.
//!
//! `#[component]`, `#[handler]` and `#[remote]` land here with the standalone
//! server (they generate the static route table); this crate is a placeholder
//! so the workspace has its final shape.

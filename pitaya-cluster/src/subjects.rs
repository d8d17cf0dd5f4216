//! Go Pitaya's NATS subjects.
//!
//! The prefix is the literal `pitaya/` (not the etcd prefix), and the `/`
//! are part of single NATS tokens.
//!
//! ```
//! use pitaya_cluster::subjects;
//!
//! assert_eq!(subjects::server("room", "r1"), "pitaya/servers/room/r1");
//! assert_eq!(subjects::user_push("connector", "u1"), "pitaya/connector/user/u1/push");
//! assert_eq!(subjects::user_kick("connector", "u1"), "pitaya/connector/user/u1/kick");
//! assert_eq!(subjects::bindings("connector"), "pitaya/connector/bindings");
//! ```

/// Requests to one server: `pitaya/servers/<serverType>/<serverID>`.
pub fn server(server_type: &str, id: &str) -> String {
    format!("pitaya/servers/{server_type}/{id}")
}

/// Pushes to a user bound on a frontend: `pitaya/<frontendType>/user/<uid>/push`.
pub fn user_push(frontend_type: &str, uid: &str) -> String {
    format!("pitaya/{frontend_type}/user/{uid}/push")
}

/// Kicks of a user bound on a frontend: `pitaya/<frontendType>/user/<uid>/kick`.
pub fn user_kick(frontend_type: &str, uid: &str) -> String {
    format!("pitaya/{frontend_type}/user/{uid}/kick")
}

/// Session-bind broadcasts to the frontends of a type: `pitaya/<frontendType>/bindings`.
pub fn bindings(frontend_type: &str) -> String {
    format!("pitaya/{frontend_type}/bindings")
}

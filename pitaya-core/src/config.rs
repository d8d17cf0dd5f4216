//! The app's settings and their defaults (Pitaya's where it has one).

use std::sync::Arc;
use std::time::Duration;

use crate::PitayaError;
use crate::codec::HandshakeRequest;

/// How the requests of one session are run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DispatchMode {
    /// One at a time, in arrival order (the default; Pitaya gives no
    /// ordering guarantee, see its issue #179).
    #[default]
    Sequential,
    /// Concurrently, replies in completion order (Pitaya's behaviour).
    Concurrent,
}

type HandshakeValidator = Arc<dyn Fn(&HandshakeRequest) -> Result<(), PitayaError> + Send + Sync>;

/// Server settings, with Pitaya's defaults.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) server_type: String,
    pub(crate) heartbeat: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) dispatch: DispatchMode,
    pub(crate) handshake_validators: Vec<HandshakeValidator>,
    pub(crate) limits: Limits,
}

/// Bounds on what one connection may cost, before and after its handshake.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Largest packet body once the handshake is acknowledged.
    pub(crate) max_packet_size: usize,
    /// Largest packet body before that (the handshake itself included).
    pub(crate) max_packet_size_before_handshake: usize,
    /// Largest raw `user` block of a handshake.
    pub(crate) max_handshake_user_data: usize,
    /// Time from connect to handshake ack; zero disables it.
    pub(crate) handshake_timeout: Duration,
}

/// Default bound on packet bodies before the handshake is acknowledged.
pub const DEFAULT_MAX_PACKET_SIZE_BEFORE_HANDSHAKE: usize = 64 * 1024;
/// Default bound on the raw JSON `user` block of a client handshake.
pub const DEFAULT_MAX_HANDSHAKE_USER_DATA: usize = 16 * 1024;
/// Default time a connection has to complete handshake and ack.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

// In a protobuf component a handler's reply must be a prost message: a
// serde type is refused at the type, plain or in a `Result`.
use pitaya::prelude::*;

#[derive(Default, serde::Serialize)]
struct JoinAck {
    members: u32,
}

struct Room;

#[component(serializer = "protobuf")]
impl Room {
    #[handler]
    async fn join(&self) -> Result<JoinAck, PitayaError> {
        Ok(JoinAck { members: 1 })
    }

    #[handler]
    async fn count(&self) -> JoinAck {
        JoinAck { members: 2 }
    }
}

fn main() {}

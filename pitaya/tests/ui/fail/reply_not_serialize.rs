use pitaya::prelude::*;

struct JoinAck;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(&self) -> Result<JoinAck, PitayaError> {
        Ok(JoinAck)
    }
}

fn main() {}

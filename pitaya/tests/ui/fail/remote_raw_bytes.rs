use pitaya::Bytes;
use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[remote]
    async fn echo(&self, body: Bytes) -> Result<Bytes, PitayaError> {
        Ok(body)
    }
}

fn main() {}

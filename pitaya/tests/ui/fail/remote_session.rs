use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[remote]
    async fn members(&self, session: &Session) -> Result<u32, PitayaError> {
        Ok(session.id() as u32)
    }
}

fn main() {}

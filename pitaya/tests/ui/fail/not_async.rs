use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    fn join(&self) -> Result<u32, PitayaError> {
        Ok(1)
    }
}

fn main() {}

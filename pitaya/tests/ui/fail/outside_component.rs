use pitaya::prelude::*;

struct Room;

impl Room {
    #[handler]
    async fn join(&self) {}

    #[remote]
    async fn members(&self) {}
}

#[handler]
async fn free() {}

fn main() {}

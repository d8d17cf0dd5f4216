use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[remote]
    async fn new(&self) {}
}

fn main() {}

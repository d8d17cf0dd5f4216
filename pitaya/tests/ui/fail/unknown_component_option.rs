use pitaya::prelude::*;

struct Room;

#[component(nme = "room", rename = "lowercase", name = "room")]
impl Room {
    #[handler]
    async fn join(&self) {}
}

fn main() {}

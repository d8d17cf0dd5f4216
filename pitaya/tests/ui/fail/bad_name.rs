use pitaya::prelude::*;

struct Room;

#[component(name = "")]
impl Room {
    #[handler(name = "")]
    async fn join(&self) {}

    #[handler(name = "room.leave")]
    async fn leave(&self) {}
}

struct Lobby;

#[component(name = "my.lobby")]
impl Lobby {
    #[remote(name = "a.b")]
    async fn members(&self) {}
}

fn main() {}

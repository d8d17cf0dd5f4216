use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler(route = "join")]
    async fn join(&self) {}

    #[remote(name = "members", timeout = 5)]
    async fn members(&self) {}

    #[handler = "chat"]
    async fn chat(&self) {}
}

fn main() {}

use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    #[remote]
    async fn members(&self) {}
}

fn main() {}

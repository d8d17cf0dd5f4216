use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(&self, _name: &String) {}

    #[remote]
    async fn members(&self, _ctx: &Context, _count: &u32) {}
}

fn main() {}

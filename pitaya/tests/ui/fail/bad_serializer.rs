use pitaya::prelude::*;

struct Room;

#[component(serializer = "json")]
impl Room {
    #[handler]
    async fn join(&self) {}
}

fn main() {}

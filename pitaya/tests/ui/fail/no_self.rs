use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(_session: &Session) {}
}

fn main() {}

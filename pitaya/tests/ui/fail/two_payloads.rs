use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(&self, _session: &Session, _name: String, _age: u32) {}
}

fn main() {}

use pitaya::prelude::*;

struct Room;

#[component(rename_all = "kebab-case")]
impl Room {
    #[handler]
    async fn send_message(&self) {}
}

fn main() {}

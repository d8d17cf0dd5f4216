use pitaya::prelude::*;

trait Greeter {
    async fn greet(&self);
}

struct Room;

#[component]
impl Greeter for Room {
    #[handler]
    async fn greet(&self) {}
}

fn main() {
    let _ = Room.greet();
}

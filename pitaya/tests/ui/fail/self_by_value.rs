use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(self) {}

    #[handler]
    async fn leave(mut self) {
        let _ = &mut self;
    }
}

fn main() {}

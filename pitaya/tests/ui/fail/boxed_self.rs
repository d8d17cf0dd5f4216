use std::sync::Arc;

use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(self: Box<Self>) {}

    #[handler]
    async fn leave(self: Arc<Self>) {}

    #[handler]
    async fn kick(self: &mut Self) {}
}

fn main() {}

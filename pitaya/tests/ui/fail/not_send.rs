use std::rc::Rc;

use pitaya::prelude::*;

struct Room;

async fn tick() {}

#[component]
impl Room {
    #[handler]
    async fn join(&self) -> Result<u32, PitayaError> {
        let count = Rc::new(1);
        tick().await;
        Ok(*count)
    }
}

fn main() {}

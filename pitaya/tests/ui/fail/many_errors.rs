// Every problem is reported in one build, and the impl block is still
// emitted: `main` keeps compiling against `Room::helper`.
use pitaya::prelude::*;

struct Room;

#[component(colour = "blue", rename_all = "UPPER")]
impl Room {
    #[handler]
    fn sync_handler(&self) {}

    #[handler(name = "")]
    async fn unnamed(&mut self) {}

    #[remote]
    async fn members(self, _session: &Session, _a: u8, _b: u8) {}

    fn helper(&self) -> u32 {
        1
    }
}

fn main() {
    let _: u32 = Room.helper();
}

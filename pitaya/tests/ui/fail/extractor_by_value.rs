use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(&self, _session: Session, _req: String) {}
}

fn main() {}

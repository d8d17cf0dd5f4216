use pitaya::prelude::*;

struct JoinReq {
    name: String,
}

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join(&self, req: JoinReq) {
        let _ = req.name;
    }
}

fn main() {}

use pitaya::prelude::*;

struct Room {
    count: u32,
}

#[component]
impl Room {
    #[handler]
    async fn join(&mut self) {
        self.count += 1;
    }
}

fn main() {}

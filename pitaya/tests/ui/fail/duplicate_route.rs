use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn get_info(&self) {}

    #[handler(name = "getInfo")]
    async fn info(&self) {}

    #[remote(name = "getInfo")]
    async fn remote_info(&self) {}
}

fn main() {}

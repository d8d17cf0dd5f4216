use pitaya::prelude::*;

struct Room;

#[component]
impl Room {
    #[handler]
    async fn join<T: serde::de::DeserializeOwned>(&self, _req: T) {}

    #[handler]
    async fn leave(&self, _req: impl serde::de::DeserializeOwned) {}
}

fn main() {}

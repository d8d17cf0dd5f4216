use pitaya::prelude::*;

#[component]
struct Room {
    id: u32,
}

fn main() {
    let _ = Room { id: 1 }.id;
}

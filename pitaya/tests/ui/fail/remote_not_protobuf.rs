// Remote arguments and replies are protobuf (as in Go Pitaya): a serde-only
// type is refused at the type, with what to do.
use pitaya::prelude::*;

#[derive(serde::Deserialize, serde::Serialize)]
struct Question {
    text: String,
}

struct Room;

#[component]
impl Room {
    #[remote]
    async fn ask(&self, question: Question) -> Result<Question, PitayaError> {
        Ok(question)
    }
}

fn main() {}

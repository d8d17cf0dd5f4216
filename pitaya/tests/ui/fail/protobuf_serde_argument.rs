// In a protobuf component a handler's payload must be a prost message: a
// serde type is refused at the type, with what to do.
use pitaya::prelude::*;

#[derive(Default, serde::Deserialize)]
struct JoinReq {
    name: String,
}

struct Room;

#[component(serializer = "protobuf")]
impl Room {
    #[handler]
    async fn join(&self, session: &Session, req: JoinReq) -> Result<String, PitayaError> {
        session.bind(req.name.clone()).await?;
        Ok(req.name)
    }
}

fn main() {}

// A component speaking Go Pitaya's protobuf serializer: prost payloads and
// replies, raw bytes, notifies, remotes; and the payload format each
// component announces.
use pitaya::Bytes;
use pitaya::handler::{Component, HandlerKind, PayloadFormat};
use pitaya::prelude::*;

#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinReq {
    #[prost(string, tag = "1")]
    pub name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct JoinAck {
    #[prost(uint32, tag = "1")]
    pub members: u32,
}

pub struct Room;

#[component(serializer = "protobuf")]
impl Room {
    #[handler]
    async fn join(&self, session: &Session, req: JoinReq) -> Result<JoinAck, PitayaError> {
        session.bind(req.name).await?;
        Ok(JoinAck { members: 1 })
    }

    // A plain reply, prost's wrapper for `string`.
    #[handler]
    async fn name(&self, ctx: &Context) -> String {
        ctx.route().to_owned()
    }

    // A notify with a prost payload.
    #[handler]
    async fn say(&self, req: JoinReq) {
        let _ = req.name;
    }

    // `Result<(), E>` replies `google.protobuf.Empty`.
    #[handler]
    async fn leave(&self) -> Result<(), PitayaError> {
        Ok(())
    }

    // Raw bytes stay allowed.
    #[handler]
    async fn echo(&self, body: Bytes) -> Bytes {
        body
    }

    #[remote]
    async fn count(&self, req: JoinReq) -> JoinAck {
        JoinAck {
            members: u32::try_from(req.name.len()).unwrap_or(u32::MAX),
        }
    }
}

// Only raw bodies and notifies: any serializer fits.
pub struct Raw;

#[component(serializer = "protobuf")]
impl Raw {
    #[handler]
    async fn echo(&self, body: Bytes) -> Result<Bytes, PitayaError> {
        Ok(body)
    }

    #[handler]
    async fn ping(&self, _session: &Session) {}
}

// `serializer = "serde"` is the default.
pub struct Serde;

#[component(serializer = "serde")]
impl Serde {
    #[handler]
    async fn hello(&self) -> Result<String, PitayaError> {
        Ok("hi".to_owned())
    }
}

pub struct Plain;

#[component]
impl Plain {
    #[handler]
    async fn hello(&self) -> String {
        "hi".to_owned()
    }

    #[remote]
    async fn count(&self) -> u32 {
        1
    }
}

// Only remotes: they are protobuf whatever the serializer.
pub struct Remotes;

#[component]
impl Remotes {
    #[remote]
    async fn count(&self) -> u32 {
        1
    }
}

fn main() {
    assert_eq!(Room::PAYLOAD, PayloadFormat::Protobuf);
    assert_eq!(Raw::PAYLOAD, PayloadFormat::Any);
    assert_eq!(Serde::PAYLOAD, PayloadFormat::Serde);
    assert_eq!(Plain::PAYLOAD, PayloadFormat::Serde);
    assert_eq!(Remotes::PAYLOAD, PayloadFormat::Any);
    let kinds: Vec<_> = Room::ROUTES.iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            HandlerKind::Request,
            HandlerKind::Request,
            HandlerKind::Notify,
            HandlerKind::Request,
            HandlerKind::Request,
            HandlerKind::Remote,
        ]
    );
    assert_eq!(Room::ROUTES[0].meta.input, Some("JoinReq"));
    assert_eq!(Room::ROUTES[0].meta.output, Some("JoinAck"));
    let _ = RoomRemote::count;
}

// The example of the `#[component]` documentation, with every kind of
// handler, a remote and an unannotated helper.
use pitaya::Bytes;
use pitaya::handler::{Component, HandlerKind, HandlerMeta};
use pitaya::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub struct JoinReq {
    pub name: String,
}
#[derive(Serialize)]
pub struct JoinAck {
    pub ok: bool,
}
#[derive(Deserialize)]
pub struct ChatMsg {
    pub text: String,
}
#[derive(Serialize)]
pub struct Info {
    pub rooms: u32,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct MembersReq {
    #[prost(uint32, tag = "1")]
    pub room: u32,
}
#[derive(Clone, PartialEq, prost::Message)]
pub struct Members {
    #[prost(string, repeated, tag = "1")]
    pub names: Vec<String>,
}

pub struct MyError;

impl From<MyError> for PitayaError {
    fn from(_: MyError) -> Self {
        PitayaError::new("RH-001", "my error")
    }
}

pub struct Room {
    rooms: u32,
}

#[component]
impl Room {
    #[handler]
    async fn join(&self, session: &Session, req: JoinReq) -> Result<JoinAck, PitayaError> {
        session.bind(req.name).await?;
        Ok(JoinAck { ok: true })
    }

    #[handler]
    async fn chat(&self, session: &Session, msg: ChatMsg) {
        let _ = (session.id(), msg.text);
    }

    #[handler(name = "getInfo")]
    async fn info(&self) -> Result<Info, MyError> {
        if self.rooms == 0 {
            return Err(MyError);
        }
        Ok(Info {
            rooms: self.helper(),
        })
    }

    #[handler]
    async fn raw(&self, body: Bytes) -> Bytes {
        body
    }

    #[handler]
    async fn send_message(&self, ctx: &Context, text: String) -> String {
        format!("{}: {text}", ctx.route())
    }

    #[remote]
    async fn members(&self, ctx: &Context, req: MembersReq) -> Result<Members, PitayaError> {
        Ok(Members {
            names: vec![format!("{}#{}", ctx.route(), req.room)],
        })
    }

    fn helper(&self) -> u32 {
        self.rooms
    }
}

fn main() {
    assert_eq!(Room::NAME, "room");
    let routes: Vec<_> = Room::ROUTES
        .iter()
        .map(|entry| (entry.method, entry.kind, entry.meta))
        .collect();
    let meta = |input, output| HandlerMeta { input, output };
    assert_eq!(
        routes,
        [
            (
                "join",
                HandlerKind::Request,
                meta(Some("JoinReq"), Some("JoinAck"))
            ),
            ("chat", HandlerKind::Notify, meta(Some("ChatMsg"), None)),
            ("getInfo", HandlerKind::Request, meta(None, Some("Info"))),
            (
                "raw",
                HandlerKind::Request,
                meta(Some("Bytes"), Some("Bytes"))
            ),
            (
                "sendMessage",
                HandlerKind::Request,
                meta(Some("String"), Some("String"))
            ),
            (
                "members",
                HandlerKind::Remote,
                meta(Some("MembersReq"), Some("Members"))
            ),
        ]
    );
    // The helper is still an ordinary method.
    assert_eq!(Room { rooms: 3 }.helper(), 3);
    // The typed client exists with the documented shape.
    fn _stub(
        client: pitaya::remote::RemoteClient,
    ) -> impl std::future::Future<Output = Result<Members, PitayaError>> {
        async move {
            RoomRemote::new(client)
                .members(&MembersReq { room: 1 })
                .await
        }
    }
}

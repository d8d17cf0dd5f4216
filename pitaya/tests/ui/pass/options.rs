// Every option of `#[component]`, `#[handler]` and `#[remote]`, and the
// less common method shapes.
use std::sync::atomic::{AtomicU32, Ordering};

use pitaya::handler::{Component, HandlerKind};
use pitaya::prelude::*;
use serde::{Deserialize, Serialize};

// Handlers take it with the app serializer, remotes as protobuf.
#[derive(Serialize, Deserialize, Clone, PartialEq, prost::Message)]
pub struct Payload {
    #[prost(uint32, tag = "1")]
    pub n: u32,
}

fn methods<C: Component>() -> Vec<&'static str> {
    C::ROUTES.iter().map(|entry| entry.method).collect()
}

// `name`, and the default `camelCase`.
pub struct ChatRoom;

#[component(name = "chat")]
impl ChatRoom {
    #[handler]
    async fn send_message(&self) {}
}

// The default component name: the type name, first letter lowercased.
pub struct ChatLobby;

#[component]
impl ChatLobby {
    #[handler]
    async fn send_message(&self) {}
}

pub struct Lower;

#[component(rename_all = "lowercase")]
impl Lower {
    #[handler]
    async fn send_message(&self) {}
}

pub struct Snake;

#[component(rename_all = "snake_case")]
impl Snake {
    #[handler]
    async fn send_message(&self) {}
}

pub struct Pascal;

#[component(rename_all = "PascalCase")]
impl Pascal {
    #[handler]
    async fn send_message(&self) {}

    // `name` wins over `rename_all`.
    #[handler(name = "exact_name")]
    async fn renamed(&self) {}

    #[remote(name = "remoteName")]
    async fn remote_renamed(&self) {}
}

pub struct Camel;

#[component(rename_all = "camelCase", name = "camel", remote_vis = "pub(crate)")]
impl Camel {
    #[remote]
    async fn get_state(&self, _ctx: &Context, payload: Payload) -> Payload {
        payload
    }

    #[remote]
    async fn nothing(&self) -> Result<(), PitayaError> {
        Ok(())
    }
}

// Visibility "" is private.
pub struct Private;

#[component(remote_vis = "")]
impl Private {
    #[remote]
    async fn call(&self) {}
}

// Method shapes: `self: &Self`, `Self` in types, lifetimes, patterns,
// a mutable extractor, a `#[cfg]`-ed handler, a raw identifier.
#[derive(Default)]
pub struct Shapes {
    count: AtomicU32,
}

#[component]
impl Shapes {
    #[handler]
    async fn counted(
        self: &Self,
        ctx: &mut Context,
        Payload { n }: Payload,
    ) -> Result<u32, PitayaError> {
        let _ = ctx.route();
        Ok(self.count.fetch_add(n, Ordering::Relaxed))
    }

    #[handler]
    async fn borrowed<'a>(&'a self, session: &'a Session) -> Result<u64, PitayaError> {
        Ok(session.id())
    }

    #[cfg(any())]
    #[handler]
    async fn compiled_out(&self) {}

    #[handler]
    async fn r#type(&self) -> std::result::Result<Vec<Option<u8>>, PitayaError> {
        Ok(vec![Some(1)])
    }

    #[handler]
    async fn unit(&self) -> () {}

    #[handler]
    async fn alias(&self) -> AliasResult<u8> {
        Ok(1)
    }
}

type AliasResult<T> = Result<T, PitayaError>;

// A generic component.
pub struct Generic<T> {
    value: T,
}

#[component]
impl<T> Generic<T>
where
    T: Clone + Serialize + Send + Sync + 'static,
{
    #[handler]
    async fn value(&self) -> Result<T, PitayaError> {
        Ok(self.value.clone())
    }
}

fn main() {
    assert_eq!(ChatRoom::NAME, "chat");
    assert_eq!(methods::<ChatRoom>(), ["sendMessage"]);
    assert_eq!(ChatLobby::NAME, "chatLobby");
    assert_eq!(methods::<Lower>(), ["sendmessage"]);
    assert_eq!(methods::<Snake>(), ["send_message"]);
    assert_eq!(
        methods::<Pascal>(),
        ["SendMessage", "exact_name", "remoteName"]
    );
    assert_eq!(Pascal::ROUTES[2].kind, HandlerKind::Remote);
    assert_eq!(Camel::NAME, "camel");
    assert_eq!(methods::<Camel>(), ["getState", "nothing"]);
    assert_eq!(Camel::ROUTES[1].meta.output, None);
    let _ = CamelRemote::get_state;
    let _ = PrivateRemote::call;
    assert_eq!(
        methods::<Shapes>(),
        ["counted", "borrowed", "type", "unit", "alias"]
    );
    assert_eq!(Shapes::ROUTES[3].kind, HandlerKind::Notify);
    assert_eq!(Shapes::ROUTES[2].meta.output, Some("Vec<Option<u8>>"));
    assert_eq!(Shapes::ROUTES[0].meta.input, Some("Payload"));
    assert_eq!(Generic::<String>::NAME, "generic");
    assert_eq!(Generic::<u8>::ROUTES[0].kind, HandlerKind::Request);
    let _ = Generic { value: 1u8 }.value;
}

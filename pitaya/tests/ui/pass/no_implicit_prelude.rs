// Hygiene: the generated code names nothing from the prelude (no `Ok`,
// `Box`, `Option`, ...) and only paths under `::pitaya::__private`.
#![no_implicit_prelude]

extern crate pitaya;
extern crate serde;
extern crate std;

use pitaya::prelude::{Context, PitayaError, Session, component, handler, remote};
use std::result::Result;
use std::string::String;

#[derive(serde::Deserialize, serde::Serialize)]
pub struct Req {
    pub n: u32,
}

pub struct Hygiene;

#[component]
impl Hygiene {
    #[handler]
    async fn request(&self, _session: &Session, req: Req) -> Result<Req, PitayaError> {
        Result::Ok(req)
    }

    #[handler]
    async fn notify(&self, _ctx: &Context) {}

    #[handler]
    async fn plain(&self, text: String) -> String {
        text
    }

    #[handler]
    async fn raw(&self, body: pitaya::Bytes) -> Result<pitaya::Bytes, PitayaError> {
        Result::Ok(body)
    }

    #[remote]
    async fn remote_call(&self, _ctx: &Context, req: u32) -> Result<u32, PitayaError> {
        Result::Ok(req)
    }

    #[remote]
    async fn remote_unit(&self) {}
}

fn main() {
    use pitaya::handler::Component;
    ::std::assert_eq!(<Hygiene as Component>::NAME, "hygiene");
    ::std::assert_eq!(<Hygiene as Component>::ROUTES.len(), 6);
    let _: fn(pitaya::remote::RemoteClient) -> HygieneRemote = HygieneRemote::new;
}

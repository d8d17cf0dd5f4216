// The facade under another name: `crate = "..."` tells the macro where it is.
pub extern crate pitaya as my_pitaya;

use my_pitaya::handler::{Component, HandlerKind};
use my_pitaya::prelude::{Context, PitayaError};

pub struct Root;

#[my_pitaya::component(crate = "my_pitaya")]
impl Root {
    #[my_pitaya::handler]
    async fn ping(&self) -> Result<String, PitayaError> {
        Ok("pong".to_owned())
    }

    #[my_pitaya::remote]
    async fn peer(&self, _ctx: &Context, n: u32) -> Result<u32, PitayaError> {
        Ok(n)
    }
}

mod nested {
    use my_pitaya::prelude::PitayaError;

    pub struct Nested;

    // From a module, through the extern prelude.
    #[my_pitaya::component(crate = "::my_pitaya")]
    impl Nested {
        #[my_pitaya::handler]
        async fn ping(&self) -> Result<u8, PitayaError> {
            Ok(1)
        }
    }
}

mod reexport {
    // A path that is not a crate root: a module re-exporting the facade.
    pub use my_pitaya as inner;
}

pub struct ViaModule;

#[reexport::inner::component(crate = "crate::reexport::inner")]
impl ViaModule {
    #[reexport::inner::handler]
    async fn ping(&self) {}
}

fn main() {
    assert_eq!(Root::NAME, "root");
    assert_eq!(Root::ROUTES[0].kind, HandlerKind::Request);
    assert_eq!(Root::ROUTES[1].kind, HandlerKind::Remote);
    let _ = RootRemote::new;
    assert_eq!(nested::Nested::NAME, "nested");
    assert_eq!(ViaModule::ROUTES[0].kind, HandlerKind::Notify);
}

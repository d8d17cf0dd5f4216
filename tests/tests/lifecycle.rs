//! App lifecycle: modules in order and reversed, init failures, timers
//! stopped at shutdown.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pitaya::module::{Module, ModuleFuture};
use pitaya::prelude::*;
use pitaya_acceptors::TcpAcceptor;

type Log = Arc<Mutex<Vec<String>>>;

struct Recorder {
    name: &'static str,
    log: Log,
    fail_init: bool,
}

impl Recorder {
    fn record(&self, what: &str) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{what} {}", self.name));
    }
}

impl Module for Recorder {
    fn name(&self) -> &str {
        self.name
    }

    fn init<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async move {
            self.record("init");
            if self.fail_init {
                return Err("database unreachable".into());
            }
            Ok(())
        })
    }

    fn after_init<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async move {
            self.record("after_init");
            Ok(())
        })
    }

    fn before_shutdown<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async move {
            self.record("before_shutdown");
            Ok(())
        })
    }

    fn shutdown<'a>(&'a self, _app: &'a AppHandle) -> ModuleFuture<'a> {
        Box::pin(async move {
            self.record("shutdown");
            Ok(())
        })
    }
}

fn recorder(name: &'static str, log: &Log, fail_init: bool) -> Recorder {
    Recorder {
        name,
        log: log.clone(),
        fail_init,
    }
}

#[tokio::test]
async fn modules_start_in_order_and_stop_in_reverse() {
    let log = Log::default();
    let app = App::builder("game")
        .acceptor(TcpAcceptor::bind("127.0.0.1:0").await.unwrap())
        .module(recorder("db", &log, false))
        .module(recorder("cache", &log, false))
        .build()
        .unwrap();
    let handle = app.handle();
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        handle.shutdown();
    });
    app.run_until(std::future::pending()).await.unwrap();
    stopper.await.unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "init db",
            "init cache",
            "after_init db",
            "after_init cache",
            "before_shutdown cache",
            "before_shutdown db",
            "shutdown cache",
            "shutdown db",
        ]
    );
}

#[tokio::test]
async fn a_failing_init_stops_the_start() {
    let log = Log::default();
    let app = App::builder("game")
        .acceptor(TcpAcceptor::bind("127.0.0.1:0").await.unwrap())
        .module(recorder("db", &log, true))
        .module(recorder("cache", &log, false))
        .build()
        .unwrap();
    let err = app.run_until(std::future::pending()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("module db failed to initialize: database unreachable"),
        "{err}"
    );
    assert_eq!(*log.lock().unwrap(), ["init db"]);
}

struct RoomA;

#[component(name = "room")]
impl RoomA {
    #[handler]
    async fn join(&self) -> Result<u8, PitayaError> {
        Ok(1)
    }
}

struct RoomB;

#[component(name = "room")]
impl RoomB {
    #[handler]
    async fn join(&self) -> Result<u8, PitayaError> {
        Ok(2)
    }
}

#[tokio::test]
async fn configuration_mistakes_are_errors() {
    let app = App::builder("game").build().unwrap();
    let err = app.run_until(std::future::pending()).await.unwrap_err();
    assert!(
        err.to_string().contains("needs at least one acceptor"),
        "{err}"
    );
    let err = App::builder("bad.type").build().unwrap_err();
    assert!(err.to_string().contains("server type"), "{err}");
    let err = App::builder("game")
        .register(RoomA)
        .register(RoomB)
        .build()
        .unwrap_err();
    assert_eq!(err.to_string(), "route room.join is registered twice");
    // A backend needs no acceptor.
    let backend = App::builder("game")
        .frontend(false)
        .register(RoomA)
        .build()
        .unwrap();
    let handle = backend.handle();
    handle.shutdown();
    backend.run_until(std::future::pending()).await.unwrap();
}

#[tokio::test]
async fn timers_stop_when_the_app_stops() {
    let app = App::builder("game")
        .acceptor(TcpAcceptor::bind("127.0.0.1:0").await.unwrap())
        .build()
        .unwrap();
    let handle = app.handle();
    let ticks = Arc::new(AtomicU64::new(0));
    let counter = ticks.clone();
    handle.timers().every(Duration::from_millis(10), move || {
        counter.fetch_add(1, Ordering::SeqCst);
        std::future::ready(())
    });
    let stopper = tokio::spawn({
        let handle = handle.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            handle.shutdown();
        }
    });
    app.run_until(std::future::pending()).await.unwrap();
    stopper.await.unwrap();
    let at_stop = ticks.load(Ordering::SeqCst);
    assert!(
        at_stop >= 3,
        "the timer ran while the app ran ({at_stop} ticks)"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        ticks.load(Ordering::SeqCst),
        at_stop,
        "no ticks after shutdown"
    );
}

//! What the REPL remembers between commands, and how commands run.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use pitaya_client::{
    Client, Endpoint, Error, Event, Events, SerializerKind, TlsConfig, default_handshake,
};
use pitaya_protocol::codec::HandshakeRequest;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::command::{Command, HELP, SysField};
use super::payload::{describe, encode, render};

/// Most pushes kept for `wait-push` in interactive mode (where they are
/// printed as they arrive anyway).
const INTERACTIVE_PUSH_BACKLOG: usize = 256;

/// Settings from the command line.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    /// Pretty-print JSON.
    pub(crate) pretty: bool,
    /// Request (and default `wait-push`) timeout.
    pub(crate) timeout: Duration,
    /// TLS settings for `tls://` and `wss://`.
    pub(crate) tls: TlsConfig,
    /// Serializer forced by `--serializer`.
    pub(crate) serializer: Option<SerializerKind>,
}

/// Where lines that arrive on their own (pushes, kicks, disconnects) go.
#[derive(Clone, Debug)]
pub(crate) enum Printer {
    /// Plain `println!` / `eprintln!`.
    Direct,
    /// Through rustyline's external printer, which keeps the prompt intact.
    External(std::sync::mpsc::Sender<String>),
}

impl Printer {
    fn out(&self, line: String) {
        match self {
            Self::Direct => println!("{line}"),
            Self::External(printer) => {
                if let Err(unsent) = printer.send(line) {
                    println!("{}", unsent.0);
                }
            }
        }
    }

    fn notice(&self, line: String) {
        match self {
            Self::Direct => eprintln!("{line}"),
            Self::External(_) => self.out(line),
        }
    }
}

/// Pushes of one connection waiting for `wait-push`.
#[derive(Debug, Default)]
struct PushHub {
    state: Mutex<HubState>,
    changed: Notify,
}

#[derive(Debug, Default)]
struct HubState {
    /// `(route, printed line)` in arrival order.
    queue: VecDeque<(String, String)>,
    ended: bool,
}

impl PushHub {
    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, route: String, line: String, limit: Option<usize>) {
        {
            let mut state = self.lock();
            if limit.is_some_and(|limit| state.queue.len() >= limit) {
                state.queue.pop_front();
            }
            state.queue.push_back((route, line));
        }
        self.changed.notify_waiters();
    }

    fn end(&self) {
        self.lock().ended = true;
        self.changed.notify_waiters();
    }

    fn drain(&self) -> Vec<String> {
        self.lock().queue.drain(..).map(|(_, line)| line).collect()
    }

    /// The first queued push on `route`, waiting up to `timeout` for one.
    async fn wait(&self, route: &str, timeout: Duration) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.lock();
                if let Some(index) = state.queue.iter().position(|(queued, _)| queued == route)
                    && let Some((_, line)) = state.queue.remove(index)
                {
                    return Ok(line);
                }
                if state.ended {
                    return Err(format!(
                        "error {}: connection closed while waiting for a push on {route}",
                        pitaya_protocol::error::codes::CLIENT_CLOSED_REQUEST
                    ));
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(format!(
                    "error {}: no push on {route} within {timeout:?}",
                    pitaya_protocol::error::codes::CLIENT_TIMEOUT
                ));
            }
        }
    }
}

struct Connection {
    client: Client,
    hub: Arc<PushHub>,
    events: JoinHandle<()>,
}

/// The REPL state.
pub(crate) struct Session {
    settings: Settings,
    /// Interactive: pushes are printed as they arrive. Script: pushes wait
    /// for `wait-push`; the rest are printed when the connection ends.
    interactive: bool,
    printer: Printer,
    handshake: HandshakeRequest,
    connection: Option<Connection>,
    history: Vec<String>,
}

impl Session {
    pub(crate) fn new(settings: Settings, interactive: bool) -> Self {
        Self {
            settings,
            interactive,
            printer: Printer::Direct,
            handshake: default_handshake(),
            connection: None,
            history: Vec::new(),
        }
    }

    /// Sends asynchronous output through `printer` from now on.
    pub(crate) fn set_printer(&mut self, printer: Printer) {
        self.printer = printer;
    }

    /// Remembers a line for `history` (script mode).
    pub(crate) fn remember(&mut self, line: &str) {
        self.history.push(line.to_owned());
    }

    /// Runs `command`, printing its result on stdout; the error text (with
    /// the Pitaya code) otherwise.
    pub(crate) async fn execute(&mut self, command: Command) -> Result<(), String> {
        match command {
            Command::Connect(endpoint) => self.connect(endpoint).await,
            Command::Request { route, body } => {
                let client = self.client()?;
                let payload = encode(body.as_ref(), client.serializer())
                    .map_err(|err| describe(&err.into()))?;
                let response = client
                    .request_raw(&route, payload)
                    .await
                    .map_err(|err| describe(&err))?;
                println!(
                    "{}",
                    render(&response, client.serializer(), self.settings.pretty)
                );
                Ok(())
            }
            Command::Notify { route, body } => {
                let client = self.client()?;
                let payload = encode(body.as_ref(), client.serializer())
                    .map_err(|err| describe(&err.into()))?;
                client
                    .notify_raw(&route, payload)
                    .await
                    .map_err(|err| describe(&err))
            }
            Command::SetHandshake(user) => {
                self.handshake = std::mem::take(&mut self.handshake).with_user(&user);
                eprintln!("handshake user data set (sent at the next connect)");
                Ok(())
            }
            Command::SetHandshakeSys(field, value) => {
                let sys = &mut self.handshake.sys;
                match field {
                    SysField::Version => sys.client_version = value,
                    SysField::Platform => sys.platform = value,
                    SysField::BuildNumber => sys.client_build_number = value,
                }
                eprintln!("handshake sys data set (sent at the next connect)");
                Ok(())
            }
            Command::Disconnect => {
                if self.connection.is_none() {
                    return Err("error: not connected".into());
                }
                self.disconnect().await;
                eprintln!("disconnected");
                Ok(())
            }
            Command::History => {
                for (index, line) in self.history.iter().enumerate() {
                    println!("{:>4}  {line}", index + 1);
                }
                Ok(())
            }
            Command::Help => {
                println!("{HELP}");
                Ok(())
            }
            Command::Exit => Ok(()),
            Command::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            Command::WaitPush { route, timeout } => {
                let Some(connection) = &self.connection else {
                    return Err("error: not connected".into());
                };
                let hub = connection.hub.clone();
                let line = hub
                    .wait(&route, timeout.unwrap_or(self.settings.timeout))
                    .await?;
                println!("{line}");
                Ok(())
            }
        }
    }

    /// Closes the connection, if any, and prints what is left to print.
    pub(crate) async fn disconnect(&mut self) {
        if let Some(connection) = self.connection.take() {
            connection.client.close().await;
            // The events task ends after the last event.
            let _ = connection.events.await;
            let left = connection.hub.drain();
            if !self.interactive {
                for line in left {
                    println!("{line}");
                }
            }
        }
    }

    fn client(&self) -> Result<Client, String> {
        match &self.connection {
            Some(connection) => Ok(connection.client.clone()),
            None => Err("error: not connected (use connect <endpoint>)".into()),
        }
    }

    async fn connect(&mut self, endpoint: Endpoint) -> Result<(), String> {
        if let Some(connection) = &self.connection {
            if connection.client.is_connected() {
                return Err(format!(
                    "error: already connected to {} (disconnect first)",
                    connection.client.endpoint()
                ));
            }
            self.disconnect().await;
        }
        let mut builder = Client::builder()
            .handshake(self.handshake.clone())
            .request_timeout(self.settings.timeout)
            .tls(self.settings.tls.clone());
        if let Some(serializer) = self.settings.serializer {
            builder = builder.serializer(serializer);
        }
        let (client, events) = builder
            .connect(&endpoint)
            .await
            .map_err(|err| describe(&err))?;
        let response = client.handshake_response();
        eprintln!(
            "connected to {endpoint} (serializer {}, heartbeat {:?}, {} dictionary routes)",
            client.serializer(),
            response.sys.heartbeat,
            response.sys.dict.len()
        );
        let hub = Arc::new(PushHub::default());
        let pump = EventPump {
            hub: hub.clone(),
            printer: self.printer.clone(),
            interactive: self.interactive,
            pretty: self.settings.pretty,
        };
        let events = tokio::spawn(pump.run(events));
        self.connection = Some(Connection {
            client,
            hub,
            events,
        });
        Ok(())
    }
}

/// Moves a connection's events to the screen and to the push hub.
struct EventPump {
    hub: Arc<PushHub>,
    printer: Printer,
    interactive: bool,
    pretty: bool,
}

impl EventPump {
    async fn run(self, mut events: Events) {
        let serializer = events.serializer();
        while let Some(event) = events.next().await {
            match event {
                Event::Push { route, body } => {
                    let line = format!("push {route} {}", render(&body, serializer, self.pretty));
                    if self.interactive {
                        self.printer.out(line.clone());
                        self.hub.push(route, line, Some(INTERACTIVE_PUSH_BACKLOG));
                    } else {
                        self.hub.push(route, line, None);
                    }
                }
                Event::Kicked => self.printer.notice("kicked by the server".into()),
                Event::Disconnected {
                    reason: Some(reason),
                } if !matches!(reason, Error::Kicked) => {
                    self.printer
                        .notice(format!("disconnected: {}", describe(&reason)));
                }
                _ => {}
            }
        }
        self.hub.end();
    }
}

/// Builds the TLS settings from `--ca` (a PEM file) or accepts any
/// certificate (`--insecure`, the default as in Go's pitaya-cli).
pub(crate) fn tls_settings(ca: Option<&std::path::Path>) -> Result<TlsConfig, String> {
    match ca {
        None => Ok(TlsConfig::insecure()),
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|err| format!("reading {}: {err}", path.display()))?;
            TlsConfig::from_ca_pem(&pem).map_err(|err| format!("{}: {err}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session::new(
            Settings {
                pretty: false,
                timeout: Duration::from_millis(50),
                tls: TlsConfig::insecure(),
                serializer: None,
            },
            false,
        )
    }

    #[tokio::test]
    async fn commands_without_a_connection_fail_cleanly() {
        let mut session = session();
        let err = session
            .execute(Command::Request {
                route: "a.b".into(),
                body: None,
            })
            .await
            .unwrap_err();
        assert!(err.contains("not connected"), "{err}");
        assert!(session.execute(Command::Disconnect).await.is_err());
        assert!(
            session
                .execute(Command::WaitPush {
                    route: "a".into(),
                    timeout: None
                })
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn sethandshake_changes_the_next_handshake() {
        let mut session = session();
        let user = serde_json::json!({"token": "t"})
            .as_object()
            .unwrap()
            .clone();
        session
            .execute(Command::SetHandshake(user.clone()))
            .await
            .unwrap();
        session
            .execute(Command::SetHandshakeSys(SysField::Platform, "cli".into()))
            .await
            .unwrap();
        assert_eq!(session.handshake.user_map().as_ref(), Some(&user));
        assert_eq!(session.handshake.sys.platform, "cli");
    }

    #[tokio::test]
    async fn push_hub_waits_matches_and_times_out() {
        let hub = Arc::new(PushHub::default());
        hub.push("a".into(), "push a 1".into(), None);
        hub.push("b".into(), "push b 2".into(), None);
        assert_eq!(
            hub.wait("b", Duration::from_millis(10)).await.unwrap(),
            "push b 2"
        );
        let waiter = {
            let hub = hub.clone();
            tokio::spawn(async move { hub.wait("c", Duration::from_secs(5)).await })
        };
        tokio::task::yield_now().await;
        hub.push("c".into(), "push c 3".into(), None);
        assert_eq!(waiter.await.unwrap().unwrap(), "push c 3");
        let err = hub.wait("d", Duration::from_millis(10)).await.unwrap_err();
        assert!(err.starts_with("error PIT-504"), "{err}");
        hub.end();
        let err = hub.wait("d", Duration::from_secs(5)).await.unwrap_err();
        assert!(err.contains("closed"), "{err}");
        assert_eq!(hub.drain(), ["push a 1"]);
    }

    #[test]
    fn backlog_is_bounded() {
        let hub = PushHub::default();
        for i in 0..5 {
            hub.push("r".into(), format!("{i}"), Some(3));
        }
        assert_eq!(hub.drain(), ["2", "3", "4"]);
    }
}

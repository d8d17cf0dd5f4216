//! The REPL's command language, parsed by a pure function.

use std::fmt;
use std::time::Duration;

use pitaya_client::Endpoint;
use serde_json::{Map, Value};

/// One command line.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Command {
    /// `connect <endpoint>`.
    Connect(Endpoint),
    /// `request <route> [json]`.
    Request { route: String, body: Option<Value> },
    /// `notify <route> [json]`.
    Notify { route: String, body: Option<Value> },
    /// `sethandshake <json object>`: the handshake's `user` data.
    SetHandshake(Map<String, Value>),
    /// `sethandshake version|platform|buildNumber <value>`: a `sys` field.
    SetHandshakeSys(SysField, String),
    /// `disconnect`.
    Disconnect,
    /// `history`.
    History,
    /// `help`.
    Help,
    /// `exit` or `quit`.
    Exit,
    /// `sleep <ms>`.
    Sleep(Duration),
    /// `wait-push <route> [timeout_ms]`.
    WaitPush {
        route: String,
        timeout: Option<Duration>,
    },
}

/// A `sys` field of the handshake that `sethandshake` can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SysField {
    /// `clientVersion`.
    Version,
    /// `platform`.
    Platform,
    /// `clientBuildNumber`.
    BuildNumber,
}

/// A command line that makes no sense.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError(String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseError {}

fn error<T>(message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(message.into()))
}

pub(crate) const HELP: &str = "\
commands:
  connect <endpoint>               connect (tcp://host:port, tls://host:port, ws://host:port/path,
                                   wss://host:port/path or host:port for tcp)
  request <route> [json]           send a request and print the response
  notify <route> [json]            send a notify
  sethandshake <json object>       set the handshake's user data (used by the next connect)
  sethandshake version|platform|buildNumber <value>
                                   set a field of the handshake's sys block
  disconnect                       close the connection
  wait-push <route> [timeout_ms]   wait for a push on <route> and print it
  sleep <ms>                       pause (for scripts)
  history                          show the command history
  help                             show this help
  exit | quit                      leave
pushes are printed as `push <route> <json>`; lines starting with # are comments";

/// Parses one line; `Ok(None)` for a blank line or a `#` comment.
pub(crate) fn parse(line: &str) -> Result<Option<Command>, ParseError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (verb, rest) = split_word(line);
    let command = match verb.to_ascii_lowercase().as_str() {
        "connect" => {
            let (endpoint, extra) = split_word(rest);
            if endpoint.is_empty() {
                return error("usage: connect <endpoint>");
            }
            no_extra("connect", extra)?;
            match endpoint.parse() {
                Ok(endpoint) => Command::Connect(endpoint),
                Err(err) => return error(err.to_string()),
            }
        }
        "request" => {
            let (route, body) = route_and_body("request", rest)?;
            Command::Request { route, body }
        }
        "notify" => {
            let (route, body) = route_and_body("notify", rest)?;
            Command::Notify { route, body }
        }
        "sethandshake" => parse_sethandshake(rest)?,
        "disconnect" => no_args(Command::Disconnect, "disconnect", rest)?,
        "history" => no_args(Command::History, "history", rest)?,
        "help" | "?" => Command::Help,
        "exit" | "quit" => no_args(Command::Exit, verb, rest)?,
        "sleep" => {
            let (ms, extra) = split_word(rest);
            no_extra("sleep", extra)?;
            Command::Sleep(
                parse_millis(ms).ok_or_else(|| ParseError("usage: sleep <milliseconds>".into()))?,
            )
        }
        "wait-push" | "waitpush" => {
            let (route, rest) = split_word(rest);
            check_route("wait-push", route)?;
            let (ms, extra) = split_word(rest);
            no_extra("wait-push", extra)?;
            let timeout =
                if ms.is_empty() {
                    None
                } else {
                    Some(parse_millis(ms).ok_or_else(|| {
                        ParseError("usage: wait-push <route> [timeout_ms]".into())
                    })?)
                };
            Command::WaitPush {
                route: route.to_owned(),
                timeout,
            }
        }
        _ => return error(format!("unknown command {verb:?} (try help)")),
    };
    Ok(Some(command))
}

/// The first word and the rest, both trimmed.
fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest.trim()),
        None => (text, ""),
    }
}

fn no_extra(verb: &str, extra: &str) -> Result<(), ParseError> {
    if extra.is_empty() {
        Ok(())
    } else {
        error(format!("{verb}: unexpected {extra:?}"))
    }
}

fn no_args(command: Command, verb: &str, rest: &str) -> Result<Command, ParseError> {
    no_extra(verb, rest)?;
    Ok(command)
}

fn parse_millis(text: &str) -> Option<Duration> {
    text.parse::<u64>().ok().map(Duration::from_millis)
}

fn check_route(verb: &str, route: &str) -> Result<(), ParseError> {
    if route.is_empty() {
        return error(format!("usage: {verb} <route> ..."));
    }
    if route.len() > 255 {
        return error(format!("{verb}: a route is at most 255 bytes"));
    }
    Ok(())
}

fn route_and_body(verb: &str, rest: &str) -> Result<(String, Option<Value>), ParseError> {
    let (route, json) = split_word(rest);
    check_route(verb, route)?;
    if json.is_empty() {
        return Ok((route.to_owned(), None));
    }
    match serde_json::from_str(json) {
        Ok(value) => Ok((route.to_owned(), Some(value))),
        Err(err) => error(format!("{verb}: invalid json: {err}")),
    }
}

fn parse_sethandshake(rest: &str) -> Result<Command, ParseError> {
    const USAGE: &str =
        "usage: sethandshake <json object> | sethandshake version|platform|buildNumber <value>";
    if rest.starts_with('{') {
        return match serde_json::from_str(rest) {
            Ok(Value::Object(user)) => Ok(Command::SetHandshake(user)),
            Ok(_) => error(USAGE),
            Err(err) => error(format!("sethandshake: invalid json: {err}")),
        };
    }
    let (field, value) = split_word(rest);
    let field = match field {
        "version" => SysField::Version,
        "platform" => SysField::Platform,
        "buildNumber" | "buildnumber" => SysField::BuildNumber,
        _ => return error(USAGE),
    };
    if value.is_empty() {
        return error(USAGE);
    }
    Ok(Command::SetHandshakeSys(field, value.to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ok(line: &str) -> Command {
        parse(line).unwrap().unwrap()
    }

    fn err(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn blank_lines_and_comments_are_nothing() {
        for line in ["", "   ", "\t", "# connect x", "   # indented comment"] {
            assert_eq!(parse(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn connect_takes_every_endpoint_form() {
        assert_eq!(
            ok("connect 127.0.0.1:3250"),
            Command::Connect("tcp://127.0.0.1:3250".parse().unwrap())
        );
        assert_eq!(
            ok("  CONNECT   wss://example.com/ws  "),
            Command::Connect("wss://example.com:443/ws".parse().unwrap())
        );
        assert!(err("connect").starts_with("usage"));
        assert!(err("connect http://x:1").contains("invalid endpoint"));
        assert!(err("connect a:1 b").contains("unexpected"));
    }

    #[test]
    fn request_and_notify_take_optional_json_with_spaces() {
        assert_eq!(
            ok(r#"request room.room.join {"name": "a b", "n": [1, 2]}"#),
            Command::Request {
                route: "room.room.join".into(),
                body: Some(json!({"name": "a b", "n": [1, 2]})),
            }
        );
        assert_eq!(
            ok("request connector.getinfo"),
            Command::Request {
                route: "connector.getinfo".into(),
                body: None,
            }
        );
        assert_eq!(
            ok("notify room.room.say \"hi\""),
            Command::Notify {
                route: "room.room.say".into(),
                body: Some(json!("hi")),
            }
        );
        assert!(err("request").starts_with("usage"));
        assert!(err("request a.b {nope").contains("invalid json"));
        assert!(err(&format!("notify {}", "r".repeat(256))).contains("255"));
    }

    #[test]
    fn sethandshake_user_object_or_sys_field() {
        assert_eq!(
            ok(r#"sethandshake {"token": "abc"}"#),
            Command::SetHandshake(json!({"token": "abc"}).as_object().unwrap().clone())
        );
        assert_eq!(
            ok("sethandshake version 1.2.3"),
            Command::SetHandshakeSys(SysField::Version, "1.2.3".into())
        );
        assert_eq!(
            ok("sethandshake buildNumber 42"),
            Command::SetHandshakeSys(SysField::BuildNumber, "42".into())
        );
        assert!(err("sethandshake [1]").starts_with("usage"));
        assert!(err("sethandshake").starts_with("usage"));
        assert!(err("sethandshake platform").starts_with("usage"));
        assert!(err("sethandshake {").contains("invalid json"));
    }

    #[test]
    fn simple_commands() {
        assert_eq!(ok("disconnect"), Command::Disconnect);
        assert_eq!(ok("history"), Command::History);
        assert_eq!(ok("help"), Command::Help);
        assert_eq!(ok("exit"), Command::Exit);
        assert_eq!(ok("quit"), Command::Exit);
        assert!(err("disconnect now").contains("unexpected"));
        assert!(err("frobnicate").contains("unknown command"));
    }

    #[test]
    fn sleep_and_wait_push() {
        assert_eq!(ok("sleep 250"), Command::Sleep(Duration::from_millis(250)));
        assert!(err("sleep").starts_with("usage"));
        assert!(err("sleep -1").starts_with("usage"));
        assert_eq!(
            ok("wait-push onMessage"),
            Command::WaitPush {
                route: "onMessage".into(),
                timeout: None,
            }
        );
        assert_eq!(
            ok("wait-push onMessage 1500"),
            Command::WaitPush {
                route: "onMessage".into(),
                timeout: Some(Duration::from_millis(1500)),
            }
        );
        assert!(err("wait-push").starts_with("usage"));
        assert!(err("wait-push a soon").starts_with("usage"));
    }
}

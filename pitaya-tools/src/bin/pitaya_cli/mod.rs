//! The pieces of `pitaya-cli`: the command language, payload conversion,
//! the session, and the interactive and script front ends.

pub(crate) mod command;
pub(crate) mod payload;
pub(crate) mod session;

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use rustyline::error::ReadlineError;
use rustyline::{Config, DefaultEditor, ExternalPrinter as _};
use tokio::runtime::Runtime;

use self::command::{Command, parse};
use self::session::{Printer, Session};

/// The prompt, as Go's pitaya-cli.
const PROMPT: &str = ">>> ";

/// The history file: `$PITAYACLI_HISTORY_PATH`, else
/// `~/.pitayacli_history`.
pub(crate) fn history_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PITAYACLI_HISTORY_PATH").filter(|path| !path.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".pitayacli_history"))
}

/// Runs commands from `input`, one a line. Results go to stdout, errors
/// (prefixed with the line number) to stderr; fails if any command failed.
pub(crate) fn run_script(
    runtime: &Runtime,
    session: &mut Session,
    input: impl BufRead,
) -> ExitCode {
    let mut failed = false;
    for (index, line) in input.lines().enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(err) => {
                eprintln!("reading line {number}: {err}");
                failed = true;
                break;
            }
        };
        let command = match parse(&line) {
            Ok(Some(command)) => command,
            Ok(None) => continue,
            Err(err) => {
                eprintln!("line {number}: {err}");
                failed = true;
                continue;
            }
        };
        if command == Command::Exit {
            break;
        }
        if let Err(err) = runtime.block_on(session.execute(command)) {
            eprintln!("line {number}: {err}");
            failed = true;
        }
        session.remember(line.trim());
    }
    runtime.block_on(session.disconnect());
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The interactive REPL.
pub(crate) fn run_interactive(runtime: &Runtime, session: &mut Session) -> ExitCode {
    let config = Config::builder()
        .max_history_size(10_000)
        .map(|builder| builder.auto_add_history(false).build())
        .unwrap_or_default();
    let mut editor = match DefaultEditor::with_config(config) {
        Ok(editor) => editor,
        Err(err) => {
            eprintln!("cannot start the line editor: {err}");
            return ExitCode::FAILURE;
        }
    };
    let history = history_path();
    if let Some(path) = &history
        && path.exists()
        && let Err(err) = editor.load_history(path)
    {
        eprintln!("cannot read the history {}: {err}", path.display());
    }
    // Pushes and disconnects are printed above the prompt without mangling
    // it; without a terminal they are simply printed.
    if let Ok(mut printer) = editor.create_external_printer() {
        let (lines, incoming) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in incoming {
                if printer.print(format!("{line}\n")).is_err() {
                    println!("{line}");
                }
            }
        });
        session.set_printer(Printer::External(lines));
    }

    loop {
        let line = match editor.readline(PROMPT) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(err) => {
                eprintln!("reading the command: {err}");
                break;
            }
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.trim());
            if let Some(path) = &history
                && let Err(err) = editor.append_history(path)
            {
                eprintln!("cannot write the history {}: {err}", path.display());
            }
        }
        match parse(&line) {
            Ok(None) => {}
            Ok(Some(Command::Exit)) => break,
            Ok(Some(Command::History)) => {
                for (index, entry) in editor.history().iter().enumerate() {
                    println!("{:>4}  {entry}", index + 1);
                }
            }
            Ok(Some(command)) => {
                if let Err(err) = runtime.block_on(session.execute(command)) {
                    eprintln!("{err}");
                }
            }
            Err(err) => eprintln!("{err}"),
        }
    }
    runtime.block_on(session.disconnect());
    ExitCode::SUCCESS
}

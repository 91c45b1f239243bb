//! Command-line interface: argument parsing, running the command, exit codes.
//!
//! - [`args`]: every command's arguments and help text;
//! - [`inputs`]: reading the inputs of a command (thread pools, progress);
//! - one file per command group: [`audit`], [`flows`] (`flows` and `dns`), [`ws`], [`merge`],
//!   [`allowlist`] (`check-allowlist`), `live` (with the `live` feature); `catalog` runs in
//!   [`catalog`]; `completions` and `man` in [`generated`].
//!
//! Every command returns `Result<exit code, Error>`; [`main`] is the one place an [`Error`] is
//! printed and turned into exit 2. The rules every command shares live here: [`written`] (a
//! broken pipe is not an error) and [`exit_code`] (input errors, then `--fail-on`).

use std::io;
use std::process::ExitCode;

use clap::Parser;

mod allowlist;
pub mod args;
mod audit;
pub mod catalog;
mod flows;
mod generated;
mod inputs;
#[cfg(feature = "live")]
pub(crate) mod live;
mod merge;
mod ws;

pub use args::*;
pub use inputs::{name_by_tags, read_inputs, ReadInputs};

/// The exit codes of every command (listed, per command, in the top-level help).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: the run worked and found nothing at or above `--fail-on`.
    Ok = 0,
    /// 1: a finding at or above `--fail-on`.
    Findings = 1,
    /// 2: no capture was read at all, an input could not be read to its end, the arguments
    /// were wrong, or the output could not be written.
    Error = 2,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// Why a command stopped before its report was done. Each is exit 2 (clap's help and version
/// excepted), and is printed once, by [`main`].
#[derive(Debug)]
pub enum Error {
    /// Bad arguments, or `--help` / `--version` (clap prints them; help and version exit 0).
    Args(clap::Error),
    /// Writing the report to stdout failed, other than by a broken pipe (see [`written`]).
    Output(io::Error),
    /// Anything else: the message (terminal escapes already made harmless), printed after
    /// `error: `.
    Message(String),
}

impl Error {
    /// Prints the error on stderr and returns its exit code.
    fn report(self) -> Exit {
        match self {
            Error::Args(e) => {
                let code = if e.use_stderr() {
                    Exit::Error
                } else {
                    Exit::Ok
                };
                let _ = e.print();
                code
            }
            Error::Output(e) => {
                eprintln!("error: writing output: {e}");
                Exit::Error
            }
            Error::Message(m) => {
                eprintln!("error: {m}");
                Exit::Error
            }
        }
    }
}

/// The broken-pipe rule of every command: when whoever reads stdout goes away
/// (`allowscope audit x.pcap | head -1`), the output just stops: no message, and the command
/// goes on to the exit code it would have had. Any other write error is an [`Error::Output`].
pub fn written(r: io::Result<()>) -> Result<(), Error> {
    match r {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::Output(e)),
        _ => Ok(()),
    }
}

/// The exit code of a command that ran to its end: an input that could not be read to its
/// end (`failed`) is exit 2, else a finding at or above `--fail-on` (`hit`) exit 1, else 0.
pub fn exit_code(failed: bool, hit: bool) -> Exit {
    if failed {
        Exit::Error
    } else if hit {
        Exit::Findings
    } else {
        Exit::Ok
    }
}

/// The `--fail-on` check of `audit`, `live` and `merge`: whether any finding, given as its
/// verdict's name and whether it is weak (a `local-block`, or named by a guess:
/// [`crate::audit::FailOn::hit`]), is at or above `fail_on`, or, from `websocket-problem` on,
/// a websocket instance is not healthy (`websocket_problem`).
pub fn fails<'a>(
    fail_on: crate::audit::FailOn,
    findings: impl IntoIterator<Item = (&'a str, bool)>,
    websocket_problem: bool,
) -> bool {
    (websocket_problem && fail_on.websockets())
        || findings
            .into_iter()
            .any(|(verdict, weak)| fail_on.hit(verdict, weak))
}

/// Parses the process arguments and runs the command.
pub fn run() -> Result<Exit, Error> {
    let cli = Cli::try_parse().map_err(Error::Args)?;
    match cli.command {
        Command::Flows(args) => flows::flows(&args, flows::View::Flows),
        Command::Dns(args) => flows::flows(&args, flows::View::Dns),
        Command::Audit(args) => audit::audit(&args, cli.color),
        Command::Merge(args) => merge::merge(&args, cli.color),
        Command::CheckAllowlist(args) => allowlist::run(&args),
        Command::Ws(args) => ws::ws(&args),
        Command::Catalog(c) => catalog::run(&c),
        #[cfg(feature = "live")]
        Command::Live(args) => live::run(&args, cli.color),
        #[cfg(not(feature = "live"))]
        Command::Live(_) => Err(Error::Message(NO_LIVE.into())),
        Command::Completions(args) => generated::completions(&args),
        Command::Man(args) => generated::man(&args),
        Command::Schema(args) => generated::schema(&args),
    }
}

/// What `allowscope live` says in a build without the `live` feature.
#[cfg(not(feature = "live"))]
const NO_LIVE: &str = "live capture is not in this build: install a build with it by \
`cargo install allowscope --features live` (or, in the source tree, `cargo build --release \
--features live`); it needs libpcap (apt-get install libpcap-dev)";

/// Runs the command and returns the exit code (an error printed on stderr).
pub fn main() -> ExitCode {
    run().unwrap_or_else(Error::report).into()
}

//! `allowscope completions SHELL` and `allowscope man`: generated from the clap definitions
//! of [`super::Cli`], so they cannot drift from the commands; `allowscope schema`, generated
//! from the output types ([`crate::report::schema`]).

use std::io::{self, Write};

use clap::CommandFactory;

use super::{written, CompletionsArgs, Error, Exit, ManArgs, SchemaArgs};
use crate::report::escape_terminal;

/// The completion script of the chosen shell, on stdout.
pub(super) fn completions(args: &CompletionsArgs) -> Result<Exit, Error> {
    let mut cmd = super::Cli::command();
    // Generated into memory first: the generators panic on a write error (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "allowscope", &mut script);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    written(out.write_all(&script).and_then(|()| out.flush()))?;
    Ok(Exit::Ok)
}

/// The manual page of `allowscope` on stdout, or with `--dir` a page per command written
/// there (`allowscope.1`, `allowscope-audit.1`, ...).
pub(super) fn man(args: &ManArgs) -> Result<Exit, Error> {
    let cmd = super::Cli::command();
    match &args.dir {
        Some(dir) => {
            clap_mangen::generate_to(cmd, dir).map_err(|e| {
                Error::Message(format!(
                    "writing the manual pages into {}: {e}",
                    escape_terminal(&dir.display().to_string())
                ))
            })?;
            Ok(Exit::Ok)
        }
        None => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            written(clap_mangen::Man::new(cmd).render(&mut out))?;
            written(out.flush())?;
            Ok(Exit::Ok)
        }
    }
}

/// The JSON Schema named `args.name` on stdout, or the names, one per line.
pub(super) fn schema(args: &SchemaArgs) -> Result<Exit, Error> {
    let text = match &args.name {
        Some(name) => {
            let schema = crate::report::schema::by_name(name)
                .ok_or_else(|| Error::Message(format!("no schema named {name}")))?;
            let mut text = serde_json::to_string_pretty(&schema)
                .map_err(|e| Error::Output(io::Error::from(e)))?;
            text.push('\n');
            text
        }
        None => crate::report::schema::names()
            .iter()
            .map(|n| format!("{n}\n"))
            .collect(),
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    written(out.write_all(text.as_bytes()).and_then(|()| out.flush()))?;
    Ok(Exit::Ok)
}

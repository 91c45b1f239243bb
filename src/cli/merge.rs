//! `allowscope merge`: audit JSON documents of separate runs put together.

use std::io::{self, Write};

use super::{exit_code, fails, Error, Exit, MergeArgs};
use crate::report::escape_terminal;

pub(super) fn merge(args: &MergeArgs) -> Result<Exit, Error> {
    let mut docs = Vec::new();
    for f in &args.files {
        let name = escape_terminal(&f.display().to_string()).into_owned();
        let text =
            std::fs::read_to_string(f).map_err(|e| Error::Message(format!("{name}: {e}")))?;
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => docs.push((name, v)),
            Err(e) => return Err(Error::Message(format!("{name}: not JSON: {e}"))),
        }
    }
    let merged = crate::audit::merge::merge(&docs).map_err(|e| Error::Message(e.to_string()))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // Unlike the other commands (see `written`), any write error, a broken pipe too, is exit
    // 2 here, and says nothing: kept as it was, since this refactor changes no exit code.
    if crate::report::pretty::to_writer_pretty(&mut out, &merged).is_err() || writeln!(out).is_err()
    {
        return Err(Error::Silent);
    }
    let _ = out.flush();
    if merged["complete"] == serde_json::Value::Bool(false) {
        let failed: Vec<String> = merged["failed_inputs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| escape_terminal(f["file"].as_str().unwrap_or("?")).into_owned())
            .collect();
        eprintln!(
            "error: the merged audit is incomplete: {} input{} failed in the documents ({})",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        );
        return Ok(exit_code(true, false));
    }
    let hit = fails(
        args.fail_on,
        merged["findings"]
            .as_array()
            .into_iter()
            .chain(merged["dns_failures"].as_array())
            .flatten()
            .map(|f| {
                let weak = f["mechanism"].as_str() == Some("local-block")
                    || f["name_guessed"].as_bool() == Some(true);
                (f["verdict"].as_str().unwrap_or(""), weak)
            }),
        merged["websockets"]["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["problem"].as_str().is_some_and(|p| p != "healthy")),
    );
    Ok(exit_code(false, hit))
}

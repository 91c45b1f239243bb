//! `allowscope merge`: audit JSON documents of separate runs put together.

use std::io::{self, Write};

use super::{exit_code, fails, Error, Exit, MergeArgs, MergeFormat};
use crate::audit::Mechanism;
use crate::report::escape_terminal;

pub(super) fn merge(args: &MergeArgs, color: super::ColorWhen) -> Result<Exit, Error> {
    let mut docs = Vec::new();
    for f in &args.files {
        let name = escape_terminal(&f.display().to_string()).into_owned();
        let text =
            std::fs::read_to_string(f).map_err(|e| Error::Message(format!("{name}: {e}")))?;
        let doc = crate::audit::merge::read(&name, &text).map_err(Error::Message)?;
        docs.push((name, doc));
    }
    let merged = crate::audit::merge::merge(docs).map_err(Error::Message)?;
    if let Some(language) = args.rules {
        let stdout = io::stdout();
        super::written(crate::report::rules::write_rules(
            &mut stdout.lock(),
            &merged.rules,
            language,
        ))?;
        return Ok(finish(args, &merged));
    }
    if args.format != MergeFormat::Json {
        let stdout = io::stdout();
        let format = match args.format {
            MergeFormat::Text => crate::report::audit::AuditFormat::Text,
            MergeFormat::Markdown => crate::report::audit::AuditFormat::Markdown,
            _ => crate::report::audit::AuditFormat::Html,
        };
        let color = format == crate::report::audit::AuditFormat::Text
            && color.wanted(std::io::IsTerminal::is_terminal(&stdout));
        super::written(report(&mut stdout.lock(), merged.clone(), format, color))?;
        return Ok(finish(args, &merged));
    }
    // Written as the merge always wrote it: through a JSON value, whose objects list their keys
    // sorted (the audit itself writes its fields in the structs' order).
    let value = serde_json::to_value(&merged).map_err(|e| Error::Message(e.to_string()))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    // The broken-pipe rule of every command (`written`): a reader that went away stops the
    // output, and the exit code is the merge's; any other write error is exit 2, said.
    super::written(
        crate::report::pretty::to_writer_pretty(&mut out, &value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush()),
    )?;
    Ok(finish(args, &merged))
}

/// Writes the report one run over all the documents' inputs would have written, from the
/// merged document: its inputs stand for the runs' inputs, without their flows.
fn report(
    out: &mut dyn Write,
    merged: crate::audit::merge::Document,
    format: crate::report::audit::AuditFormat,
    color: bool,
) -> io::Result<()> {
    let results: Vec<crate::pipeline::FileResult> = merged
        .inputs
        .into_iter()
        .map(|summary| crate::pipeline::FileResult {
            summary,
            flows: Vec::new(),
            dns: Vec::new(),
        })
        .collect();
    let judged = vec![Vec::new(); results.len()];
    let audit = crate::audit::Audit {
        findings: merged.findings,
        coverage: merged.coverage,
        dns_failures: merged.dns_failures,
        rules: merged.rules,
        private_endpoint_dns: merged.private_endpoint_dns,
        placeholders_seen: merged.placeholders_seen,
        counts: merged.counts,
        per_file: merged.per_file,
        websockets: merged.websockets,
        // A document holds no flows.
        folded: Default::default(),
        provenance: Some(merged.provenance),
    };
    crate::report::audit::write_audit(
        out,
        &audit,
        &judged,
        &results,
        &merged.failed_inputs,
        format,
        color,
        false,
        false,
    )
}

/// The exit code of a merge written out: 2, said on stderr, when a document's audit was
/// incomplete (as one run over all the inputs would be), else whether the merged findings or
/// websocket instances reach `--fail-on`.
fn finish(args: &MergeArgs, merged: &crate::audit::merge::Document) -> Exit {
    if merged.complete == Some(false) {
        let failed: Vec<String> = merged
            .failed_inputs
            .iter()
            .map(|f| escape_terminal(&f.file).into_owned())
            .collect();
        eprintln!(
            "error: the merged audit is incomplete: {} input{} failed in the documents ({})",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        );
        return exit_code(true, false);
    }
    let hit = fails(
        args.fail_on,
        merged.findings.iter().chain(&merged.dns_failures).map(|f| {
            let weak = f.mechanism == Some(Mechanism::LocalBlock) || f.name_guessed;
            (f.verdict.name(), weak)
        }),
        merged
            .websockets
            .instances
            .iter()
            .any(|i| i.problem != "healthy"),
    );
    exit_code(false, hit)
}

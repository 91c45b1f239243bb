//! The `dns` view: every lookup (a query and its response) with rcode, answers and CNAME
//! chain, and the queries that never got an answer.

use std::io::{self, Write};

use super::{escape_terminal, FlowsFormat};
use crate::names::lookups::lookups;
pub use crate::names::lookups::{AnswerJson, Answers, Lookup};
use crate::pipeline::FileResult;

/// The `dns` command's JSON document.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct DnsDocument<'a> {
    pub schema_version: u32,
    pub provenance: &'a crate::provenance::Provenance,
    /// Every lookup of every input, input by input.
    pub lookups: &'a [Lookup<'a>],
}

/// Writes the DNS lookups of all inputs.
pub fn write_dns(
    out: &mut dyn Write,
    results: &[FileResult],
    format: FlowsFormat,
    provenance: &crate::provenance::Provenance,
) -> io::Result<()> {
    let out = &mut super::buffered(out);
    let all: Vec<Lookup<'_>> = results
        .iter()
        .flat_map(|r| lookups(&r.dns, &r.summary.file))
        .collect();
    match format {
        FlowsFormat::Ndjson => {
            for l in &all {
                write_lookup(&mut *out, l, format, &provenance.labels)?;
            }
        }
        FlowsFormat::Json => {
            crate::report::pretty::to_writer_pretty(
                &mut *out,
                &DnsDocument {
                    schema_version: super::SCHEMA_VERSION,
                    provenance,
                    lookups: &all,
                },
            )?;
            out.write_all(b"\n")?;
        }
        FlowsFormat::Table => {
            for l in &all {
                write_lookup(&mut *out, l, format, &provenance.labels)?;
            }
        }
    }
    out.flush()
}

/// Writes one lookup as a row: a line of NDJSON, or a line of the table (any other format is
/// written whole by [`write_dns`]).
pub fn write_lookup(
    out: &mut dyn Write,
    l: &Lookup<'_>,
    format: FlowsFormat,
    labels: &std::collections::BTreeMap<String, String>,
) -> io::Result<()> {
    match format {
        FlowsFormat::Ndjson => {
            crate::report::pretty::to_writer_compact(
                &mut *out,
                &super::Labelled { row: l, labels },
            )?;
            out.write_all(b"\n")
        }
        _ => {
            let mut flags = Vec::new();
            if l.nodata {
                flags.push("nodata");
            }
            if l.sinkhole {
                flags.push("sinkhole");
            }
            if l.privatelink {
                flags.push("privatelink");
            }
            if l.truncated {
                flags.push("truncated");
            }
            if l.malformed.is_some() {
                flags.push("malformed");
            }
            let result = match (l.answered, l.rcode) {
                (true, Some(rc)) => rc.to_string(),
                _ => "no answer".to_string(),
            };
            let mut chain: Vec<String> = l
                .cnames
                .iter()
                .map(|n| escape_terminal(n).into_owned())
                .collect();
            if chain.len() <= 1 {
                chain.clear();
            }
            let mut answer = chain.join(" -> ");
            if !l.addresses.is_empty() {
                if !answer.is_empty() {
                    answer += " -> ";
                }
                answer += &crate::report::ips_text(&l.addresses);
            }
            writeln!(
                out,
                "{}  {} -> {} {}  {} {}  {}{}{}",
                l.time,
                l.client,
                l.server,
                l.transport,
                escape_terminal(l.qname.unwrap_or("-")),
                l.qtype.as_deref().unwrap_or("-"),
                result,
                if answer.is_empty() {
                    String::new()
                } else {
                    format!("  {answer}")
                },
                if flags.is_empty() {
                    String::new()
                } else {
                    format!("  [{}]", flags.join(", "))
                },
            )?;
            Ok(())
        }
    }
}

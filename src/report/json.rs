//! The audit as JSON (the versioned document) and as NDJSON (one judged flow per line).

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::audit::{AuditView, AuditWriter, FailedInput};
use super::{FlowRecord, SCHEMA_VERSION};
use crate::audit::{Audit, Verdict};
use crate::pipeline::{FileResult, FileSummary};

/// The JSON document (`schema_version`, inputs, findings, ...), indented.
pub struct Json;

impl AuditWriter for Json {
    fn write(&self, mut out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
        write_json(&mut out, v.audit, v.results, v.failed)?;
        out.write_all(b"\n")
    }
}

/// One line per row, each with its `kind` first and the run's `labels`: every flow (`flow`:
/// its flow record with the verdict, mechanism, confidence, evidence, entry and the port it was
/// meant for, which for a flow through a proxy is the CONNECT target's), then every DNS finding
/// (`dns-finding`) and every coverage line (`coverage`) of the document.
pub struct Ndjson;

/// A judged flow, a row of the audit's NDJSON (`kind` "flow").
#[derive(Serialize, schemars::JsonSchema)]
pub struct FlowRow<'a> {
    /// "flow".
    pub kind: &'static str,
    #[serde(flatten)]
    pub flow: FlowRecord<'a>,
    pub verdict: Verdict,
    pub mechanism: Option<crate::audit::Mechanism>,
    pub confidence: Option<crate::audit::Confidence>,
    pub evidence: &'a str,
    pub entry_id: Option<&'a str>,
    /// The port the client meant: a CONNECT target's or an absolute URL's through a
    /// proxy, else the server's.
    pub target_port: u16,
    pub labels: &'a BTreeMap<String, String>,
}

/// A row of the audit's NDJSON that is an item of the document (`kind` "dns-finding" or
/// "coverage"), with the run's labels.
#[derive(Serialize, schemars::JsonSchema)]
#[schemars(rename = "Row_{T}")]
pub struct Row<'a, T> {
    pub kind: &'static str,
    #[serde(flatten)]
    pub row: &'a T,
    pub labels: &'a BTreeMap<String, String>,
}

impl AuditWriter for Ndjson {
    fn write(&self, out: &mut dyn Write, v: &AuditView<'_>) -> io::Result<()> {
        for (r, js) in v.results.iter().zip(v.judged) {
            for (f, j) in r.flows.iter().zip(js) {
                crate::report::pretty::to_writer_compact(
                    &mut *out,
                    &FlowRow {
                        kind: "flow",
                        flow: FlowRecord::new(f, &r.summary.file),
                        verdict: j.verdict,
                        mechanism: j.mechanism,
                        confidence: j.confidence,
                        evidence: &j.evidence,
                        entry_id: j.entry_id.as_deref(),
                        target_port: crate::audit::target_port(f),
                        labels: &r.summary.labels,
                    },
                )?;
                out.write_all(b"\n")?;
            }
        }
        let none = BTreeMap::new();
        let labels = v.audit.provenance.as_ref().map_or(&none, |p| &p.labels);
        fn rows<T: Serialize>(
            out: &mut dyn Write,
            kind: &'static str,
            items: &[T],
            labels: &BTreeMap<String, String>,
        ) -> io::Result<()> {
            for row in items {
                crate::report::pretty::to_writer_compact(&mut *out, &Row { kind, row, labels })?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        rows(out, "dns-finding", &v.audit.dns_failures, labels)?;
        rows(out, "coverage", &v.audit.coverage, labels)?;
        Ok(())
    }
}

/// Writes the JSON document indented: the schema version, whether the audit is incomplete
/// (`"complete": false` and the `failed_inputs`, only when an input failed), the inputs'
/// summaries and the audit's fields, the same bytes as serializing them as one struct (a test
/// compares), except that the websocket connections, most of the document on a long capture,
/// are rendered on the rayon pool.
pub(super) fn write_json(
    out: &mut impl Write,
    audit: &Audit,
    results: &[FileResult],
    failed: &[FailedInput],
) -> io::Result<()> {
    let inputs: Vec<&FileSummary> = results.iter().map(|r| &r.summary).collect();
    // Destructured, so that a field added to the audit cannot be left out here.
    let Audit {
        findings,
        coverage,
        dns_failures,
        rules,
        private_endpoint_dns,
        placeholders_seen,
        counts,
        per_file,
        websockets:
            crate::audit::ws::WsReport {
                instances,
                connections,
                connections_total,
            },
        // Not in the document: what the human reports take of the flows.
        folded: _,
        provenance,
    } = audit;
    let mut doc = crate::report::pretty::Document::object(out)?;
    doc.field("schema_version", &SCHEMA_VERSION)?;
    if let Some(p) = provenance {
        doc.field("provenance", p)?;
    }
    if !failed.is_empty() {
        doc.field("complete", &false)?;
        doc.field("failed_inputs", failed)?;
    }
    doc.field("inputs", &inputs)?;
    doc.field("findings", findings)?;
    doc.field("coverage", coverage)?;
    doc.field("dns_failures", dns_failures)?;
    doc.field("rules", rules)?;
    doc.field("private_endpoint_dns", private_endpoint_dns)?;
    doc.field("placeholders_seen", placeholders_seen)?;
    doc.field("counts", counts)?;
    doc.field("per_file", per_file)?;
    doc.open("websockets", b"{")?;
    doc.field("instances", instances)?;
    doc.open("connections", b"[")?;
    doc.par_items(connections, |c| c)?;
    doc.close(b"]")?;
    doc.field("connections_total", connections_total)?;
    doc.close(b"}")?;
    doc.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON document as one struct.
    #[derive(Serialize, schemars::JsonSchema)]
    struct Doc<'a> {
        schema_version: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        provenance: Option<&'a crate::provenance::Provenance>,
        #[serde(skip_serializing_if = "Option::is_none")]
        complete: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        failed_inputs: Option<Vec<FailedInput>>,
        inputs: Vec<&'a FileSummary>,
        #[serde(flatten)]
        audit: &'a Audit,
    }

    /// The JSON written in pieces is the document serialized whole, on every capture of the
    /// project at once (websocket connections from several files, broken inputs: incomplete)
    /// and on one without any.
    #[test]
    fn json_in_pieces_is_the_whole_document() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let (inputs, _, _) = crate::capture::expand_inputs(std::slice::from_ref(&dir));
        let cfg = crate::flow::FlowConfig::default();
        let catalog = crate::catalog::Catalog::builtin();
        let mut all: Vec<FileResult> = inputs
            .iter()
            .map(|i| crate::pipeline::analyze_input(i, &cfg))
            .collect();
        let mut none = vec![crate::pipeline::analyze_input(
            &crate::capture::Input::File(dir.join("tcp-outcomes.pcap")),
            &cfg,
        )];
        for (results, connections) in [(&mut all, true), (&mut none, false)] {
            let (mut audit, _) = crate::audit::audit(results, &catalog);
            audit.provenance = connections.then(|| {
                crate::provenance::Provenance::of_run(
                    "audit",
                    Some(&catalog),
                    crate::provenance::Options::of(&crate::flow::FlowConfig::default()),
                    &[("host".to_string(), "a".to_string())].into(),
                )
            });
            let results: &[FileResult] = results;
            assert_eq!(!audit.websockets.connections.is_empty(), connections);
            let failed = FailedInput::of(results);
            assert_eq!(!failed.is_empty(), connections);
            let mut ours = Vec::new();
            write_json(&mut ours, &audit, results, &failed).unwrap();
            let whole = serde_json::to_string_pretty(&Doc {
                schema_version: SCHEMA_VERSION,
                provenance: audit.provenance.as_ref(),
                complete: (!failed.is_empty()).then_some(false),
                failed_inputs: (!failed.is_empty()).then_some(failed),
                inputs: results.iter().map(|r| &r.summary).collect(),
                audit: &audit,
            })
            .unwrap();
            assert!(String::from_utf8(ours).unwrap() == whole);
        }
    }
}

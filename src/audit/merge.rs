//! `allowscope merge`: combine audit JSON documents written by separate runs (shards of a batch,
//! several machines) into the document one run over all their inputs would have written.
//!
//! A document is read typed, as a [`Document`] made of the audit's own parts (each read back
//! as the audit writes it), so that anything malformed or hostile is an error naming the file
//! and what is wrong (serde's words and the line and column), never a panic. A field the build
//! does not know is an error too, not ignored: merging must know how to put each field of two
//! documents together (add, join, keep the earliest), and a document it cannot merge whole
//! would be merged into one that silently lacks what a run would have written. A document of
//! another schema version is refused for the same reason.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::ws::WsReport;
use super::{
    Counts, Coverage, Finding, Mechanism, PerFile, PrivateEndpointProblem, Verdict, SCHEMA_VERSION,
};
use crate::pipeline::FileSummary;
use crate::provenance::{labels_text, Provenance};
use crate::text::escape_terminal;
use crate::time::parse_rfc3339;

/// An audit JSON document, as `allowscope audit --format json` writes it: the schema version,
/// the inputs' summaries, then the [`super::Audit`]'s fields in its order.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    pub schema_version: u64,
    /// What produced the document (see [`crate::provenance`]).
    pub provenance: Provenance,
    /// `false` when an input of the audit failed (absent when none did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<bool>,
    /// The inputs that failed (absent when none did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_inputs: Vec<super::FailedInput>,
    pub inputs: Vec<FileSummary>,
    pub findings: Vec<Finding>,
    pub coverage: Vec<Coverage>,
    pub dns_failures: Vec<Finding>,
    /// Recomputed from the merged findings (a document of a build before the rules has none).
    #[serde(default)]
    pub rules: super::rules::Rules,
    pub private_endpoint_dns: Vec<PrivateEndpointProblem>,
    pub placeholders_seen: BTreeMap<String, BTreeSet<String>>,
    pub counts: Counts,
    pub per_file: Vec<PerFile>,
    pub websockets: WsReport,
}

/// The sort key of a finding: verdict, first time seen, name, protocol, port, mechanism
/// (borrowed: a sort compares keys many times).
pub fn finding_order(f: &Finding) -> (Verdict, i64, &str, &str, Option<u16>, &'static str) {
    (
        f.verdict,
        f.first_ns,
        &f.name,
        &f.proto,
        f.dst_port,
        f.mechanism.map_or("", |m| m.name()),
    )
}

/// Sorts findings by [`finding_order`], stably, moving each finding once (a finding is
/// large: a sort that moved them as it compared copied them many times).
pub fn sort_findings(findings: &mut Vec<Finding>) {
    let mut order: Vec<usize> = (0..findings.len()).collect();
    order.sort_by(|&a, &b| finding_order(&findings[a]).cmp(&finding_order(&findings[b])));
    let mut slots: Vec<Option<Finding>> = std::mem::take(findings).into_iter().map(Some).collect();
    *findings = order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect();
}

/// Reads the document `text` of the file `name` (escaped for a terminal already).
pub fn read(name: &str, text: &str) -> Result<Document, String> {
    /// The version alone, to say so when a document of another version does not read.
    #[derive(Deserialize)]
    struct Version {
        schema_version: u64,
    }
    let other_version = |v: u64| {
        format!(
            "{name}: schema_version {v}: this build reads audit documents of version {SCHEMA_VERSION} only"
        )
    };
    // serde reads a struct from a list of its fields too: a document is an object.
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Err(e) => format!("{name}: not JSON: {e}"),
            Ok(_) => format!("{name}: not an allowscope audit JSON document (not an object)"),
        });
    }
    let mut doc = match serde_json::from_str::<Document>(text) {
        Ok(doc) => doc,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(format!("{name}: not JSON: {e}")),
        Err(e) => {
            return Err(match serde_json::from_str::<Version>(text) {
                Ok(Version { schema_version: v }) if v != u64::from(SCHEMA_VERSION) => {
                    other_version(v)
                }
                _ => format!(
                    "{name}: not an allowscope audit JSON document (schema_version {SCHEMA_VERSION}): {}",
                    escape_terminal(&e.to_string())
                ),
            })
        }
    };
    if doc.schema_version != u64::from(SCHEMA_VERSION) {
        return Err(other_version(doc.schema_version));
    }
    // Times out of range are no time: sorted last.
    for f in doc.findings.iter_mut().chain(&mut doc.dns_failures) {
        f.first_ns = parse_rfc3339(&f.first_seen).unwrap_or(i64::MAX);
    }
    Ok(doc)
}

/// The error of a sum of counts too large for a u64 (`at` says where).
fn overflow(name: &str, at: &str) -> String {
    format!(
        "{name}: {}: the counts add up to more than {}",
        escape_terminal(at),
        u64::MAX
    )
}

/// Adds the counts of `more` to `to`; the name of the count whose sum does not fit if one does
/// not.
fn add_counts(to: &mut Counts, more: Counts) -> Result<(), String> {
    for (k, n) in more {
        let sum = to.entry(k.clone()).or_default();
        *sum = sum.checked_add(n).ok_or_else(|| k.into_owned())?;
    }
    Ok(())
}

/// A finding's group: verdict, mechanism, entry, name, protocol, port.
type Group = (
    Verdict,
    Option<Mechanism>,
    Option<String>,
    String,
    String,
    Option<u16>,
);

/// The findings of the list `list` of every document, grouped and sorted as one run does.
fn merge_findings(docs: Vec<(&str, Vec<Finding>)>, list: &str) -> Result<Vec<Finding>, String> {
    let mut out: Vec<Finding> = Vec::new();
    let mut at: BTreeMap<Group, usize> = BTreeMap::new();
    for (name, findings) in docs {
        for (i, f) in findings.into_iter().enumerate() {
            let group = (
                f.verdict,
                f.mechanism,
                f.entry.as_ref().map(|e| e.id.clone()),
                f.name.clone(),
                f.proto.to_string(),
                f.dst_port,
            );
            match at.get(&group).and_then(|&j| out.get_mut(j)) {
                Some(into) => into
                    .absorb(f)
                    .map_err(|k| overflow(name, &format!("{list}[{i}].{k}")))?,
                None => {
                    at.insert(group, out.len());
                    out.push(f);
                }
            }
        }
    }
    sort_findings(&mut out);
    Ok(out)
}

/// Merges the coverage line `c` into `into`, a line of the same entry; the place (under the
/// line) of the count whose sum does not fit if one does not.
fn merge_coverage_line(into: &mut Coverage, c: Coverage) -> Result<(), String> {
    into.exercised |= c.exercised;
    into.names.extend(c.names);
    add_counts(&mut into.verdicts, c.verdicts).map_err(|k| format!("verdicts.{k}"))?;
    for (file, counts) in c.by_file {
        let row = into.by_file.entry(file.clone()).or_default();
        add_counts(row, counts).map_err(|k| format!("by_file.{file}.{k}"))?;
    }
    // Credit through another entry only while the entry has none of its own.
    into.credited_via = match into.verdicts.is_empty() {
        true => into.credited_via.take().or(c.credited_via),
        false => None,
    };
    Ok(())
}

/// The coverage lines of every document, one per entry in the order entries first appear.
fn merge_coverage(docs: Vec<(&str, Vec<Coverage>)>) -> Result<Vec<Coverage>, String> {
    let mut out: Vec<Coverage> = Vec::new();
    let mut at: BTreeMap<String, usize> = BTreeMap::new();
    for (name, lines) in docs {
        for (i, c) in lines.into_iter().enumerate() {
            match at.get(&c.entry.id).and_then(|&j| out.get_mut(j)) {
                Some(into) => merge_coverage_line(into, c)
                    .map_err(|k| overflow(name, &format!("coverage[{i}].{k}")))?,
                None => {
                    at.insert(c.entry.id.clone(), out.len());
                    out.push(c);
                }
            }
        }
    }
    Ok(out)
}

/// Checks that the documents belong in one audit and gives the merged document's provenance:
/// the same catalog (digest), cloud and scenarios, and no input twice (by SHA-256) or two
/// inputs under one name. When the documents' labels differ, every input is renamed after
/// its document's labels (`host=a:trace.pcap`), so that two hosts' `trace.pcap` stay apart.
/// Errors name the documents and what differs.
fn belong_together(docs: &mut [(String, Document)]) -> Result<Provenance, String> {
    let Some((first_name, first)) = docs.first() else {
        return Err("no document to merge".into());
    };
    let (first_name, p0) = (first_name.clone(), first.provenance.clone());
    let cloud =
        |p: &Provenance| escape_terminal(p.cloud.as_deref().unwrap_or("every cloud")).into_owned();
    let scenarios = |p: &Provenance| escape_terminal(&p.scenarios.join(", ")).into_owned();
    let catalog = |p: &Provenance| {
        escape_terminal(p.catalog.as_ref().map_or("none", |c| c.digest.as_str())).into_owned()
    };
    for (name, d) in docs.iter().skip(1) {
        let p = &d.provenance;
        let differs = if p.cloud != p0.cloud {
            Some(format!("clouds ({} and {})", cloud(&p0), cloud(p)))
        } else if p.scenarios != p0.scenarios {
            Some(format!(
                "scenarios ({} and {})",
                scenarios(&p0),
                scenarios(p)
            ))
        } else if p.catalog.as_ref().map(|c| &c.digest) != p0.catalog.as_ref().map(|c| &c.digest) {
            Some(format!("catalogs ({} and {})", catalog(&p0), catalog(p)))
        } else {
            None
        };
        if let Some(what) = differs {
            return Err(format!(
                "{first_name} and {name} were audited against different {what}: their findings do not add up (audit them with the same --catalog, --cloud and --scenario)"
            ));
        }
    }
    // Renamed after their labels when the inputs' labels differ (an input a merge renamed
    // already keeps its name: merges of merged documents name each input once).
    let mut label_sets = BTreeSet::new();
    for (_, d) in docs.iter() {
        label_sets.insert(&d.provenance.labels);
        label_sets.extend(d.inputs.iter().map(|i| &i.labels));
    }
    if label_sets.len() > 1 {
        for (_, d) in docs.iter_mut() {
            rename_inputs(d);
        }
    }
    // No input twice, and no two inputs under one name.
    let mut by_digest: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
    let mut by_file: BTreeMap<&str, (&str, Option<&str>)> = BTreeMap::new();
    for (name, d) in docs.iter() {
        let mut mine: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        let mut my_files: BTreeMap<&str, (&str, Option<&str>)> = BTreeMap::new();
        for i in &d.inputs {
            let sha = i.sha256.as_deref();
            if let Some(sha) = sha {
                if let Some((other, file)) = by_digest.get(sha) {
                    return Err(format!(
                        "{other} and {name} both audited the same input ({} and {}, SHA-256 {}): merged, it would count twice",
                        escape_terminal(file),
                        escape_terminal(&i.file),
                        escape_terminal(sha)
                    ));
                }
                mine.insert(sha, (name, &i.file));
            }
            // (The same digest under one name was refused above as the same input twice.)
            if let Some((other, other_sha)) = by_file.get(i.file.as_str()) {
                let contents = match (other_sha, sha) {
                    (Some(_), Some(_)) => "with other contents",
                    _ => "(one not read to its end, so their contents cannot be compared)",
                };
                return Err(format!(
                    "{other} and {name} each have an input named {} {contents}: give each run its own --label (e.g. --label host=NAME) so that the merge can tell them apart",
                    escape_terminal(&i.file)
                ));
            }
            my_files.insert(&i.file, (name, sha));
        }
        by_digest.extend(mine);
        by_file.extend(my_files);
    }
    // The merged document's provenance: this build, what every document shares, and each
    // document's own (a merged document's sources in its place).
    let mut placeholders = p0.placeholders.clone();
    let mut labels = p0.labels.clone();
    let mut sources = Vec::new();
    for (_, d) in docs.iter() {
        let p = &d.provenance;
        placeholders.retain(|k, v| p.placeholders.get(k) == Some(v));
        labels.retain(|k, v| p.labels.get(k) == Some(v));
        if p.sources.is_empty() {
            sources.push(p.clone());
        } else {
            sources.extend(p.sources.iter().cloned());
        }
    }
    Ok(Provenance {
        tool: crate::provenance::Tool::this(),
        command: "merge".into(),
        catalog: p0.catalog,
        cloud: p0.cloud,
        scenarios: p0.scenarios,
        placeholders,
        options: None,
        labels,
        sources,
    })
}

/// Names every input of `d` after its labels (`host=a:trace.pcap`), in every place that names
/// it, unless it already is (a merged document's); an input the document lists only as failed
/// takes the document's labels.
fn rename_inputs(d: &mut Document) {
    let named = |labels: &BTreeMap<String, String>, file: &str| {
        let prefix = labels_text(labels);
        let prefix = format!("{prefix}:");
        (prefix.len() > 1 && !file.starts_with(&prefix)).then(|| format!("{prefix}{file}"))
    };
    let mut renames: BTreeMap<String, String> = BTreeMap::new();
    for i in &d.inputs {
        if let Some(n) = named(&i.labels, &i.file) {
            renames.insert(i.file.clone(), n);
        }
    }
    for f in &d.failed_inputs {
        if !renames.contains_key(&f.file) && !d.inputs.iter().any(|i| i.file == f.file) {
            if let Some(n) = named(&d.provenance.labels, &f.file) {
                renames.insert(f.file.clone(), n);
            }
        }
    }
    if renames.is_empty() {
        return;
    }
    let new = |f: &str| renames.get(f).cloned().unwrap_or_else(|| f.to_string());
    // Messages that begin with the input's name.
    let message = |m: &str| match renames.iter().find(|(f, _)| m.starts_with(f.as_str())) {
        Some((f, n)) => format!("{n}{}", &m[f.len()..]),
        None => m.to_string(),
    };
    for i in &mut d.inputs {
        i.file = new(&i.file);
        i.error = i.error.as_deref().map(message);
        for w in &mut i.warnings {
            *w = message(w);
        }
    }
    for f in &mut d.failed_inputs {
        f.file = new(&f.file);
        f.error = message(&f.error);
    }
    for f in d.findings.iter_mut().chain(&mut d.dns_failures) {
        f.files = f.files.iter().map(|x| new(x)).collect();
    }
    for c in &mut d.coverage {
        c.by_file = std::mem::take(&mut c.by_file)
            .into_iter()
            .map(|(k, v)| (new(&k), v))
            .collect();
    }
    for p in &mut d.per_file {
        p.file = new(&p.file);
    }
    for p in &mut d.private_endpoint_dns {
        p.file = new(&p.file);
    }
    let examples = d
        .websockets
        .instances
        .iter_mut()
        .flat_map(|i| [&mut i.legs.client, &mut i.legs.upstream])
        .flat_map(|t| t.examples.iter_mut());
    for w in d.websockets.connections.iter_mut().chain(examples) {
        w.file = new(&w.file);
    }
}

/// Merges documents read by [`read`] (with their file names, escaped for a terminal). Errors
/// name the document and what is wrong.
pub fn merge(mut docs: Vec<(String, Document)>) -> Result<Document, String> {
    let provenance = belong_together(&mut docs)?;
    let mut names = Vec::new();
    let mut inputs = Vec::new();
    let (mut findings, mut coverage, mut dns_failures) = (Vec::new(), Vec::new(), Vec::new());
    let mut private_endpoint_dns = Vec::new();
    let mut placeholders_seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut counts = Counts::new();
    let mut per_file = Vec::new();
    let mut ws = super::ws::WsView::new(super::ws::SAMPLE_CONNECTIONS);
    let mut failed_inputs = Vec::new();
    let mut complete = None;
    for (name, d) in docs {
        // A document whose audit is incomplete makes the merge incomplete, as one run would be.
        if d.complete == Some(false) || !d.failed_inputs.is_empty() {
            complete = Some(false);
        }
        failed_inputs.extend(d.failed_inputs);
        add_counts(&mut counts, d.counts).map_err(|k| overflow(&name, &format!("counts.{k}")))?;
        inputs.extend(d.inputs);
        findings.push(d.findings);
        coverage.push(d.coverage);
        dns_failures.push(d.dns_failures);
        private_endpoint_dns.extend(d.private_endpoint_dns);
        for (k, vs) in d.placeholders_seen {
            placeholders_seen.entry(k).or_default().extend(vs);
        }
        per_file.extend(d.per_file);
        super::ws::WsView::of_report(d.websockets, super::ws::SAMPLE_CONNECTIONS)
            .and_then(|v| ws.merge(v))
            .map_err(|e| match e {
                super::ws::TallyError::Overflow(at) => overflow(&name, &at),
                super::ws::TallyError::Inconsistent(at) => format!(
                    "{name}: {}: counts and examples that no audit writes",
                    escape_terminal(&at)
                ),
            })?;
        names.push(name);
    }
    let names = || names.iter().map(String::as_str);
    let findings = merge_findings(names().zip(findings).collect(), "findings")?;
    let dns_failures = merge_findings(names().zip(dns_failures).collect(), "dns_failures")?;
    Ok(Document {
        schema_version: u64::from(SCHEMA_VERSION),
        provenance,
        complete,
        failed_inputs,
        inputs,
        rules: super::rules::rules(&findings, &dns_failures),
        findings,
        coverage: merge_coverage(names().zip(coverage).collect())?,
        dns_failures,
        private_endpoint_dns,
        placeholders_seen,
        counts,
        per_file,
        // The diagnosis per instance recomputed from the tallies of all documents (an
        // instance's connections may come from several).
        websockets: ws.report(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The audit JSON document of `captures` (files of the project's captures/), one run.
    fn audit_json(captures: &[&str]) -> String {
        audit_json_labelled(captures, &[])
    }

    /// [`audit_json`], the run labelled with `labels`.
    fn audit_json_labelled(captures: &[&str], labels: &[(&str, &str)]) -> String {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let paths: Vec<_> = captures.iter().map(|c| dir.join(c)).collect();
        let (inputs, _, _) = crate::capture::expand_inputs(&paths);
        let cfg = crate::flow::FlowConfig::default();
        let mut results: Vec<_> = inputs
            .iter()
            .map(|i| crate::pipeline::analyze_input(i, &cfg))
            .collect();
        let catalog = crate::catalog::Catalog::builtin();
        let (mut audit, judged) = crate::audit::audit(&mut results, &catalog);
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for r in &mut results {
            r.summary.labels.clone_from(&labels);
        }
        audit.provenance = Some(Provenance::of_run(
            "audit",
            Some(&catalog),
            crate::provenance::Options::of(&cfg),
            &labels,
        ));
        let mut out = Vec::new();
        crate::report::audit::write_audit(
            &mut out,
            &audit,
            &judged,
            &results,
            &[],
            crate::report::audit::AuditFormat::Json,
            false,
            false,
            false,
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Every field of the document is read typed and written back as it was: the audit of
    /// every capture of the project at once (websocket connections, DNS failures, private
    /// endpoints, undecodable inputs among them), read as a [`Document`], is the same JSON.
    #[test]
    fn every_capture_reads_back_as_written() {
        let text = audit_json(&["."]);
        let doc = read("all", &text).unwrap();
        for (part, empty) in [
            ("findings", doc.findings.is_empty()),
            ("dns_failures", doc.dns_failures.is_empty()),
            ("private_endpoint_dns", doc.private_endpoint_dns.is_empty()),
            ("placeholders_seen", doc.placeholders_seen.is_empty()),
            ("websockets", doc.websockets.connections.is_empty()),
            (
                "credited",
                !doc.coverage.iter().any(|c| c.credited_via.is_some()),
            ),
            ("error", !doc.inputs.iter().any(|i| i.error.is_some())),
        ] {
            assert!(!empty, "no {part} to read back");
        }
        let back = serde_json::to_value(&doc).unwrap();
        assert!(back == serde_json::from_str::<Value>(&text).unwrap());
        // One document merged alone is itself.
        let merged = merge(vec![("all".into(), doc)]).unwrap();
        let mut merged = serde_json::to_value(&merged).unwrap();
        assert!(merged["provenance"]["sources"][0] == back["provenance"]);
        assert!(merged["provenance"]["command"] == "merge");
        merged["provenance"] = back["provenance"].clone();
        assert!(merged == back);
        // A guessed name (written only when true) reads back too.
        let mut guessed = back;
        guessed["findings"][0]["name_guessed"] = Value::Bool(true);
        let doc = read("guessed", &guessed.to_string()).unwrap();
        assert!(doc.findings[0].name_guessed);
        assert!(serde_json::to_value(&doc).unwrap() == guessed);
    }

    /// A document whose websocket tallies no audit writes (a diagnosis counted beyond its
    /// connections, or without its example; a count past a u64 once added) is refused, naming
    /// the document and the place, rather than merged into a wrong diagnosis.
    #[test]
    fn websocket_tallies_that_do_not_hold_are_refused() {
        let text = audit_json(&["ws-client.pcap"]);
        let good = read("good", &audit_json(&["ws-firewall.pcapng"])).unwrap();
        let changed = |change: &dyn Fn(&mut Value)| {
            let mut v: Value = serde_json::from_str(&text).unwrap();
            change(&mut v["websockets"]["instances"][0]["legs"]["client"]);
            read("changed", &v.to_string()).unwrap()
        };
        let merged =
            |d: Document| merge(vec![("good".into(), good.clone()), ("changed".into(), d)]);
        let counted = changed(&|t| t["diagnoses"]["healthy"] = 1.into());
        let e = merged(counted).unwrap_err();
        assert!(
            e.starts_with("changed: websockets.instances[name=ci-deny.westeurope.instances.azureml.ms].legs.client.examples (0 of healthy)")
                && e.ends_with("counts and examples that no audit writes"),
            "{e}"
        );
        let no_example = changed(&|t| t["examples"] = Value::Array(Vec::new()));
        let e = merged(no_example).unwrap_err();
        assert!(
            e.contains("legs.client.examples (0 of ws-upgrade-failed)"),
            "{e}"
        );
        let short = changed(&|t| t["short_connections"] = 2.into());
        assert!(merged(short)
            .unwrap_err()
            .contains("legs.client.short_connections"));
        let huge = changed(&|t| {
            t["connections"] = u64::MAX.into();
            t["diagnoses"]["ws-upgrade-failed"] = u64::MAX.into();
        });
        let e = merged(huge).unwrap_err();
        assert!(
            e.contains("legs.client.diagnoses.ws-upgrade-failed: the counts add up to more than"),
            "{e}"
        );
        assert!(merged(changed(&|_| {})).is_ok());
    }

    /// Every leaf of a document replaced by a hostile value, and every field removed: reading
    /// and merging never panic.
    #[test]
    fn hostile_documents_never_panic() {
        let text = audit_json(&["audit-client.pcap", "ws-client.pcap"]);
        let good: Value = serde_json::from_str(&text).unwrap();
        let hostile = [
            Value::Null,
            serde_json::json!(u64::MAX),
            serde_json::json!(-1),
            serde_json::json!(1e300),
            serde_json::json!(""),
            serde_json::json!("9223372036854775807-99-99T99:99:99Z"),
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!(true),
        ];
        // Every path to a leaf or a field (object keys and list indexes).
        fn paths(v: &Value, at: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
            out.push(at.clone());
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        at.push(Value::from(k.as_str()));
                        paths(x, at, out);
                        at.pop();
                    }
                }
                Value::Array(a) => {
                    // The first items stand for the rest.
                    for (i, x) in a.iter().enumerate().take(2) {
                        at.push(Value::from(i));
                        paths(x, at, out);
                        at.pop();
                    }
                }
                _ => {}
            }
        }
        fn at<'a>(v: &'a mut Value, path: &[Value]) -> &'a mut Value {
            path.iter().fold(v, |v, p| match p {
                Value::String(k) => &mut v[k.as_str()],
                _ => &mut v[p.as_u64().unwrap() as usize],
            })
        }
        let mut all = Vec::new();
        paths(&good, &mut Vec::new(), &mut all);
        assert!(all.len() > 300, "{}", all.len());
        let good_doc = read("good", &text).unwrap();
        let (mut read_ok, mut read_err) = (0, 0);
        for (n, path) in all.iter().enumerate().skip(1) {
            let mut changed = good.clone();
            let (last, parent) = path.split_last().unwrap();
            if n % 4 == 0 {
                match (at(&mut changed, parent), last) {
                    (Value::Object(m), Value::String(k)) => {
                        m.remove(k);
                    }
                    (Value::Array(a), _) => {
                        a.clear();
                    }
                    _ => {}
                }
            } else {
                *at(&mut changed, path) = hostile[n % hostile.len()].clone();
            }
            match read("changed", &changed.to_string()) {
                Ok(doc) => {
                    read_ok += 1;
                    let _ = merge(vec![
                        ("good".into(), good_doc.clone()),
                        ("changed".into(), doc),
                    ]);
                }
                Err(e) => {
                    read_err += 1;
                    assert!(e.starts_with("changed: "), "{e}");
                }
            }
        }
        assert!(
            read_ok > 10 && read_err > 100,
            "{read_ok} read, {read_err} refused"
        );
    }

    fn doc(captures: &[&str], labels: &[(&str, &str)]) -> Document {
        read("d", &audit_json_labelled(captures, labels)).unwrap()
    }

    /// Documents that do not belong together are refused, naming both and what differs.
    #[test]
    fn merge_refuses_what_does_not_belong_together() {
        let a = doc(&["audit-client.pcap"], &[("host", "a")]);
        let b = doc(&["ws-client.pcap"], &[("host", "b")]);
        let err = |x: &Document, y: &Document| {
            merge(vec![
                ("x.json".into(), x.clone()),
                ("y.json".into(), y.clone()),
            ])
            .unwrap_err()
        };
        let mut other = b.clone();
        other.provenance.cloud = Some("china".into());
        let e = err(&a, &other);
        assert!(
            e.starts_with(
                "x.json and y.json were audited against different clouds (every cloud and china)"
            ),
            "{e}"
        );
        let mut other = b.clone();
        other.provenance.scenarios.push("vscode".into());
        assert!(err(&a, &other).contains("different scenarios"));
        let mut other = b.clone();
        other.provenance.catalog.as_mut().unwrap().digest = "sha256:00".into();
        assert!(err(&a, &other).contains("different catalogs"));
        // The same capture in two documents, whatever their labels.
        let a2 = doc(&["audit-client.pcap"], &[("host", "c")]);
        let e = err(&a, &a2);
        assert!(
            e.contains("both audited the same input") && e.contains("SHA-256 c596c60b"),
            "{e}"
        );
        // Two captures under one name and the same labels.
        let mut renamed = b.clone();
        renamed.inputs[0].file = a.inputs[0].file.clone();
        renamed.provenance.labels = a.provenance.labels.clone();
        renamed.inputs[0].labels = a.inputs[0].labels.clone();
        let e = err(&a, &renamed);
        assert!(
            e.contains("each have an input named") && e.contains("with other contents"),
            "{e}"
        );
        // One of them not read to its end: nothing says their contents differ.
        renamed.inputs[0].sha256 = None;
        let e = err(&a, &renamed);
        assert!(
            e.contains("contents cannot be compared") && e.contains("--label"),
            "{e}"
        );
        // Documents that belong together merge.
        assert!(merge(vec![("x.json".into(), a), ("y.json".into(), b)]).is_ok());
    }

    /// Documents with different labels: every input is named after its document's labels, in
    /// every place that names it, and the merged provenance keeps each source's and the labels
    /// they share.
    #[test]
    fn merge_keys_inputs_by_label_and_path() {
        let a = doc(&["audit-client.pcap"], &[("host", "a"), ("site", "eu")]);
        let b = doc(&["ws-client.pcap"], &[("host", "b"), ("site", "eu")]);
        // Both hosts' captures are called the same.
        let same = a.inputs[0].file.clone();
        let old = b.inputs[0].file.clone();
        let mut text = serde_json::to_string(&b).unwrap();
        text = text.replace(&format!("\"{old}"), &format!("\"{same}"));
        let b = read("b", &text).unwrap();
        let m = merge(vec![("a.json".into(), a), ("b.json".into(), b)]).unwrap();
        let files: Vec<&str> = m.inputs.iter().map(|i| i.file.as_str()).collect();
        assert_eq!(
            files,
            [
                format!("host=a,site=eu:{same}"),
                format!("host=b,site=eu:{same}")
            ]
        );
        let back = serde_json::to_string(&m).unwrap();
        assert!(
            !back.contains(&format!("\"{same}")),
            "an input left unrenamed"
        );
        assert!(m.per_file.iter().all(|p| p.file.starts_with("host=")));
        assert!(m
            .websockets
            .connections
            .iter()
            .all(|c| c.file.starts_with("host=")));
        assert_eq!(m.provenance.command, "merge");
        assert_eq!(m.provenance.sources.len(), 2);
        assert_eq!(labels_text(&m.provenance.labels), "site=eu");
        // A merged document merged again keeps its sources, not itself.
        let c = doc(&["tcp-outcomes.pcap"], &[("host", "c"), ("site", "eu")]);
        let again = merge(vec![("m.json".into(), m), ("c.json".into(), c)]).unwrap();
        assert_eq!(again.provenance.sources.len(), 3);
        // Each input named once after its own labels, not again after the merge's.
        let files: Vec<&str> = again.inputs.iter().map(|i| i.file.as_str()).collect();
        assert!(
            files[..2]
                == [
                    format!("host=a,site=eu:{same}"),
                    format!("host=b,site=eu:{same}")
                ],
            "{files:?}"
        );
        assert!(
            files[2].starts_with("host=c,site=eu:") && !files[2].contains(":host="),
            "{files:?}"
        );
    }
}

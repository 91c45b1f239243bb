//! `allowscope merge`: combine audit JSON documents written by separate runs (shards of a batch,
//! several machines) into the document one run over all their inputs would have written.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::judge::rank;
use super::{Finding, Verdict};
use crate::flow::Outcome;
use crate::time::parse_rfc3339;

/// The sort key of a finding: verdict, first time seen, name, protocol, port, mechanism
/// (borrowed: a sort compares keys many times).
pub fn finding_order(f: &Finding) -> (Verdict, i64, &str, &'static str, Option<u16>, &'static str) {
    (
        f.verdict,
        f.first_ns,
        &f.name,
        f.proto,
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

/// A finding's verdict's place in [`Verdict`]'s order (an unknown one last).
fn verdict_rank(v: &Value) -> usize {
    v.as_str()
        .and_then(Verdict::from_name)
        .map_or(usize::MAX, |v| v as usize)
}

/// An outcome's place from best to worst (see [`rank`]; an unknown one or none last).
fn outcome_rank(v: &Value) -> usize {
    v.as_str()
        .and_then(Outcome::from_name)
        .map_or(usize::MAX, |o| usize::from(rank(o)))
}

fn key(f: &Value) -> String {
    format!(
        "{}|{}|{}|{}|{}|{}",
        f["verdict"], f["mechanism"], f["entry"]["id"], f["name"], f["proto"], f["dst_port"]
    )
}

fn first_ns(f: &Value) -> i64 {
    f["first_seen"]
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or(i64::MAX)
}

fn union_sorted(a: &Value, b: &Value) -> Value {
    let mut set: BTreeSet<String> = BTreeSet::new();
    for v in [a, b] {
        for x in v.as_array().into_iter().flatten() {
            if let Some(s) = x.as_str() {
                set.insert(s.to_string());
            }
        }
    }
    Value::Array(set.into_iter().map(Value::String).collect())
}

fn add(a: &Value, b: &Value) -> Value {
    Value::from(a.as_u64().unwrap_or(0) + b.as_u64().unwrap_or(0))
}

fn merge_finding(into: &mut Value, f: &Value) {
    let earlier = first_ns(f) < first_ns(into);
    let o = into.as_object_mut().expect("finding is an object");
    for k in ["flows", "lookups"] {
        let v = add(&o[k], &f[k]);
        o.insert(k.into(), v);
    }
    for k in ["dst_ips", "files"] {
        let v = union_sorted(&o[k], &f[k]);
        o.insert(k.into(), v);
    }
    if earlier {
        for k in ["first_seen", "evidence", "confidence"] {
            o.insert(k.into(), f[k].clone());
        }
    }
    if let (Some(b), Some(nb)) = (
        o.get_mut("bound").and_then(Value::as_object_mut),
        f["bound"].as_object(),
    ) {
        for (k, v) in nb {
            b.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let pm = o["port_mismatch"].as_bool().unwrap_or(false)
        || f["port_mismatch"].as_bool().unwrap_or(false);
    o.insert("port_mismatch".into(), Value::Bool(pm));
    if outcome_rank(&f["worst_outcome"]) != usize::MAX
        && (o["worst_outcome"].is_null()
            || outcome_rank(&f["worst_outcome"]) > outcome_rank(&o["worst_outcome"]))
    {
        o.insert("worst_outcome".into(), f["worst_outcome"].clone());
    }
    if outcome_rank(&f["best_outcome"]) < outcome_rank(&o["best_outcome"]) {
        o.insert("best_outcome".into(), f["best_outcome"].clone());
    }
}

fn merge_findings(docs: &[Value], field: &str) -> Value {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: BTreeMap<String, Value> = BTreeMap::new();
    for d in docs {
        for f in d[field].as_array().into_iter().flatten() {
            let k = key(f);
            match by_key.get_mut(&k) {
                Some(into) => merge_finding(into, f),
                None => {
                    order.push(k.clone());
                    by_key.insert(k, f.clone());
                }
            }
        }
    }
    let mut out: Vec<Value> = order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .collect();
    out.sort_by_key(|f| {
        (
            verdict_rank(&f["verdict"]),
            first_ns(f),
            f["name"].as_str().unwrap_or("").to_string(),
            f["proto"].as_str().unwrap_or("").to_string(),
            f["dst_port"].as_u64(),
            f["mechanism"].as_str().unwrap_or("").to_string(),
        )
    });
    Value::Array(out)
}

fn merge_coverage(docs: &[Value]) -> Value {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for d in docs {
        for c in d["coverage"].as_array().into_iter().flatten() {
            let id = c["entry"]["id"].as_str().unwrap_or("").to_string();
            match by_id.get_mut(&id) {
                None => {
                    order.push(id.clone());
                    by_id.insert(id, c.clone());
                }
                Some(into) => {
                    let o = into.as_object_mut().expect("coverage is an object");
                    let ex = o["exercised"].as_bool().unwrap_or(false)
                        || c["exercised"].as_bool().unwrap_or(false);
                    o.insert("exercised".into(), Value::Bool(ex));
                    let names = union_sorted(&o["names"], &c["names"]);
                    o.insert("names".into(), names);
                    let mut v: Map<String, Value> =
                        o["verdicts"].as_object().cloned().unwrap_or_default();
                    for (k, n) in c["verdicts"].as_object().into_iter().flatten() {
                        let sum = add(v.get(k).unwrap_or(&Value::Null), n);
                        v.insert(k.clone(), sum);
                    }
                    o.insert("verdicts".into(), Value::Object(v));
                    let mut bf: Map<String, Value> =
                        o["by_file"].as_object().cloned().unwrap_or_default();
                    for (file, counts) in c["by_file"].as_object().into_iter().flatten() {
                        let mut row: Map<String, Value> = bf
                            .get(file)
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        for (k, n) in counts.as_object().into_iter().flatten() {
                            let sum = add(row.get(k).unwrap_or(&Value::Null), n);
                            row.insert(k.clone(), sum);
                        }
                        bf.insert(file.clone(), Value::Object(row));
                    }
                    o.insert("by_file".into(), Value::Object(bf));
                    // Credit through another entry only while the entry has none of its own.
                    let own = o["verdicts"].as_object().is_some_and(|v| !v.is_empty());
                    let via = match o.get("credited_via") {
                        _ if own => Value::Null,
                        Some(v) if !v.is_null() => v.clone(),
                        _ => c.get("credited_via").cloned().unwrap_or(Value::Null),
                    };
                    o.insert("credited_via".into(), via);
                }
            }
        }
    }
    Value::Array(order.into_iter().filter_map(|k| by_id.remove(&k)).collect())
}

/// Websocket connections in document order; the diagnosis per instance recomputed from all of
/// them (an instance's connections may come from several documents).
fn merge_websockets(docs: &[(String, Value)]) -> Result<Value, String> {
    let mut conns: Vec<crate::ws::WsFlow> = Vec::new();
    for (name, d) in docs {
        let Some(c) = d.get("websockets").map(|w| &w["connections"]) else {
            continue;
        };
        let more: Vec<crate::ws::WsFlow> = serde_json::from_value(c.clone())
            .map_err(|e| format!("{name}: websockets.connections: {e}"))?;
        conns.extend(more);
    }
    let report = crate::ws::WsReport {
        instances: crate::ws::instances(&conns),
        connections: conns,
    };
    serde_json::to_value(report).map_err(|e| e.to_string())
}

/// Merges audit documents. Errors name the document and what is wrong.
pub fn merge(docs: &[(String, Value)]) -> Result<Value, String> {
    let mut version = None;
    for (name, d) in docs {
        let v = d["schema_version"].as_u64().ok_or_else(|| {
            format!("{name}: not an allowscope audit JSON document (no schema_version)")
        })?;
        if d["findings"].as_array().is_none() || d["coverage"].as_array().is_none() {
            return Err(format!(
                "{name}: not an allowscope audit JSON document (no findings or coverage)"
            ));
        }
        match version {
            None => version = Some(v),
            Some(w) if w != v => {
                return Err(format!("{name}: schema_version {v} differs from {w}"))
            }
            _ => {}
        }
    }
    let values: Vec<Value> = docs.iter().map(|(_, d)| d.clone()).collect();
    let mut out = Map::new();
    out.insert(
        "schema_version".into(),
        Value::from(version.unwrap_or(super::report_schema())),
    );
    let inputs: Vec<Value> = values
        .iter()
        .flat_map(|d| d["inputs"].as_array().cloned().unwrap_or_default())
        .collect();
    out.insert("inputs".into(), Value::Array(inputs));
    out.insert("findings".into(), merge_findings(&values, "findings"));
    out.insert("coverage".into(), merge_coverage(&values));
    out.insert(
        "dns_failures".into(),
        merge_findings(&values, "dns_failures"),
    );
    let pe: Vec<Value> = values
        .iter()
        .flat_map(|d| {
            d["private_endpoint_dns"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    out.insert("private_endpoint_dns".into(), Value::Array(pe));
    let mut ph: BTreeMap<String, Value> = BTreeMap::new();
    for d in &values {
        for (k, v) in d["placeholders_seen"].as_object().into_iter().flatten() {
            let merged = union_sorted(ph.get(k).unwrap_or(&Value::Null), v);
            ph.insert(k.clone(), merged);
        }
    }
    out.insert(
        "placeholders_seen".into(),
        Value::Object(ph.into_iter().collect()),
    );
    let mut counts: BTreeMap<String, Value> = BTreeMap::new();
    for d in &values {
        for (k, v) in d["counts"].as_object().into_iter().flatten() {
            let sum = add(counts.get(k).unwrap_or(&Value::Null), v);
            counts.insert(k.clone(), sum);
        }
    }
    out.insert("counts".into(), Value::Object(counts.into_iter().collect()));
    let per_file: Vec<Value> = values
        .iter()
        .flat_map(|d| d["per_file"].as_array().cloned().unwrap_or_default())
        .collect();
    out.insert("per_file".into(), Value::Array(per_file));
    out.insert("websockets".into(), merge_websockets(docs)?);
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `merge` orders verdicts as the enum does and outcomes as the audit ranks them, by the
    /// names the audit writes.
    #[test]
    fn merge_orders_by_the_vocabularies() {
        for (i, v) in Verdict::ALL.into_iter().enumerate() {
            assert_eq!(verdict_rank(&Value::from(v.name())), i);
        }
        let mut ranks: Vec<usize> = Outcome::ALL
            .into_iter()
            .map(|o| {
                assert_eq!(Outcome::from_name(o.name()), Some(o));
                assert_eq!(outcome_rank(&Value::from(o.name())), usize::from(rank(o)));
                usize::from(rank(o))
            })
            .collect();
        ranks.sort_unstable();
        assert_eq!(ranks, (0..Outcome::ALL.len()).collect::<Vec<_>>());
        assert_eq!(verdict_rank(&Value::from("no-such-verdict")), usize::MAX);
        assert_eq!(outcome_rank(&Value::Null), usize::MAX);
    }
}

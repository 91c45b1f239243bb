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

/// `a + b` as counts (absent or null: 0); `None` if the sum does not fit in a u64. Counts are
/// checked by [`check`] before.
fn add(a: &Value, b: &Value) -> Option<Value> {
    let sum = a
        .as_u64()
        .unwrap_or(0)
        .checked_add(b.as_u64().unwrap_or(0))?;
    Some(Value::from(sum))
}

/// The error of a sum of counts too large for a u64.
fn overflow(name: &str, at: &str) -> String {
    format!("{name}: {at}: the counts add up to more than 18446744073709551615")
}

/// `o[k]`, or null where `o` has no `k`.
fn field<'a>(o: &'a Map<String, Value>, k: &str) -> &'a Value {
    o.get(k).unwrap_or(&Value::Null)
}

/// Checks the parts of one document that merging reads: a malformed or hostile document is
/// an error that names it and says what is wrong, never a panic or a silent zero.
fn check(name: &str, d: &Value) -> Result<(), String> {
    let bad = |at: &str, what: &str| Err(format!("{name}: {at}: {what}"));
    let is_count = |v: &Value| v.is_u64();
    let is_counts = |v: &Value| v.as_object().is_some_and(|m| m.values().all(is_count));
    let is_strings = |v: &Value| v.as_array().is_some_and(|a| a.iter().all(Value::is_string));
    for field in ["findings", "dns_failures", "coverage"] {
        match &d[field] {
            Value::Null if field == "dns_failures" => {}
            Value::Array(_) => {}
            _ => return bad(field, "not a list"),
        }
    }
    for list in ["findings", "dns_failures"] {
        for (i, f) in d[list].as_array().into_iter().flatten().enumerate() {
            let at = format!("{list}[{i}]");
            let Some(o) = f.as_object() else {
                return bad(&at, "not an object");
            };
            if !field(o, "verdict").is_string() {
                return bad(&at, "verdict is not a string");
            }
            if !field(o, "first_seen").is_string() {
                return bad(&at, "first_seen is not a string");
            }
            for k in ["flows", "lookups"] {
                if !is_count(field(o, k)) {
                    return bad(
                        &at,
                        &format!("{k} is not a count (0 to 18446744073709551615)"),
                    );
                }
            }
            for k in ["dst_ips", "files"] {
                if !is_strings(field(o, k)) {
                    return bad(&at, &format!("{k} is not a list of strings"));
                }
            }
            if !field(o, "port_mismatch").is_boolean() {
                return bad(&at, "port_mismatch is not true or false");
            }
        }
    }
    for (i, c) in d["coverage"].as_array().into_iter().flatten().enumerate() {
        let at = format!("coverage[{i}]");
        let Some(o) = c.as_object() else {
            return bad(&at, "not an object");
        };
        if !c["entry"]["id"].is_string() {
            return bad(&at, "entry.id is not a string");
        }
        if !field(o, "exercised").is_boolean() {
            return bad(&at, "exercised is not true or false");
        }
        if !is_strings(field(o, "names")) {
            return bad(&at, "names is not a list of strings");
        }
        if !is_counts(field(o, "verdicts")) {
            return bad(&at, "verdicts is not an object of counts");
        }
        let by_file = field(o, "by_file").as_object();
        if !by_file.is_some_and(|m| m.values().all(is_counts)) {
            return bad(&at, "by_file is not an object of objects of counts");
        }
    }
    if !matches!(d["counts"], Value::Null) && !is_counts(&d["counts"]) {
        return bad("counts", "not an object of counts");
    }
    for k in [
        "inputs",
        "private_endpoint_dns",
        "per_file",
        "failed_inputs",
    ] {
        if !matches!(d[k], Value::Null | Value::Array(_)) {
            return bad(k, "not a list");
        }
    }
    if !matches!(d["complete"], Value::Null | Value::Bool(_)) {
        return bad("complete", "not true or false");
    }
    if !matches!(d["placeholders_seen"], Value::Null | Value::Object(_)) {
        return bad("placeholders_seen", "not an object");
    }
    Ok(())
}

/// Merges the finding `f` of the document `name` into `into`, a finding of the same key.
fn merge_finding(into: &mut Value, f: &Value, name: &str, at: &str) -> Result<(), String> {
    let earlier = first_ns(f) < first_ns(into);
    let Some(o) = into.as_object_mut() else {
        return Err(format!("{name}: {at}: not an object"));
    };
    for k in ["flows", "lookups"] {
        let v = add(field(o, k), &f[k]).ok_or_else(|| overflow(name, &format!("{at}.{k}")))?;
        o.insert(k.into(), v);
    }
    for k in ["dst_ips", "files"] {
        let v = union_sorted(field(o, k), &f[k]);
        o.insert(k.into(), v);
    }
    if earlier {
        for k in ["first_seen", "evidence"] {
            o.insert(k.into(), f[k].clone());
        }
    }
    // As one run groups them: as sure as the least sure, a guess only if both are.
    let sure = |v: &Value| {
        v.as_str()
            .and_then(super::Confidence::from_name)
            .map_or(0, |c| c as u8 + 1)
    };
    if sure(&f["confidence"]) > sure(field(o, "confidence")) {
        o.insert("confidence".into(), f["confidence"].clone());
    }
    if !(field(o, "name_guessed").as_bool() == Some(true)
        && f["name_guessed"].as_bool() == Some(true))
    {
        o.remove("name_guessed");
    }
    if let (Some(b), Some(nb)) = (
        o.get_mut("bound").and_then(Value::as_object_mut),
        f["bound"].as_object(),
    ) {
        for (k, v) in nb {
            b.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    let pm = field(o, "port_mismatch").as_bool().unwrap_or(false)
        || f["port_mismatch"].as_bool().unwrap_or(false);
    o.insert("port_mismatch".into(), Value::Bool(pm));
    if outcome_rank(&f["worst_outcome"]) != usize::MAX
        && (field(o, "worst_outcome").is_null()
            || outcome_rank(&f["worst_outcome"]) > outcome_rank(field(o, "worst_outcome")))
    {
        o.insert("worst_outcome".into(), f["worst_outcome"].clone());
    }
    if outcome_rank(&f["best_outcome"]) < outcome_rank(field(o, "best_outcome")) {
        o.insert("best_outcome".into(), f["best_outcome"].clone());
    }
    Ok(())
}

fn merge_findings(docs: &[(String, Value)], list: &str) -> Result<Value, String> {
    let mut order: Vec<String> = Vec::new();
    let mut by_key: BTreeMap<String, Value> = BTreeMap::new();
    for (name, d) in docs {
        for (i, f) in d[list].as_array().into_iter().flatten().enumerate() {
            let k = key(f);
            match by_key.get_mut(&k) {
                Some(into) => merge_finding(into, f, name, &format!("{list}[{i}]"))?,
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
    Ok(Value::Array(out))
}

/// Adds the counts of `more` to `to` (`at` says where, for the error).
fn add_counts(
    to: &mut Map<String, Value>,
    more: &Value,
    name: &str,
    at: &str,
) -> Result<(), String> {
    for (k, n) in more.as_object().into_iter().flatten() {
        let sum = add(to.get(k).unwrap_or(&Value::Null), n)
            .ok_or_else(|| overflow(name, &format!("{at}.{k}")))?;
        to.insert(k.clone(), sum);
    }
    Ok(())
}

fn merge_coverage(docs: &[(String, Value)]) -> Result<Value, String> {
    let mut order: Vec<String> = Vec::new();
    let mut by_id: BTreeMap<String, Value> = BTreeMap::new();
    for (name, d) in docs {
        for (i, c) in d["coverage"].as_array().into_iter().flatten().enumerate() {
            let id = c["entry"]["id"].as_str().unwrap_or("").to_string();
            match by_id.get_mut(&id) {
                None => {
                    order.push(id.clone());
                    by_id.insert(id, c.clone());
                }
                Some(into) => {
                    let at = format!("coverage[{i}]");
                    let Some(o) = into.as_object_mut() else {
                        return Err(format!("{name}: {at}: not an object"));
                    };
                    let ex = field(o, "exercised").as_bool().unwrap_or(false)
                        || c["exercised"].as_bool().unwrap_or(false);
                    o.insert("exercised".into(), Value::Bool(ex));
                    let names = union_sorted(field(o, "names"), &c["names"]);
                    o.insert("names".into(), names);
                    let mut v: Map<String, Value> = field(o, "verdicts")
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                    add_counts(&mut v, &c["verdicts"], name, &format!("{at}.verdicts"))?;
                    o.insert("verdicts".into(), Value::Object(v));
                    let mut bf: Map<String, Value> =
                        field(o, "by_file").as_object().cloned().unwrap_or_default();
                    for (file, counts) in c["by_file"].as_object().into_iter().flatten() {
                        let mut row: Map<String, Value> = bf
                            .get(file)
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        add_counts(&mut row, counts, name, &format!("{at}.by_file.{file}"))?;
                        bf.insert(file.clone(), Value::Object(row));
                    }
                    o.insert("by_file".into(), Value::Object(bf));
                    // Credit through another entry only while the entry has none of its own.
                    let own = field(o, "verdicts")
                        .as_object()
                        .is_some_and(|v| !v.is_empty());
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
    Ok(Value::Array(
        order.into_iter().filter_map(|k| by_id.remove(&k)).collect(),
    ))
}

/// Websocket connections in document order; the diagnosis per instance recomputed from all of
/// them (an instance's connections may come from several documents).
fn merge_websockets(docs: &[(String, Value)]) -> Result<Value, String> {
    let mut conns: Vec<crate::audit::ws::WsFlow> = Vec::new();
    for (name, d) in docs {
        let Some(c) = d.get("websockets").map(|w| &w["connections"]) else {
            continue;
        };
        let more: Vec<crate::audit::ws::WsFlow> = serde_json::from_value(c.clone())
            .map_err(|e| format!("{name}: websockets.connections: {e}"))?;
        conns.extend(more);
    }
    let report = crate::audit::ws::WsReport {
        instances: crate::audit::ws::instances(&conns),
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
        check(name, d)?;
        match version {
            None => version = Some(v),
            Some(w) if w != v => {
                return Err(format!("{name}: schema_version {v} differs from {w}"))
            }
            _ => {}
        }
    }
    let values = || docs.iter().map(|(_, d)| d);
    let mut out = Map::new();
    out.insert(
        "schema_version".into(),
        Value::from(version.unwrap_or(super::report_schema())),
    );
    let inputs: Vec<Value> = values()
        .flat_map(|d| d["inputs"].as_array().cloned().unwrap_or_default())
        .collect();
    out.insert("inputs".into(), Value::Array(inputs));
    out.insert("findings".into(), merge_findings(docs, "findings")?);
    out.insert("coverage".into(), merge_coverage(docs)?);
    out.insert("dns_failures".into(), merge_findings(docs, "dns_failures")?);
    let pe: Vec<Value> = values()
        .flat_map(|d| {
            d["private_endpoint_dns"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    out.insert("private_endpoint_dns".into(), Value::Array(pe));
    let mut ph: BTreeMap<String, Value> = BTreeMap::new();
    for d in values() {
        for (k, v) in d["placeholders_seen"].as_object().into_iter().flatten() {
            let merged = union_sorted(ph.get(k).unwrap_or(&Value::Null), v);
            ph.insert(k.clone(), merged);
        }
    }
    out.insert(
        "placeholders_seen".into(),
        Value::Object(ph.into_iter().collect()),
    );
    let mut counts: Map<String, Value> = Map::new();
    for (name, d) in docs {
        add_counts(&mut counts, &d["counts"], name, "counts")?;
    }
    out.insert("counts".into(), Value::Object(counts));
    let per_file: Vec<Value> = values()
        .flat_map(|d| d["per_file"].as_array().cloned().unwrap_or_default())
        .collect();
    out.insert("per_file".into(), Value::Array(per_file));
    out.insert("websockets".into(), merge_websockets(docs)?);
    // A document whose audit is incomplete makes the merge incomplete: said as one run would.
    let failed: Vec<Value> = values()
        .flat_map(|d| d["failed_inputs"].as_array().cloned().unwrap_or_default())
        .collect();
    if !failed.is_empty() || values().any(|d| d["complete"] == Value::Bool(false)) {
        out.insert("complete".into(), Value::Bool(false));
        out.insert("failed_inputs".into(), Value::Array(failed));
    }
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

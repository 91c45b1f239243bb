//! Coverage: one line per catalog entry in scope, exercised or not, and how.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::tally::EntryTally;
use super::{counts, entry_ref, Counts, EntryRef};
use crate::catalog::{Catalog, Entry, Requirement};

/// Per-entry coverage: was the entry exercised, and how.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    pub entry: EntryRef,
    pub exercised: bool,
    /// Flows and lookups per verdict (verdict name -> count).
    pub verdicts: Counts,
    /// Names seen that matched the entry.
    pub names: BTreeSet<String>,
    /// The coverage matrix row: per input file, flows and lookups per verdict.
    pub by_file: BTreeMap<String, Counts>,
    /// Exercised through another entry of the same pattern (placeholders filled), protocol
    /// and ports, whose id this is: the counts above are this entry's own (none).
    pub credited_via: Option<String>,
}

/// The coverage lines: every required entry and every entry the audit saw, in catalog order.
/// Entries of the same pattern (placeholders filled), protocol and ports share their credit:
/// one exercised through any of them is exercised for all, credited to the first exercised
/// one in catalog order.
pub(super) fn of_entries(
    catalog: &Catalog,
    per_entry: &BTreeMap<usize, EntryTally>,
) -> Vec<Coverage> {
    let shared_key = |e: &Entry| {
        (
            catalog.placeholders().fill(&e.pattern),
            e.proto,
            e.ports.clone(),
        )
    };
    let mut exercised_by = rustc_hash::FxHashMap::default();
    for (&i, t) in per_entry {
        if !t.verdicts.is_empty() {
            let j = exercised_by
                .entry(shared_key(&catalog.entries()[i]))
                .or_insert(i);
            *j = (*j).min(i);
        }
    }
    catalog
        .entries()
        .iter()
        .enumerate()
        .filter(|(i, e)| e.requirement == Requirement::Required || per_entry.contains_key(i))
        .map(|(i, e)| {
            let t = per_entry.get(&i).cloned().unwrap_or_default();
            let credited_via = match t.verdicts.is_empty() {
                true => exercised_by
                    .get(&shared_key(e))
                    .map(|&j| catalog.entries()[j].id.clone()),
                false => None,
            };
            Coverage {
                entry: entry_ref(e),
                exercised: !t.verdicts.is_empty() || credited_via.is_some(),
                verdicts: counts(t.verdicts),
                names: t.names,
                by_file: t.by_file.into_iter().map(|(f, c)| (f, counts(c))).collect(),
                credited_via,
            }
        })
        .collect()
}

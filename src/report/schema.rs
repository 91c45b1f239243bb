//! The JSON Schemas (draft 2020-12) of every JSON document and NDJSON row the tool writes,
//! generated from the types that write them (`schemars`, serialization contract: what is
//! written, not what `merge` would accept). `allowscope schema NAME` prints one; the copies in
//! `docs/schema/` are checked against these by a test, and the outputs of every recorded
//! capture are validated against them by another (tests/schema.rs).
//!
//! Two rules are added to what the types say, so that a schema fails an output that drifts
//! from it: every object with named properties admits no others (`additionalProperties:
//! false`; maps such as `labels` keep their value schema), and every property the writer always
//! writes is required (`schemars` marks only those a writer may leave out as optional). A
//! stream of several row kinds is one schema whose `oneOf` tells them apart by `kind` (or
//! `type` for check-allowlist), each a constant.

use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::allowlist::{CheckDocument, CheckLine};
use super::dns::{DnsDocument, Lookup};
use super::json::{FlowRow, Row};
use super::ws::WsDocument;
use super::{FlowRecord, FlowsDocument, Labelled, SCHEMA_VERSION};
use crate::allowlist::check::{Broader, EntryCheck, Useless};
use crate::allowlist::NotFollowed;
use crate::audit::merge::Document;
use crate::audit::rules::Rule;
use crate::audit::ws::WsFlow;
use crate::audit::{Coverage, Finding};

/// One published schema: its name (`docs/schema/NAME.schema.json`), what it describes, and
/// the generator.
pub struct Published {
    pub name: &'static str,
    pub title: &'static str,
    /// The `schema_version` its documents carry.
    pub version: u32,
    make: fn(&mut SchemaGenerator) -> Value,
}

/// Every published schema, in the order `allowscope schema` lists them.
pub const ALL: &[Published] = &[
    Published {
        name: "audit",
        title: "The JSON document of `allowscope audit --format json` (and `live`, and `merge`)",
        version: SCHEMA_VERSION,
        make: |g| root::<Document>(g),
    },
    Published {
        name: "audit-row",
        title: "A line of `allowscope audit --format ndjson`: a judged flow, a DNS finding or a coverage line, by `kind`",
        version: SCHEMA_VERSION,
        make: |g| {
            kinds(
                "kind",
                vec![
                    ("flow", g.subschema_for::<FlowRow<'static>>()),
                    ("dns-finding", g.subschema_for::<Row<'static, Finding>>()),
                    ("coverage", g.subschema_for::<Row<'static, Coverage>>()),
                ],
            )
        },
    },
    Published {
        name: "flows",
        title: "The JSON document of `allowscope flows --format json`",
        version: SCHEMA_VERSION,
        make: |g| root::<FlowsDocument<'static>>(g),
    },
    Published {
        name: "flow-row",
        title: "A line of `allowscope flows --format ndjson`: one flow",
        version: SCHEMA_VERSION,
        make: |g| root::<Labelled<'static, FlowRecord<'static>>>(g),
    },
    Published {
        name: "dns",
        title: "The JSON document of `allowscope dns --format json`",
        version: SCHEMA_VERSION,
        make: |g| root::<DnsDocument<'static>>(g),
    },
    Published {
        name: "dns-row",
        title: "A line of `allowscope dns --format ndjson`: one lookup",
        version: SCHEMA_VERSION,
        make: |g| root::<Labelled<'static, Lookup<'static>>>(g),
    },
    Published {
        name: "ws",
        title: "The JSON document of `allowscope ws --format json`",
        version: SCHEMA_VERSION,
        make: |g| root::<WsDocument<'static>>(g),
    },
    Published {
        name: "ws-row",
        title: "A line of `allowscope ws --format ndjson`: one websocket-capable connection",
        version: SCHEMA_VERSION,
        make: |g| root::<Labelled<'static, &'static WsFlow>>(g),
    },
    Published {
        name: "check-allowlist",
        title: "The JSON document of `allowscope check-allowlist --format json`",
        version: crate::report::allowlist::SCHEMA_VERSION,
        make: |g| root::<CheckDocument<'static>>(g),
    },
    Published {
        name: "check-allowlist-row",
        title: "A line of `allowscope check-allowlist --format ndjson`, by `type`",
        version: crate::report::allowlist::SCHEMA_VERSION,
        make: |g| {
            kinds(
                "type",
                vec![
                    ("entry", g.subschema_for::<CheckLine<'static, EntryCheck>>()),
                    ("broader", g.subschema_for::<CheckLine<'static, Broader>>()),
                    ("useless", g.subschema_for::<CheckLine<'static, Useless>>()),
                    (
                        "not-followed",
                        g.subschema_for::<CheckLine<'static, NotFollowed>>(),
                    ),
                    ("rule", g.subschema_for::<CheckLine<'static, Rule>>()),
                ],
            )
        },
    },
];

/// The schema named `name`, as `docs/schema/NAME.schema.json` holds it.
pub fn by_name(name: &str) -> Option<Value> {
    ALL.iter().find(|p| p.name == name).map(generate)
}

/// The names of the published schemas.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|p| p.name).collect()
}

/// Generates one published schema: the types' schema with its definitions, a title, the
/// schema version it describes, and the two added rules (see the module).
pub fn generate(p: &Published) -> Value {
    let mut g = schemars::generate::SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let body = (p.make)(&mut g);
    let defs = g.take_definitions(true);
    let mut doc = Map::new();
    doc.insert(
        "$schema".into(),
        "https://json-schema.org/draft/2020-12/schema".into(),
    );
    doc.insert("title".into(), p.title.into());
    doc.insert(
        "description".into(),
        format!(
            "allowscope output, schema_version {}. Generated from the types that write it \
             (`allowscope schema {}`).",
            p.version, p.name
        )
        .into(),
    );
    if let Value::Object(m) = body {
        for (k, v) in m {
            // The type's own title and description: the published ones say more.
            if k != "$schema" && k != "title" && k != "description" {
                doc.insert(k, v);
            }
        }
    }
    if !defs.is_empty() {
        doc.insert("$defs".into(), Value::Object(defs));
    }
    let mut doc = Value::Object(doc);
    close_objects(&mut doc);
    doc
}

/// The schema of `T` as the body of a root schema (its definitions stay in the generator).
fn root<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    let s = T::json_schema(g);
    s.to_value()
}

/// One of several row kinds, each a definition whose `field` is the constant that names it.
fn kinds(field: &str, rows: Vec<(&str, schemars::Schema)>) -> Value {
    let one_of: Vec<Value> = rows
        .into_iter()
        .map(|(name, s)| {
            let mut v = s.to_value();
            if let Value::Object(m) = &mut v {
                m.insert("properties".into(), json!({ field: { "const": name } }));
            }
            v
        })
        .collect();
    json!({ "type": "object", "oneOf": one_of })
}

/// Adds `additionalProperties: false` to every object schema with named properties and no
/// rule of its own for others, everywhere in `v`.
fn close_objects(v: &mut Value) {
    match v {
        Value::Object(m) => {
            let named = m.get("properties").is_some_and(Value::is_object);
            let is_object = m.get("type").and_then(Value::as_str) == Some("object");
            if named && is_object && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), false.into());
            }
            for (_, child) in m.iter_mut() {
                close_objects(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(close_objects),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/schema/NAME.schema.json` is what the types generate (ALLOWSCOPE_BLESS=1 writes
    /// them), and no other schema file is there.
    #[test]
    fn published_schemas_are_the_generated_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
        let bless = std::env::var_os("ALLOWSCOPE_BLESS").is_some();
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
        }
        for p in ALL {
            let path = dir.join(format!("{}.schema.json", p.name));
            let text = serde_json::to_string_pretty(&generate(p)).unwrap() + "\n";
            if bless {
                std::fs::write(&path, &text).unwrap();
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                panic!("{}: {e} (ALLOWSCOPE_BLESS=1 writes it)", path.display())
            });
            assert!(
                on_disk == text,
                "{} differs from what the types generate (ALLOWSCOPE_BLESS=1 rewrites it)",
                path.display()
            );
        }
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".schema.json"))
            .collect();
        files.sort();
        let mut want: Vec<String> = ALL
            .iter()
            .map(|p| format!("{}.schema.json", p.name))
            .collect();
        want.sort();
        assert_eq!(files, want);
    }

    /// A row kind's constant replaces nothing else: the definition keeps its properties.
    #[test]
    fn row_kinds_are_constants_over_their_definitions() {
        let s = by_name("audit-row").unwrap();
        let one_of = s["oneOf"].as_array().unwrap();
        assert_eq!(one_of.len(), 3);
        assert_eq!(one_of[0]["properties"]["kind"]["const"], "flow");
        assert!(one_of[0]["$ref"].as_str().unwrap().starts_with("#/$defs/"));
        assert_eq!(by_name("nope"), None);
    }
}

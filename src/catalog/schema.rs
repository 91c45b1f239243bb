//! Reading catalog files: the TOML schema (see the module documentation of `catalog`), the
//! workspace `outboundNetworkDependenciesEndpoints` JSON, and errors with line numbers.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use toml::Spanned;

use super::name::Pattern;
use super::{
    CatalogData, Cloud, Direction, Entry, PortRange, PrivateEndpointZone, Proto, Requirement,
    ScenarioInfo, ServiceTag, SourceInfo, CORE_SCENARIO,
};

/// Why a catalog could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogError {
    /// The file could not be read.
    Io { path: String, message: String },
    /// A syntax or schema error at a place in the file (`line` and `column` count from 1;
    /// column 0 when unknown).
    Parse {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    /// A file-wide problem with no single place.
    Invalid { origin: String, message: String },
    /// Bad options (unknown scenario, a placeholder value that is not one label, ...).
    Options { message: String },
}

impl fmt::Display for CatalogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::text::escape_terminal as esc;
        match self {
            CatalogError::Io { path, message } => write!(f, "{}: {}", esc(path), esc(message)),
            CatalogError::Parse {
                origin,
                line,
                column,
                message,
            } => {
                if *column > 0 {
                    write!(f, "{}:{line}:{column}: {}", esc(origin), esc(message))
                } else {
                    write!(f, "{}:{line}: {}", esc(origin), esc(message))
                }
            }
            CatalogError::Invalid { origin, message } => {
                write!(f, "{}: {}", esc(origin), esc(message))
            }
            CatalogError::Options { message } => f.write_str(&esc(message)),
        }
    }
}

impl std::error::Error for CatalogError {}

impl CatalogError {
    /// The line the error is on, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            CatalogError::Parse { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, text[line_start..offset].chars().count() + 1)
}

fn at(text: &str, origin: &str, span: Range<usize>, message: impl Into<String>) -> CatalogError {
    let (line, column) = line_col(text, span.start);
    CatalogError::Parse {
        origin: origin.to_string(),
        line,
        column,
        message: message.into(),
    }
}

/// A port as written: a number or a `"low-high"` string.
#[derive(Debug)]
enum PortItem {
    Num(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for PortItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PortItem, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a port number or a \"low-high\" range string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PortItem, E> {
                Ok(PortItem::Num(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PortItem, E> {
                Ok(PortItem::Num(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PortItem, E> {
                Ok(PortItem::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

fn port_range(item: &PortItem) -> Result<PortRange, String> {
    let one = |v: i64| -> Result<u16, String> {
        if (1..=65535).contains(&v) {
            Ok(v as u16)
        } else {
            Err(format!("port {v} is out of range (1-65535)"))
        }
    };
    match item {
        PortItem::Num(v) => Ok(PortRange::one(one(*v)?)),
        PortItem::Text(s) => {
            let parse = |t: &str| -> Result<u16, String> {
                let v: i64 = t
                    .trim()
                    .parse()
                    .map_err(|_| format!("`{s}` is not a port or a \"low-high\" range"))?;
                one(v)
            };
            let (lo, hi) = match s.split_once('-') {
                Some((a, b)) => (parse(a)?, parse(b)?),
                None => {
                    let p = parse(s)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!("range `{s}`: the low port is above the high one"));
            }
            Ok(PortRange { lo, hi })
        }
    }
}

fn default_scenario() -> Spanned<String> {
    Spanned::new(0..0, CORE_SCENARIO.to_string())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDoc {
    #[serde(default)]
    schema: Option<Spanned<i64>>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    sources: BTreeMap<String, SourceInfo>,
    #[serde(default)]
    scenarios: BTreeMap<Spanned<String>, ScenarioInfo>,
    #[serde(default, rename = "entry")]
    entries: Vec<RawEntry>,
    #[serde(default, rename = "service_tag")]
    service_tags: Vec<RawTag>,
    #[serde(default, rename = "private_endpoint_zone")]
    private_endpoint_zones: Vec<RawZone>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    zone: Spanned<String>,
    cloud: Cloud,
    service: Spanned<String>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: Spanned<String>,
    cloud: Cloud,
    group: Spanned<String>,
    purpose: String,
    #[serde(alias = "pattern")]
    host: Spanned<String>,
    #[serde(default, alias = "protocol")]
    proto: Proto,
    ports: Spanned<Vec<Spanned<PortItem>>>,
    #[serde(default)]
    requirement: Requirement,
    #[serde(default = "default_scenario")]
    scenario: Spanned<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    websocket: bool,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTag {
    id: Spanned<String>,
    tag: Spanned<String>,
    cloud: Cloud,
    #[serde(default)]
    direction: Direction,
    #[serde(default, alias = "protocol")]
    proto: Proto,
    ports: Spanned<Vec<Spanned<PortItem>>>,
    #[serde(default)]
    requirement: Requirement,
    #[serde(default = "default_scenario")]
    scenario: Spanned<String>,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    #[serde(default)]
    note: Option<String>,
}

/// Ids: letters, digits, `.`, `-`, `_`; at most 128 bytes.
fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_'))
}

/// Scenario and group names: lower-case letters, digits and `-`.
fn valid_word(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

/// Parses text that is either TOML or workspace JSON.
pub(crate) fn parse_any(text: &str, origin: &str) -> Result<CatalogData, CatalogError> {
    check_any(text, origin).map_err(|mut v| v.swap_remove(0))
}

/// As [`parse_any`], returning every error found (at least one on failure).
pub(crate) fn check_any(text: &str, origin: &str) -> Result<CatalogData, Vec<CatalogError>> {
    let body = text.trim_start_matches('\u{feff}').trim_start();
    let json = body.starts_with('{')
        || body
            .strip_prefix('[')
            .is_some_and(|r| r.trim_start().starts_with('{') || r.trim_start().starts_with(']'));
    if json {
        parse_workspace_json(text, origin).map_err(|e| vec![e])
    } else {
        check_toml(text, origin)
    }
}

pub(crate) fn parse_toml(text: &str, origin: &str) -> Result<CatalogData, CatalogError> {
    check_toml(text, origin).map_err(|mut v| v.swap_remove(0))
}

fn check_toml(text: &str, origin: &str) -> Result<CatalogData, Vec<CatalogError>> {
    let raw: RawDoc = toml::from_str(text).map_err(|e| {
        let msg = e.message().trim_end().to_string();
        vec![match e.span() {
            Some(span) => at(text, origin, span, msg),
            None => CatalogError::Invalid {
                origin: origin.to_string(),
                message: msg,
            },
        }]
    })?;
    let mut errors = Vec::new();
    let mut err = |span: Range<usize>, msg: String| errors.push(at(text, origin, span, msg));
    if let Some(s) = &raw.schema {
        if *s.get_ref() != 1 {
            err(
                s.span(),
                format!(
                    "schema {} is not supported (this version reads 1)",
                    s.get_ref()
                ),
            );
        }
    }
    // A lower-case word (`what` names the field in the message).
    let word = |what: &str, w: &Spanned<String>, err: &mut dyn FnMut(Range<usize>, String)| {
        if !valid_word(w.get_ref()) {
            err(
                w.span(),
                format!(
                    "{what} `{}`: use lower-case letters, digits and `-`",
                    w.get_ref()
                ),
            );
        }
    };
    // An id: well formed and not used before in `seen` (`what` names the kind of id).
    let unique_id = |what: &str,
                     id: &Spanned<String>,
                     seen: &mut HashMap<String, Range<usize>>,
                     err: &mut dyn FnMut(Range<usize>, String)| {
        let v = id.get_ref();
        if !valid_id(v) {
            err(
                id.span(),
                format!("id `{v}`: use letters, digits, `.`, `-` and `_`"),
            );
        }
        if let Some(first) = seen.get(v) {
            let (l, _) = line_col(text, first.start);
            err(
                id.span(),
                format!("duplicate {what} `{v}` (first used on line {l})"),
            );
        } else {
            seen.insert(v.clone(), id.span());
        }
    };
    for name in raw.scenarios.keys() {
        word("scenario name", name, &mut err);
    }
    let mut ids: HashMap<String, Range<usize>> = HashMap::new();
    let mut entries = Vec::with_capacity(raw.entries.len());
    let ports_of = |ports: &Spanned<Vec<Spanned<PortItem>>>,
                    err: &mut dyn FnMut(Range<usize>, String)|
     -> Vec<PortRange> {
        if ports.get_ref().is_empty() {
            err(ports.span(), "`ports` must list at least one port".into());
        }
        let mut out = Vec::new();
        for p in ports.get_ref() {
            match port_range(p.get_ref()) {
                Ok(r) => out.push(r),
                Err(m) => err(p.span(), m),
            }
        }
        out.sort();
        out.dedup();
        out
    };
    for r in raw.entries {
        let id = r.id.get_ref();
        unique_id("id", &r.id, &mut ids, &mut err);
        word("group", &r.group, &mut err);
        word("scenario", &r.scenario, &mut err);
        for s in &r.sources {
            if s.get_ref().trim().is_empty() {
                err(s.span(), "empty source name".into());
            }
        }
        let pattern = match Pattern::parse(r.host.get_ref()) {
            Ok(p) => Some(p),
            Err(e) => {
                err(r.host.span(), e.0);
                None
            }
        };
        let ports = ports_of(&r.ports, &mut err);
        if let Some(pattern) = pattern {
            entries.push(Entry {
                id: id.clone(),
                cloud: r.cloud,
                group: r.group.into_inner(),
                purpose: r.purpose,
                pattern,
                proto: r.proto,
                ports,
                requirement: r.requirement,
                scenario: r.scenario.into_inner(),
                condition: r.condition,
                websocket: r.websocket,
                sources: r.sources.into_iter().map(Spanned::into_inner).collect(),
                note: r.note,
                origin: origin.to_string(),
            });
        }
    }
    let mut tag_ids: HashMap<String, Range<usize>> = HashMap::new();
    let mut service_tags = Vec::new();
    for r in raw.service_tags {
        let id = r.id.get_ref();
        unique_id("service tag id", &r.id, &mut tag_ids, &mut err);
        let tag = r.tag.get_ref();
        let tag_ok = !tag.is_empty()
            && tag
                .strip_suffix(".<region>")
                .unwrap_or(tag)
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-');
        if !tag_ok {
            err(
                r.tag.span(),
                format!("service tag `{tag}`: letters, digits, `.`, `-`, optionally ending in `.<region>`"),
            );
        }
        word("scenario", &r.scenario, &mut err);
        let ports = ports_of(&r.ports, &mut err);
        service_tags.push(ServiceTag {
            id: id.clone(),
            tag: r.tag.into_inner(),
            cloud: r.cloud,
            direction: r.direction,
            proto: r.proto,
            ports,
            requirement: r.requirement,
            scenario: r.scenario.into_inner(),
            purpose: r.purpose,
            condition: r.condition,
            sources: r.sources.into_iter().map(Spanned::into_inner).collect(),
            note: r.note,
            origin: origin.to_string(),
        });
    }
    let mut zones_seen: HashMap<(String, Cloud), Range<usize>> = HashMap::new();
    let mut private_endpoint_zones = Vec::new();
    for r in raw.private_endpoint_zones {
        // A zone is a plain DNS name: literal labels only, at least two of them.
        let zone = match Pattern::parse(r.zone.get_ref()) {
            Ok(p) if !p.wildcard && p.placeholders().next().is_none() && p.labels.len() >= 2 => {
                Some(p.text)
            }
            Ok(_) => {
                err(
                    r.zone.span(),
                    format!(
                        "zone `{}`: a DNS name of two or more labels, without `*` or placeholders",
                        r.zone.get_ref()
                    ),
                );
                None
            }
            Err(e) => {
                err(r.zone.span(), e.0);
                None
            }
        };
        if r.service.get_ref().trim().is_empty() {
            err(r.service.span(), "empty service name".into());
        }
        for s in &r.sources {
            if s.get_ref().trim().is_empty() {
                err(s.span(), "empty source name".into());
            }
        }
        let Some(zone) = zone else { continue };
        if let Some(first) = zones_seen.get(&(zone.clone(), r.cloud)) {
            let (l, _) = line_col(text, first.start);
            err(
                r.zone.span(),
                format!(
                    "duplicate private endpoint zone `{zone}` for cloud {} (first on line {l})",
                    r.cloud.name()
                ),
            );
            continue;
        }
        zones_seen.insert((zone.clone(), r.cloud), r.zone.span());
        private_endpoint_zones.push(PrivateEndpointZone {
            zone,
            cloud: r.cloud,
            service: r.service.into_inner(),
            sources: r.sources.into_iter().map(Spanned::into_inner).collect(),
            note: r.note,
            origin: origin.to_string(),
        });
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| e.line());
        return Err(errors);
    }
    Ok(CatalogData {
        title: raw.title,
        entries,
        service_tags,
        private_endpoint_zones,
        sources: raw.sources,
        scenarios: raw
            .scenarios
            .into_iter()
            .map(|(k, v)| (k.into_inner(), v))
            .collect(),
        other_scenarios: Vec::new(),
    })
}

/// The source name given to entries read from a workspace's dependency JSON.
pub const WORKSPACE_SOURCE: &str = "workspace-json";

/// `s` in lower-case letters, digits and `-`, cut to `max` bytes (a group name is at most 64,
/// as [`valid_word`] asks, so that the catalog's TOML export reads back).
fn slug(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.truncate(max);
    let out = out.trim_end_matches('-').to_string();
    if out.is_empty() {
        "other".into()
    } else {
        out
    }
}

/// Reads the JSON of `GET .../workspaces/<ws>/outboundNetworkDependenciesEndpoints`:
/// `{"value":[{"properties":{"category":"...","endpoints":[{"domainName":"...",
/// "endpointDetails":[{"port":443}]}]}}]}` (or the bare `value` array).
fn parse_workspace_json(text: &str, origin: &str) -> Result<CatalogData, CatalogError> {
    let body = text.trim_start_matches('\u{feff}');
    let v: serde_json::Value = serde_json::from_str(body).map_err(|e| CatalogError::Parse {
        origin: origin.to_string(),
        line: e.line(),
        column: e.column(),
        message: format!("JSON: {e}")
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    })?;
    let not_ours = |why: &str| {
        CatalogError::Invalid {
        origin: origin.to_string(),
        message: format!(
            "{why}: expected a TOML catalog, or the JSON of a workspace's \
             outboundNetworkDependenciesEndpoints call ({{\"value\":[{{\"properties\":{{\"category\":..,\"endpoints\":[..]}}}}]}})"
        ),
    }
    };
    let list = match &v {
        serde_json::Value::Array(a) => a,
        serde_json::Value::Object(o) => match o.get("value") {
            Some(serde_json::Value::Array(a)) => a,
            _ => return Err(not_ours("no `value` array")),
        },
        _ => return Err(not_ours("not a JSON object")),
    };
    // Lines of the `"domainName"` keys, in document order, to place errors.
    let domain_lines: Vec<usize> = body
        .match_indices("\"domainName\"")
        .map(|(i, _)| line_col(body, i).0)
        .collect();
    let mut k = 0usize;
    let mut data = CatalogData::default();
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    for item in list {
        let props = item.get("properties").unwrap_or(item);
        let category = props
            .get("category")
            .and_then(|c| c.as_str())
            .unwrap_or("uncategorized")
            .to_string();
        let Some(endpoints) = props.get("endpoints").and_then(|e| e.as_array()) else {
            return Err(not_ours("an item has no `endpoints` array"));
        };
        for ep in endpoints {
            let line = domain_lines.get(k).copied().unwrap_or(0);
            k += 1;
            let place = |message: String| CatalogError::Parse {
                origin: origin.to_string(),
                line,
                column: 0,
                message,
            };
            let Some(domain) = ep.get("domainName").and_then(|d| d.as_str()) else {
                return Err(place("an endpoint has no `domainName` string".into()));
            };
            let pattern = Pattern::parse(domain).map_err(|e| place(e.0))?;
            let mut ports = Vec::new();
            if let Some(details) = ep.get("endpointDetails").and_then(|d| d.as_array()) {
                for d in details {
                    let Some(p) = d.get("port").and_then(|p| p.as_i64()) else {
                        continue;
                    };
                    ports.push(
                        port_range(&PortItem::Num(p))
                            .map_err(|m| place(format!("`{domain}`: {m}")))?,
                    );
                }
            }
            if ports.is_empty() {
                ports.push(PortRange { lo: 1, hi: 65535 });
            }
            ports.sort();
            ports.dedup();
            let mut base = format!(
                "ws.{}.{}",
                slug(&category, 64),
                slug(&pattern.text, usize::MAX)
            );
            if base.len() > 128 {
                // An id is at most 128 bytes (`valid_id`): room for a `-n` suffix.
                base.truncate(120);
                base.truncate(base.trim_end_matches(['-', '.']).len());
            }
            // The first of `base`, `base-2`, `base-3`, ... not taken yet (a host's own id may
            // end in `-2`).
            let mut id = base.clone();
            let mut n = 1;
            while !seen.insert(id.clone()) {
                n += 1;
                id = format!("{base}-{n}");
            }
            data.entries.push(Entry {
                id,
                cloud: Cloud::Any,
                group: slug(&category, 64),
                purpose: category.clone(),
                pattern,
                proto: Proto::Tcp,
                ports,
                requirement: Requirement::Required,
                scenario: CORE_SCENARIO.to_string(),
                condition: None,
                websocket: false,
                sources: vec![WORKSPACE_SOURCE.to_string()],
                note: None,
                origin: origin.to_string(),
            });
        }
    }
    data.sources.insert(
        WORKSPACE_SOURCE.to_string(),
        SourceInfo {
            title: "the workspace's own outboundNetworkDependenciesEndpoints list".into(),
            url: None,
            date: None,
            note: Some(format!("read from {origin}")),
        },
    );
    Ok(data)
}

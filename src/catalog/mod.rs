//! The catalog: which hosts, protocols and ports a service needs, and a matcher that tells which
//! catalog entries a host name seen in a capture belongs to.
//!
//! The built-in catalog (Azure Machine Learning, public, government and China clouds) is the
//! TOML file `src/catalog/azureml.toml`, embedded in the binary. Users load their own files in
//! the same schema (`--catalog FILE`), or the JSON a workspace's
//! `outboundNetworkDependenciesEndpoints` REST call returns. `docs/catalog.md` describes the
//! same schema for users.
//!
//! # Catalog file schema (TOML, version 1)
//!
//! ```toml
//! schema = 1                      # optional; 1 is the only version
//! title = "My service"            # optional
//!
//! [sources.doc-2026]              # optional: what the short source names in entries mean
//! title = "Configure inbound and outbound network traffic"
//! url = "https://example.com/page"
//! date = "2026-03-19"
//!
//! [scenarios.vscode]              # optional: describe a scenario, and whether it is on by default
//! description = "VS Code connects to a compute instance"
//! default = false
//!
//! [[entry]]
//! id = "public.vscode.vscode-dev" # required; unique; letters, digits, `.`, `-`, `_`
//! cloud = "public"                # required: public | gov | china | any
//! group = "vscode"                # required: general, workspace, notebook, compute, storage, ...
//! purpose = "VS Code remote"      # required: why the host is needed
//! host = "*.vscode.dev"           # required (alias `pattern`): the host pattern, see below
//! proto = "tcp"                   # tcp (default) | udp | any   (alias `protocol`)
//! ports = [443, "8704-8710"]      # required, not empty: ports, or "low-high" ranges
//! requirement = "required"        # required (default) | optional
//! scenario = "vscode"             # default "core" (always in scope)
//! condition = "only when ..."     # optional: the condition in words
//! websocket = false               # default false: the host carries WebSocket traffic
//! sources = ["doc-2026"]          # default []: where the fact comes from
//! note = "..."                    # optional
//!
//! [[service_tag]]                 # optional: IP-range rules (Azure service tags)
//! id = "tag.azureml"              # required, unique among service tags
//! tag = "AzureMachineLearning"    # required; may end in `.<region>`
//! cloud = "any"                   # as above
//! direction = "outbound"          # outbound (default) | inbound
//! proto = "tcp"                   # as above
//! ports = [443]                   # as above
//! requirement = "required"        # as above; scenario, condition, purpose, sources, note too
//!
//! [[private_endpoint_zone]]       # optional: private DNS zones of the services' private endpoints
//! zone = "privatelink.blob.core.windows.net"  # required: a DNS name; unique per cloud
//! cloud = "public"                # required: public | gov | china | any
//! service = "Azure Blob Storage"  # required: the service, in words
//! sources = ["pe-dns-2023"]       # default []
//! note = "..."                    # optional
//! ```
//!
//! Unknown keys are errors (a misspelt `prots` must not pass silently).
//!
//! # Host patterns
//!
//! - `login.microsoftonline.com`: exactly that name.
//! - `*.azureml.ms`: one or more labels in front of `azureml.ms` (as Azure Firewall FQDN tags
//!   do), never `azureml.ms` itself and never `evil-azureml.ms`.
//! - `<storage>.blob.core.windows.net`: a placeholder stands for exactly one label. Placeholders
//!   `<region>`, `<storage>`, `<acr>` and `<workspace-id>` are filled from options; an unfilled
//!   one matches any single label, and the matcher reports the label it bound. `*` and
//!   placeholders combine: `*.tundra.<region>.api.azureml.ms`.
//!
//! Names and patterns are compared case-insensitively, without a trailing dot, and in their
//! ASCII (punycode) form. See [`name::normalize`].
//!
//! # Scope
//!
//! Each entry belongs to one cloud and one scenario. A catalog is loaded for one cloud (entries
//! of cloud `any` are always kept) and a set of scenarios: `core` always, the scenarios the
//! catalog marks `default = true`, and those asked for with `--scenario` (`all` for every one).

mod matcher;
pub mod name;
mod options;
pub mod schema;
mod writer;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::names::{RangesError, TagRanges};
pub use matcher::{Binding, Bound, Hit};
pub use name::{normalize, Label, Pattern};
pub use options::{CatalogMode, CatalogOptions, CloudArg};
pub use schema::CatalogError;

/// The built-in catalog, as shipped.
pub const BUILTIN_TOML: &str = include_str!("azureml.toml");
/// Where built-in entries come from, as shown in messages.
pub const BUILTIN_ORIGIN: &str = "built-in";
/// The scenario every entry belongs to unless it says otherwise; always in scope.
pub const CORE_SCENARIO: &str = "core";

/// A cloud (sovereign Azure environment).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    Public,
    Gov,
    China,
    /// The entry applies to every cloud.
    Any,
}

impl Cloud {
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::Gov => "gov",
            Cloud::China => "china",
            Cloud::Any => "any",
        }
    }
}

/// A transport protocol.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Default,
    Serialize,
    Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
    Any,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Any => "any",
        }
    }
    /// `true` when traffic of protocol `seen` is allowed by an entry of protocol `self`.
    pub fn allows(self, seen: Proto) -> bool {
        self == Proto::Any || seen == Proto::Any || self == seen
    }
}

/// How much a blocked host matters once its scenario is in scope.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Requirement {
    #[default]
    Required,
    Optional,
}

impl Requirement {
    pub fn name(self) -> &'static str {
        match self {
            Requirement::Required => "required",
            Requirement::Optional => "optional",
        }
    }
}

/// Traffic direction of a service-tag rule.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Outbound,
    Inbound,
}

/// An inclusive port range; a single port has `lo == hi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortRange {
    pub lo: u16,
    pub hi: u16,
}

impl PortRange {
    pub fn one(p: u16) -> PortRange {
        PortRange { lo: p, hi: p }
    }
    pub fn contains(&self, p: u16) -> bool {
        self.lo <= p && p <= self.hi
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl Serialize for PortRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.lo == self.hi {
            s.serialize_u16(self.lo)
        } else {
            s.collect_str(self)
        }
    }
}

/// A port (a number) or a range (`"8704-8710"`), as [`PortRange`] is written.
impl schemars::JsonSchema for PortRange {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PortRange".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A port, or an inclusive range of ports written \"lo-hi\".",
            "oneOf": [
                { "type": "integer", "minimum": 0, "maximum": 65535 },
                { "type": "string", "pattern": "^[0-9]{1,5}-[0-9]{1,5}$" },
            ],
        })
    }
}

/// Formats ports as `80, 443, 8704-8710`.
pub fn ports_text(ports: &[PortRange]) -> String {
    let v: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    v.join(", ")
}

/// One catalog entry: a host pattern with the protocol and ports it needs, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Entry {
    pub id: String,
    pub cloud: Cloud,
    pub group: String,
    pub purpose: String,
    /// The host pattern, normalized (see [`Pattern`]).
    #[serde(rename = "pattern", serialize_with = "ser_pattern")]
    #[schemars(with = "String")]
    pub pattern: Pattern,
    pub proto: Proto,
    pub ports: Vec<PortRange>,
    pub requirement: Requirement,
    pub scenario: String,
    pub condition: Option<String>,
    pub websocket: bool,
    pub sources: Vec<String>,
    pub note: Option<String>,
    /// Where the entry was loaded from: `built-in`, a file path.
    pub origin: String,
}

fn ser_pattern<S: serde::Serializer>(p: &Pattern, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.text)
}

impl Entry {
    /// `true` when traffic of `proto` to `port` is what this entry allows (`None`: not checked).
    pub fn allows(&self, proto: Option<Proto>, port: Option<u16>) -> bool {
        self.proto_ok(proto) && port.is_none_or(|p| self.ports.iter().any(|r| r.contains(p)))
    }
    /// `true` when the protocol agrees (`None`: not checked).
    pub fn proto_ok(&self, proto: Option<Proto>) -> bool {
        proto.is_none_or(|p| self.proto.allows(p))
    }
}

/// An IP-range rule by Azure service tag. Host names are matched against [`Entry`] patterns,
/// not against these; a flow that a service-tags file (`--service-tags`) names by the tag of
/// its server's address is judged by these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ServiceTag {
    pub id: String,
    /// The tag, e.g. `AzureMachineLearning` or `Storage.<region>`.
    pub tag: String,
    pub cloud: Cloud,
    pub direction: Direction,
    pub proto: Proto,
    pub ports: Vec<PortRange>,
    pub requirement: Requirement,
    pub scenario: String,
    pub purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    pub sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub origin: String,
}

impl ServiceTag {
    /// `true` when traffic of `proto` to `port` is what this rule allows (`None`: not
    /// checked), as [`Entry::allows`].
    pub fn allows(&self, proto: Option<Proto>, port: Option<u16>) -> bool {
        proto.is_none_or(|p| self.proto.allows(p))
            && port.is_none_or(|p| self.ports.iter().any(|r| r.contains(p)))
    }

    /// `true` when a tag name from a service-tag file (e.g. `AzureMachineLearning.EastUS`)
    /// falls under this rule: the same tag, or a regional tag of it; a `.<region>` suffix
    /// matches any region unless `region` is given.
    pub fn matches(&self, name: &str, region: Option<&str>) -> bool {
        tag_matches(&self.tag, name, region)
    }
}

/// A private DNS zone that a private endpoint of one of the workspace's services uses
/// (`privatelink.blob.core.windows.net`): a CNAME chain through it that still ends at a public
/// address means the client does not get the private zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct PrivateEndpointZone {
    /// The zone, normalized (lower case, no trailing dot).
    pub zone: String,
    pub cloud: Cloud,
    /// The service whose private endpoint uses the zone, in words (`Azure Blob Storage`).
    pub service: String,
    pub sources: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub origin: String,
}

impl PrivateEndpointZone {
    /// `true` when `name` is the zone or a name under it (whole labels, case-insensitive, a
    /// trailing dot ignored).
    pub fn contains(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        let z = self.zone.as_bytes();
        let n = name.as_bytes();
        n.len() >= z.len()
            && n[n.len() - z.len()..].eq_ignore_ascii_case(z)
            && (n.len() == z.len() || n[n.len() - z.len() - 1] == b'.')
    }
}

/// What a short source name stands for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceInfo {
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A scenario's description, and whether it is in scope when no `--scenario` says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub default: bool,
}

/// A catalog as loaded, before it is compiled for matching: entries, service tags, and the
/// descriptions of sources and scenarios. Merge, filter, then [`Catalog::new`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogData {
    pub title: Option<String>,
    pub entries: Vec<Entry>,
    pub service_tags: Vec<ServiceTag>,
    pub private_endpoint_zones: Vec<PrivateEndpointZone>,
    pub sources: BTreeMap<String, SourceInfo>,
    pub scenarios: BTreeMap<String, ScenarioInfo>,
    /// Entries of the cloud in scope that [`CatalogData::retain_scope`] left out for their
    /// scenario: kept to say which scenario lists a port a flow used.
    pub other_scenarios: Vec<Entry>,
}

/// Which scenarios are in scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioSel {
    /// Every scenario.
    All,
    /// `core` plus these.
    Set(BTreeSet<String>),
}

impl ScenarioSel {
    pub fn contains(&self, s: &str) -> bool {
        match self {
            ScenarioSel::All => true,
            ScenarioSel::Set(set) => s == CORE_SCENARIO || set.contains(s),
        }
    }
}

impl CatalogData {
    /// The built-in catalog (parsed once, then cloned).
    pub fn builtin() -> CatalogData {
        static BUILTIN: std::sync::OnceLock<CatalogData> = std::sync::OnceLock::new();
        BUILTIN
            .get_or_init(|| {
                schema::parse_toml(BUILTIN_TOML, BUILTIN_ORIGIN)
                    .expect("the built-in catalog parses (tested)")
            })
            .clone()
    }

    /// Parses a catalog file's text: TOML in the schema above, or a workspace's
    /// `outboundNetworkDependenciesEndpoints` JSON (recognized by a leading `{` or `[{`).
    /// `origin` names the file in error messages and in each entry's `origin`.
    pub fn parse(text: &str, origin: &str) -> Result<CatalogData, CatalogError> {
        schema::parse_any(text, origin)
    }

    /// Reads and parses a catalog file (see [`CatalogData::parse`]).
    pub fn load_file(path: &std::path::Path) -> Result<CatalogData, CatalogError> {
        let origin = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| CatalogError::Io {
            path: origin.clone(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| CatalogError::Parse {
            origin: origin.clone(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count(),
            column: 0,
            message: "the file is not UTF-8 text".into(),
        })?;
        schema::parse_any(&text, &origin)
    }

    /// Adds `other`'s entries and service tags; one whose id is already present replaces the
    /// earlier one in place (so an exported, edited file can override single entries).
    /// Source and scenario descriptions are merged the same way.
    pub fn merge(&mut self, other: CatalogData) {
        let mut at: std::collections::HashMap<String, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.clone(), i))
            .collect();
        for e in other.entries {
            match at.get(&e.id) {
                Some(&i) => self.entries[i] = e,
                None => {
                    at.insert(e.id.clone(), self.entries.len());
                    self.entries.push(e);
                }
            }
        }
        for t in other.service_tags {
            match self.service_tags.iter_mut().find(|x| x.id == t.id) {
                Some(x) => *x = t,
                None => self.service_tags.push(t),
            }
        }
        for z in other.private_endpoint_zones {
            match self
                .private_endpoint_zones
                .iter_mut()
                .find(|x| x.zone == z.zone && x.cloud == z.cloud)
            {
                Some(x) => *x = z,
                None => self.private_endpoint_zones.push(z),
            }
        }
        self.sources.extend(other.sources);
        self.scenarios.extend(other.scenarios);
        if self.title.is_none() {
            self.title = other.title;
        }
    }

    /// Every scenario named by a description or used by an entry or service tag, plus `core`.
    pub fn scenario_names(&self) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = self.scenarios.keys().cloned().collect();
        s.extend(self.entries.iter().map(|e| e.scenario.clone()));
        s.extend(self.service_tags.iter().map(|e| e.scenario.clone()));
        s.insert(CORE_SCENARIO.to_string());
        s
    }

    /// The scenarios on by default: `core` and those described with `default = true`.
    pub fn default_scenarios(&self) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = self
            .scenarios
            .iter()
            .filter(|(_, i)| i.default)
            .map(|(k, _)| k.clone())
            .collect();
        s.insert(CORE_SCENARIO.to_string());
        s
    }

    /// Keeps the entries and service tags of `cloud` (`None`: every cloud; entries of cloud
    /// `any` always stay) and of the selected scenarios.
    pub fn retain_scope(&mut self, cloud: Option<Cloud>, scenarios: &ScenarioSel) {
        let cloud_ok = |c: Cloud| cloud.is_none_or(|want| c == want || c == Cloud::Any);
        let (kept, other): (Vec<Entry>, Vec<Entry>) = std::mem::take(&mut self.entries)
            .into_iter()
            .filter(|e| cloud_ok(e.cloud))
            .partition(|e| scenarios.contains(&e.scenario));
        self.entries = kept;
        self.other_scenarios.extend(other);
        self.service_tags
            .retain(|e| cloud_ok(e.cloud) && scenarios.contains(&e.scenario));
        self.private_endpoint_zones.retain(|z| cloud_ok(z.cloud));
    }

    /// The first private-endpoint zone that `name` is in or under (see
    /// [`PrivateEndpointZone::contains`]).
    pub fn private_endpoint_zone(&self, name: &str) -> Option<&PrivateEndpointZone> {
        self.private_endpoint_zones
            .iter()
            .find(|z| z.contains(name))
    }

    /// The catalog as a TOML file in the schema above (accepted by `catalog check` and
    /// `--catalog`).
    pub fn to_toml(&self) -> String {
        writer::to_toml(self)
    }
}

impl CatalogData {
    /// Writes placeholder values into the patterns (for export).
    pub fn fill_placeholders(&mut self, p: &Placeholders) {
        if p.0.is_empty() {
            return;
        }
        for e in &mut self.entries {
            if let Ok(np) = Pattern::parse(&p.fill(&e.pattern)) {
                e.pattern = np;
            }
        }
    }
}

/// Values for placeholders (`region` -> `eastus`). Names without a value match any one label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placeholders(pub BTreeMap<String, String>);

impl Placeholders {
    /// Sets `name` to `value` after checking `value` is one DNS label (normalized).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), CatalogError> {
        let bad = || CatalogError::Options {
            message: format!(
                "--{name} {}: must be a single DNS label (letters, digits, `-`)",
                crate::text::escape_terminal(value)
            ),
        };
        let v = normalize(value).ok_or_else(bad)?;
        if !name::valid_literal_label(&v) {
            return Err(bad());
        }
        self.0.insert(name.to_string(), v.into_owned());
        Ok(())
    }
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The text of `pattern` with the placeholders that have a value written in
    /// (`<storage>.blob.core.windows.net` -> `acct.blob.core.windows.net`); the others stay.
    pub fn fill(&self, pattern: &Pattern) -> String {
        let mut text = String::new();
        if pattern.wildcard {
            text.push_str("*.");
        }
        for (i, l) in pattern.labels.iter().enumerate() {
            if i > 0 {
                text.push('.');
            }
            match l {
                Label::Literal(s) => text.push_str(s),
                Label::Placeholder(n) => match self.get(n) {
                    Some(v) => text.push_str(v),
                    None => {
                        text.push('<');
                        text.push_str(n);
                        text.push('>');
                    }
                },
            }
        }
        text
    }
}

/// The cloud and scenarios a catalog was loaded for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `None`: every cloud.
    pub cloud: Option<Cloud>,
    /// The scenarios in scope.
    pub scenarios: BTreeSet<String>,
}

/// A compiled catalog: the entries in scope and a matcher built over their patterns.
#[derive(Debug)]
pub struct Catalog {
    data: CatalogData,
    placeholders: Placeholders,
    matcher: matcher::Matcher,
    /// The matcher of [`CatalogData::other_scenarios`].
    others: matcher::Matcher,
    scope: Option<Scope>,
}

/// One catalog entry that matched a name, with what was bound and whether protocol and port
/// were what the entry lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// Index into [`Catalog::entries`].
    pub entry: usize,
    /// Placeholder values of the pattern: the label the name had for an unfilled placeholder,
    /// the given value for a filled one. Left to right as in the pattern.
    pub bound: Bound,
    /// The protocol agrees (or was not asked about).
    pub proto_ok: bool,
    /// Protocol and port both agree (or were not asked about).
    pub port_ok: bool,
}

impl Catalog {
    /// Compiles `data` with these placeholder values. Every pattern is compiled once.
    pub fn new(data: CatalogData, placeholders: Placeholders) -> Catalog {
        let matcher = matcher::Matcher::new(&data.entries, &placeholders);
        let others = matcher::Matcher::new(&data.other_scenarios, &placeholders);
        Catalog {
            data,
            placeholders,
            matcher,
            others,
            scope: None,
        }
    }

    /// The cloud and scenarios it was loaded for ([`CatalogOptions::load`]); `None` when built
    /// directly.
    pub fn scope(&self) -> Option<&Scope> {
        self.scope.as_ref()
    }

    /// The whole built-in catalog (every cloud and scenario), placeholders unfilled.
    pub fn builtin() -> Catalog {
        Catalog::new(CatalogData::builtin(), Placeholders::default())
    }

    pub fn entries(&self) -> &[Entry] {
        &self.data.entries
    }
    pub fn data(&self) -> &CatalogData {
        &self.data
    }
    pub fn placeholders(&self) -> &Placeholders {
        &self.placeholders
    }

    /// The entries whose pattern matches `name`, most specific first (cached per name).
    pub fn lookup(&self, name: &str) -> Arc<[Hit]> {
        self.matcher.lookup(name)
    }

    /// As [`Catalog::lookup`], without the cache.
    pub fn lookup_uncached(&self, name: &str) -> Vec<Hit> {
        self.matcher.lookup_uncached(name)
    }

    /// The entries matching `name`, most specific first; protocol and port not checked.
    pub fn match_name(&self, name: &str) -> Vec<Match> {
        self.match_endpoint(name, None, None)
    }

    /// The entries matching `name`, most specific first, each with `port_ok` telling whether
    /// `proto`/`port` are what the entry lists (`None`: not checked).
    pub fn match_endpoint(
        &self,
        name: &str,
        proto: Option<Proto>,
        port: Option<u16>,
    ) -> Vec<Match> {
        self.lookup(name)
            .iter()
            .map(|h| {
                let e = &self.data.entries[h.entry as usize];
                Match {
                    entry: h.entry as usize,
                    bound: h.bound.clone(),
                    proto_ok: e.proto_ok(proto),
                    port_ok: e.allows(proto, port),
                }
            })
            .collect()
    }

    /// The scenarios out of scope whose entries list `proto`/`port` for `name` (e.g.
    /// `private-endpoint` for a compute instance's port 8787).
    pub fn other_scenarios_listing(
        &self,
        name: &str,
        proto: Option<Proto>,
        port: Option<u16>,
    ) -> BTreeSet<String> {
        self.others
            .lookup(name)
            .iter()
            .map(|h| &self.data.other_scenarios[h.entry as usize])
            .filter(|e| e.allows(proto, port))
            .map(|e| e.scenario.clone())
            .collect()
    }

    /// [`Catalog::match_name`] over many names, in parallel (rayon), sharing the cache.
    pub fn match_many(&self, names: &[&str]) -> Vec<Vec<Match>> {
        use rayon::prelude::*;
        names.par_iter().map(|n| self.match_name(n)).collect()
    }

    /// [`Catalog::match_endpoint`] over many (name, protocol, port) triples, in parallel.
    pub fn match_many_endpoints(
        &self,
        queries: &[(&str, Option<Proto>, Option<u16>)],
    ) -> Vec<Vec<Match>> {
        use rayon::prelude::*;
        queries
            .par_iter()
            .map(|(n, pr, po)| self.match_endpoint(n, *pr, *po))
            .collect()
    }

    /// The service-tag rules a tag name (e.g. `AzureMachineLearning.EastUS`) falls under.
    pub fn match_service_tag(&self, tag_name: &str) -> Vec<&ServiceTag> {
        self.service_tag_rules(tag_name).map(|(_, t)| t).collect()
    }

    /// [`Catalog::match_service_tag`] with each rule's index in `data().service_tags`.
    pub fn service_tag_rules<'a, 'n>(
        &'a self,
        tag_name: &'n str,
    ) -> impl Iterator<Item = (usize, &'a ServiceTag)> + use<'a, 'n> {
        let region = self.placeholders.get("region");
        self.data
            .service_tags
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.matches(tag_name, region))
    }

    /// Drops every cached lookup.
    pub fn clear_cache(&self) {
        self.matcher.clear_cache();
    }
}
/// Whether the service tag `name` (as a firewall rule or the Azure ranges file spells it) is
/// the catalog's `tag` or one of its regional tags (`Storage.EastUS` for `Storage` or
/// `Storage.<region>`, the region one label and, with `region`, that one).
pub fn tag_matches(tag: &str, name: &str, region: Option<&str>) -> bool {
    let name = name.to_ascii_lowercase();
    let tag = tag.to_ascii_lowercase();
    if let Some(base) = tag.strip_suffix(".<region>") {
        let Some(rest) = name.strip_prefix(base).and_then(|r| r.strip_prefix('.')) else {
            return false;
        };
        return !rest.is_empty()
            && !rest.contains('.')
            && region.is_none_or(|r| r.eq_ignore_ascii_case(rest));
    }
    name == tag
        || name
            .strip_prefix(&tag)
            .and_then(|r| r.strip_prefix('.'))
            .is_some_and(|r| !r.is_empty() && !r.contains('.'))
}

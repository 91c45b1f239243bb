//! Checking read allowlists against the catalog in scope.
//!
//! Every catalog entry in scope becomes one *need* per port range (protocol `any`, which the
//! sources write for the HTTPS Batch hosts, is asked of TCP), each service-tag rule (outbound)
//! one per port range too. Each need is walked through each file's rules in the file's order
//! ([`decide`]): the first rule that holds every name of the need's pattern on its protocol and
//! ports decides; a rule that holds only part of it (`ws.azureml.ms` of `*.azureml.ms`, port 443
//! of 443-445) is noted and the walk goes on. A pattern whose placeholder has no value
//! (`<storage>.blob.core.windows.net` without `--storage`) is permitted *for* the labels the
//! allowlist names there (`acct.blob.core.windows.net`: `<storage>` = acct), and the report
//! says so. A need is permitted when any file permits it (a proxy and a firewall side by side).
//!
//! Service-tag rules are checked only when some file names a service tag: they are the
//! IP-range way of allowing what the host names allow (seed-004 advises against it), not
//! something a list of names lacks.
//!
//! Then each allow rule's destinations are looked at the other way round: one that no catalog
//! pattern in scope holds lets through more than the catalog needs (`*.windows.net`, `*`), or
//! more ports; one that matches no catalog entry (or none on its ports) allows nothing the
//! catalog expects.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::shape::{holds, overlaps, Bindings, Shape};
use super::{Action, Allowlist, App, DestKind, NotFollowed, Rule, Service, Services};
use crate::audit::rules::Needed;
use crate::catalog::{Catalog, Direction, Placeholders, PortRange, Proto};

/// What a need is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NeedKind {
    /// A host-name pattern (catalog entry).
    Host,
    /// An Azure service tag (catalog service-tag rule).
    ServiceTag,
}

/// What the catalog asks an allowlist to let through: one entry, one protocol, one port range.
#[derive(Debug, Clone)]
pub struct Need {
    pub kind: NeedKind,
    /// The entry's (or service-tag rule's) id.
    pub id: String,
    /// The destination: the pattern (or tag) with the placeholders that have a value filled.
    pub dest: String,
    /// A service tag as the catalog writes it (`Storage.<region>`), matched with the region.
    tag: String,
    /// The names, for a host.
    shape: Shape,
    /// The names with every placeholder free, when some have a value: to say which value the
    /// allowlist names instead.
    free: Option<Shape>,
    /// The entry's protocol as the catalog writes it (`any` allows both).
    entry_proto: Proto,
    /// The protocol asked for: `Tcp` or `Udp`.
    pub proto: Proto,
    pub ports: PortRange,
    pub requirement: &'static str,
    pub scenario: String,
    pub purpose: String,
    pub cloud: &'static str,
    pub websocket: bool,
}

/// The outcome of a need, or of an entry (its worst port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Some file lets every name of it through.
    Permitted,
    /// Only for the placeholder values the allowlist names (placeholder without a value).
    PermittedFor,
    /// No file lets it (all of it) through.
    Missing,
}

/// One protocol and port range of an entry, checked.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct PortCheck {
    pub proto: &'static str,
    #[serde(serialize_with = "ser_range")]
    #[schemars(with = "String", extend("pattern" = "^[0-9]{1,5}(-[0-9]{1,5})?$"))]
    pub ports: PortRange,
    pub status: Status,
    /// The rules that permit it.
    pub by: Vec<RuleRef>,
    /// For [`Status::PermittedFor`]: the placeholder values the allowlist names.
    pub values: Vec<Bindings>,
    /// What else was found on the way: a rule that allows only part of it, one that denies
    /// part of it, one that was not followed, the value the allowlist names instead of the
    /// one given, why a proxy cannot carry it.
    pub notes: Vec<String>,
}

fn ser_range<S: serde::Serializer>(r: &PortRange, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(r)
}

/// A rule, by its file and its name in the file's terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
pub struct RuleRef {
    pub file: String,
    pub rule: String,
}

impl RuleRef {
    fn of(rule: &Rule) -> RuleRef {
        RuleRef {
            file: rule.file.clone(),
            rule: rule.label.clone(),
        }
    }
}

impl std::fmt::Display for RuleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.rule)
    }
}

/// One catalog entry (or service-tag rule), checked on each of its ports.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EntryCheck {
    pub kind: NeedKind,
    pub id: String,
    /// The destination (placeholders with a value filled).
    pub destination: String,
    pub requirement: &'static str,
    pub scenario: String,
    pub purpose: String,
    /// The worst of its ports.
    pub status: Status,
    pub ports: Vec<PortCheck>,
    #[serde(skip)]
    pub(super) needs: Vec<Need>,
}

/// An allow rule's destination, by file and rule.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct At {
    pub file: String,
    pub rule: String,
    pub destination: String,
    /// Where the destination is defined when not in the rule itself (a squid ACL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defined: Option<String>,
}

/// An allow rule's destination that lets through more than the catalog needs.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Broader {
    #[serde(flatten)]
    pub at: At,
    pub why: String,
    /// The catalog destinations it covers or touches.
    pub catalog: Vec<String>,
}

/// An allow rule's destination that lets through nothing the catalog expects.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Useless {
    #[serde(flatten)]
    pub at: At,
    pub why: String,
    /// Scenarios out of scope whose entries it matches.
    pub other_scenarios: Vec<String>,
}

/// Whether the catalog's service-tag rules were checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TagsChecked {
    /// Some file names a service tag.
    Checked,
    /// No file names one: the catalog's service-tag rules (this many) were not asked for.
    NotChecked,
}

/// One file, as read.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct FileInfo {
    pub file: String,
    pub format: &'static str,
    pub rules: usize,
}

/// The whole check.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Check {
    pub inputs: Vec<FileInfo>,
    /// The cloud and scenarios in scope.
    pub cloud: Option<&'static str>,
    pub scenarios: Vec<String>,
    /// Every placeholder the entries in scope use, with its value (`None`: unset).
    pub placeholders: BTreeMap<String, Option<String>>,
    /// Every entry in scope (host patterns, then service tags when checked), in catalog order.
    pub entries: Vec<EntryCheck>,
    pub service_tags: TagsChecked,
    /// The catalog's outbound service-tag rules in scope.
    pub service_tag_rules: usize,
    pub broader: Vec<Broader>,
    pub useless: Vec<Useless>,
    pub not_followed: Vec<NotFollowed>,
}

impl Check {
    /// The entries with some port missing.
    pub fn missing(&self) -> impl Iterator<Item = &EntryCheck> {
        self.entries.iter().filter(|e| e.status == Status::Missing)
    }

    /// The entries whose every port is permitted (some only for the allowlist's placeholder
    /// values).
    pub fn permitted(&self) -> impl Iterator<Item = &EntryCheck> {
        self.entries.iter().filter(|e| e.status != Status::Missing)
    }

    /// The missing ports of every entry, one per port, for [`crate::audit::rules::rules_for_needs`].
    pub fn needed(&self) -> Vec<Needed> {
        let mut out = Vec::new();
        for e in self.missing() {
            for (pc, n) in e.ports.iter().zip(&e.needs) {
                if pc.status != Status::Missing {
                    continue;
                }
                let entry = crate::audit::EntryRef {
                    id: n.id.clone(),
                    pattern: n.dest.clone(),
                    purpose: n.purpose.clone(),
                    cloud: n.cloud.into(),
                    requirement: n.requirement.into(),
                    scenario: n.scenario.clone(),
                    websocket: n.websocket,
                };
                // A range wider than a rule list should spell out is left to the reader.
                if u32::from(n.ports.hi) - u32::from(n.ports.lo) >= 1024 {
                    continue;
                }
                for port in n.ports.lo..=n.ports.hi {
                    out.push(Needed {
                        entry: entry.clone(),
                        proto: n.proto.name(),
                        port,
                    });
                }
            }
        }
        out
    }

    /// The verdict names (as `--fail-on` knows them) of everything found: a missing entry is
    /// `required-blocked` or `optional-blocked`, a broader or useless destination
    /// `unexpected-reached` (it lets through what the catalog does not expect).
    pub fn verdicts(&self) -> Vec<&'static str> {
        use crate::audit::Verdict;
        let mut v: Vec<&'static str> = self
            .missing()
            .map(|e| {
                if e.requirement == crate::catalog::Requirement::Required.name() {
                    Verdict::RequiredBlocked.name()
                } else {
                    Verdict::OptionalBlocked.name()
                }
            })
            .collect();
        v.extend(
            self.broader
                .iter()
                .map(|_| Verdict::UnexpectedReached.name())
                .chain(
                    self.useless
                        .iter()
                        .map(|_| Verdict::UnexpectedReached.name()),
                ),
        );
        v
    }
}

/// How a rule relates to a need.
enum Rel {
    /// It holds every name, on every port.
    Full,
    /// It holds every name for these placeholder values.
    Bound(Vec<Bindings>),
    /// It holds part of it; the words say which.
    Partial(String),
    None,
}

/// How much of `ports` on `proto` the services carry: every port, some, none.
fn service_cover(services: &Services, proto: Proto, ports: PortRange) -> (bool, bool) {
    let set = match services {
        Services::Unspecified => return (true, true),
        Services::Set(s) => s,
    };
    let carries = |p: u16| set.iter().any(|s: &Service| s.carries(proto, p));
    // Walk the range by the services' boundaries rather than port by port.
    let mut all = true;
    let mut any = false;
    let mut p = u32::from(ports.lo);
    while p <= u32::from(ports.hi) {
        let port = p as u16;
        let c = carries(port);
        all &= c;
        any |= c;
        // Next boundary: the end of the service holding `port`, or the next start after it.
        let next = set
            .iter()
            .filter(|s| s.proto.allows(proto))
            .flat_map(|s| [u32::from(s.ports.lo), u32::from(s.ports.hi) + 1])
            .filter(|&b| b > p)
            .min()
            .unwrap_or(u32::from(ports.hi) + 1);
        // Ports 80 and 443 are where an HTTP or HTTPS service's answer changes.
        let next = [80u32, 81, 443, 444]
            .into_iter()
            .filter(|&b| b > p)
            .fold(next, u32::min);
        p = next;
    }
    (all, any)
}

/// How a tag the allowlist names relates to the catalog's tag (`Storage.<region>`) with
/// `region`: every region, one region (bound), part, none. `AzureCloud` holds every Azure
/// address.
fn tag_relation(named: &str, catalog_tag: &str, region: Option<&str>) -> Rel {
    let n = named.to_ascii_lowercase();
    let t = catalog_tag.to_ascii_lowercase();
    if n == "azurecloud" {
        return Rel::Full;
    }
    if let Some(base) = t.strip_suffix(".<region>") {
        if n == base {
            return Rel::Full;
        }
        let Some(r) = n.strip_prefix(base).and_then(|r| r.strip_prefix('.')) else {
            return Rel::None;
        };
        if r.is_empty() || r.contains('.') {
            return Rel::None;
        }
        return match region {
            Some(want) if want.eq_ignore_ascii_case(r) => Rel::Full,
            Some(_) => Rel::None,
            None => Rel::Bound(vec![Bindings::from([(
                "region".to_string(),
                r.to_string(),
            )])]),
        };
    }
    if n == t {
        return Rel::Full;
    }
    if n.strip_prefix(&t)
        .and_then(|r| r.strip_prefix('.'))
        .is_some_and(|r| !r.is_empty() && !r.contains('.'))
    {
        return Rel::Partial(format!("{named} (one region of {catalog_tag})"));
    }
    Rel::None
}

/// How `rule` relates to `need`.
fn relation(rule: &Rule, need: &Need, region: Option<&str>) -> Rel {
    let (all_ports, some_ports) = service_cover(&rule.services, need.proto, need.ports);
    if !some_ports {
        return Rel::None;
    }
    let mut bound = Vec::new();
    let mut partial = Vec::new();
    let mut full = false;
    for d in &rule.dests {
        let r = match (&d.kind, need.kind) {
            (DestKind::AnyAddress, _) => Rel::Full,
            (DestKind::Name(s), NeedKind::Host) => match holds(s, &need.shape) {
                Some(b) if b.is_empty() => Rel::Full,
                Some(b) => Rel::Bound(vec![b]),
                None if overlaps(s, &need.shape) => Rel::Partial(d.text.clone()),
                None => Rel::None,
            },
            (DestKind::Tag(t), NeedKind::ServiceTag) => tag_relation(t, &need.tag, region),
            _ => Rel::None,
        };
        match r {
            Rel::Full => full = true,
            Rel::Bound(b) => bound.extend(b),
            Rel::Partial(p) => partial.push(p),
            Rel::None => {}
        }
    }
    let mut rel = if full {
        Rel::Full
    } else if !bound.is_empty() {
        Rel::Bound(bound)
    } else if !partial.is_empty() {
        Rel::Partial(partial.join(", "))
    } else {
        return Rel::None;
    };
    if need.kind == NeedKind::Host {
        for e in &rule.except {
            let DestKind::Name(s) = &e.kind else { continue };
            match holds(s, &need.shape) {
                Some(b) if b.is_empty() => return Rel::None,
                _ if overlaps(s, &need.shape) => {
                    rel = Rel::Partial(format!("all but {}", e.text));
                }
                _ => {}
            }
        }
    }
    if !all_ports {
        if let Rel::Full | Rel::Bound(_) = rel {
            rel = Rel::Partial(format!("some of ports {}", need.ports));
        }
    }
    rel
}

/// One file's answer for one need.
enum Decision {
    Permitted(RuleRef, Vec<String>),
    PermittedFor(Vec<Bindings>, Vec<RuleRef>, Vec<String>),
    NotPermitted(Vec<String>),
}

fn rule_name(rule: &Rule) -> String {
    RuleRef::of(rule).to_string()
}

/// Walks `need` through `list`'s rules in order (see the module documentation).
fn decide(list: &Allowlist, need: &Need, region: Option<&str>) -> Decision {
    if list.http_only {
        let proxied = need.proto == Proto::Tcp
            && (need.ports == PortRange::one(80) || need.ports == PortRange::one(443));
        if !proxied {
            return Decision::NotPermitted(vec![format!(
                "{}: a proxy carries HTTP (tcp 80) and HTTPS (tcp 443), not {} {}: allow it in a firewall",
                list.file,
                need.proto.name(),
                need.ports
            )]);
        }
    }
    let mut notes = Vec::new();
    let mut bound: Vec<Bindings> = Vec::new();
    let mut bound_by: Vec<RuleRef> = Vec::new();
    // Placeholder values a deny decided first.
    let mut denied: Vec<Bindings> = Vec::new();
    // Rules not followed that might decide it: said once, after the walk.
    let mut unsure: Vec<String> = Vec::new();
    let unsure_note = |unsure: &[String]| {
        format!(
            "{}: not followed, and might decide it: {}",
            list.file,
            unsure.join("; ")
        )
    };
    for rule in &list.rules {
        let rel = relation(rule, need, region);
        if let Rel::None = rel {
            continue;
        }
        let verb = match rule.action {
            Action::Allow => "allows",
            Action::Deny => "denies",
        };
        if rule.uncertain.is_some() {
            let a = match rule.action {
                Action::Allow => "allow",
                Action::Deny => "deny",
            };
            unsure.push(format!("{} ({a})", rule.label));
            continue;
        }
        match (rule.action, rel) {
            (Action::Allow, Rel::Full) => {
                if !unsure.is_empty() {
                    notes.push(unsure_note(&unsure));
                }
                return Decision::Permitted(RuleRef::of(rule), notes);
            }
            (Action::Allow, Rel::Bound(b)) => {
                // A value denied by an earlier rule stays denied.
                let fresh: Vec<Bindings> = b.into_iter().filter(|v| !denied.contains(v)).collect();
                if !fresh.is_empty() {
                    bound.extend(fresh);
                    bound_by.push(RuleRef::of(rule));
                }
            }
            (Action::Deny, Rel::Full) => {
                if !unsure.is_empty() {
                    notes.push(unsure_note(&unsure));
                }
                // A deny of every destination is the default made explicit: not news.
                let catch_all = rule.dests.iter().any(|d| match &d.kind {
                    DestKind::Name(s) => s.is_every_name(),
                    DestKind::AnyAddress => true,
                    DestKind::Tag(_) => false,
                });
                if !catch_all {
                    notes.push(format!(
                        "denied by {} (a rule that allows it must come before that one)",
                        rule_name(rule)
                    ));
                }
                return if bound.is_empty() {
                    Decision::NotPermitted(notes)
                } else {
                    Decision::PermittedFor(bound, bound_by, notes)
                };
            }
            (_, Rel::Bound(b)) => {
                notes.push(format!(
                    "{} {verb} it for {}",
                    rule_name(rule),
                    b.iter().map(bindings_text).collect::<Vec<_>>().join(", ")
                ));
                denied.extend(b);
            }
            (_, Rel::Partial(what)) => notes.push(format!(
                "{} {verb} only part of it: {what}",
                rule_name(rule)
            )),
            (_, Rel::None) => {}
        }
    }
    if !unsure.is_empty() {
        notes.push(unsure_note(&unsure));
    }
    if !bound.is_empty() {
        return Decision::PermittedFor(bound, bound_by, notes);
    }
    if let Some(free) = &need.free {
        // A placeholder was given a value: does the allowlist name another one?
        for rule in list.rules.iter().filter(|r| r.action == Action::Allow) {
            for d in &rule.dests {
                if let DestKind::Name(s) = &d.kind {
                    if let Some(b) = holds(s, free).filter(|b| !b.is_empty()) {
                        notes.push(format!(
                            "{} allows it for {}, not the value given",
                            rule_name(rule),
                            bindings_text(&b)
                        ));
                    }
                }
            }
        }
    }
    Decision::NotPermitted(notes)
}

/// `<storage> = acct, <region> = eastus`.
pub fn bindings_text(b: &Bindings) -> String {
    b.iter()
        .map(|(k, v)| format!("<{k}> = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The protocol a need asks for: UDP for UDP, TCP for TCP and for `any` (see the module
/// documentation).
fn asked_of(p: Proto) -> Proto {
    if p == Proto::Udp {
        Proto::Udp
    } else {
        Proto::Tcp
    }
}

/// The needs of the catalog in scope.
fn needs(catalog: &Catalog, tags: bool) -> Vec<Vec<Need>> {
    let values = catalog.placeholders();
    let none = Placeholders::default();
    let mut out = Vec::new();
    for e in catalog.entries() {
        let shape = Shape::of_pattern(&e.pattern, values);
        let free = Shape::of_pattern(&e.pattern, &none);
        let proto = asked_of(e.proto);
        out.push(
            e.ports
                .iter()
                .map(|&ports| Need {
                    kind: NeedKind::Host,
                    id: e.id.clone(),
                    dest: values.fill(&e.pattern),
                    tag: String::new(),
                    shape: shape.clone(),
                    free: (free != shape).then(|| free.clone()),
                    entry_proto: e.proto,
                    proto,
                    ports,
                    requirement: e.requirement.name(),
                    scenario: e.scenario.clone(),
                    purpose: e.purpose.clone(),
                    cloud: e.cloud.name(),
                    websocket: e.websocket,
                })
                .collect(),
        );
    }
    if tags {
        let region = values.get("region");
        for t in &catalog.data().service_tags {
            if t.direction != Direction::Outbound {
                continue;
            }
            let dest = match region {
                Some(r) => t.tag.replace("<region>", r),
                None => t.tag.clone(),
            };
            let proto = asked_of(t.proto);
            out.push(
                t.ports
                    .iter()
                    .map(|&ports| Need {
                        kind: NeedKind::ServiceTag,
                        id: t.id.clone(),
                        dest: dest.clone(),
                        tag: t.tag.clone(),
                        shape: Shape::every_name(),
                        free: None,
                        entry_proto: t.proto,
                        proto,
                        ports,
                        requirement: t.requirement.name(),
                        scenario: t.scenario.clone(),
                        purpose: t.purpose.clone(),
                        cloud: t.cloud.name(),
                        websocket: false,
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Checks `lists` against `catalog` (see the module documentation).
pub fn check(lists: &[Allowlist], catalog: &Catalog) -> Check {
    let tags_used = lists.iter().any(|l| l.uses_tags);
    let region = catalog.placeholders().get("region");
    let all = needs(catalog, tags_used);
    let mut entries = Vec::new();
    for group in all {
        let Some(first) = group.first() else { continue };
        let mut ports = Vec::new();
        for n in &group {
            let decisions: Vec<Decision> = lists.iter().map(|l| decide(l, n, region)).collect();
            ports.push(combine(n, decisions));
        }
        let status = ports
            .iter()
            .map(|p| p.status)
            .max()
            .unwrap_or(Status::Permitted);
        let destination = first.dest.clone();
        entries.push(EntryCheck {
            kind: first.kind,
            id: first.id.clone(),
            destination,
            requirement: first.requirement,
            scenario: first.scenario.clone(),
            purpose: first.purpose.clone(),
            status,
            ports,
            needs: group,
        });
    }
    let (broader, useless) = breadth(lists, &entries, catalog, region);
    let mut placeholders = BTreeMap::new();
    for e in catalog.entries() {
        for p in e.pattern.placeholders() {
            placeholders.insert(
                p.to_string(),
                catalog.placeholders().get(p).map(str::to_string),
            );
        }
    }
    let scope = catalog.scope();
    Check {
        inputs: lists
            .iter()
            .map(|l| FileInfo {
                file: l.file.clone(),
                format: l.format.name(),
                rules: l.rules.len(),
            })
            .collect(),
        cloud: scope.and_then(|s| s.cloud).map(|c| c.name()),
        scenarios: scope
            .map(|s| s.scenarios.iter().cloned().collect())
            .unwrap_or_default(),
        placeholders,
        entries,
        service_tags: if tags_used {
            TagsChecked::Checked
        } else {
            TagsChecked::NotChecked
        },
        service_tag_rules: catalog
            .data()
            .service_tags
            .iter()
            .filter(|t| t.direction == Direction::Outbound)
            .count(),
        broader,
        useless,
        not_followed: lists
            .iter()
            .flat_map(|l| l.not_followed.iter().cloned())
            .collect(),
    }
}

/// The answer over every file for one need: permitted if any file permits it.
fn combine(n: &Need, decisions: Vec<Decision>) -> PortCheck {
    let mut pc = PortCheck {
        proto: n.proto.name(),
        ports: n.ports,
        status: Status::Missing,
        by: Vec::new(),
        values: Vec::new(),
        notes: Vec::new(),
    };
    let mut for_values = (Vec::new(), Vec::new(), Vec::new());
    let mut missing_notes = Vec::new();
    for d in decisions {
        match d {
            Decision::Permitted(by, notes) => {
                pc.status = Status::Permitted;
                pc.by.push(by);
                pc.notes.extend(notes);
            }
            Decision::PermittedFor(values, by, notes) => {
                for_values.0.extend(values);
                for_values.1.extend(by);
                for_values.2.extend(notes);
            }
            Decision::NotPermitted(notes) => missing_notes.extend(notes),
        }
    }
    if pc.status == Status::Permitted {
        return pc;
    }
    if !for_values.0.is_empty() {
        pc.status = Status::PermittedFor;
        let mut values = for_values.0;
        values.sort();
        values.dedup();
        pc.values = values;
        pc.by = for_values.1;
        pc.notes = for_values.2;
        return pc;
    }
    pc.notes = missing_notes;
    pc
}

/// The protocols a service stands for.
fn protos(p: Proto) -> &'static [Proto] {
    match p {
        Proto::Any => &[Proto::Tcp, Proto::Udp],
        Proto::Tcp => &[Proto::Tcp],
        Proto::Udp => &[Proto::Udp],
    }
}

/// `true` when `s` carries `proto` to some port of `ports`.
fn carries_some(s: &Service, proto: Proto, ports: PortRange) -> bool {
    let lo = s.ports.lo.max(ports.lo);
    let hi = s.ports.hi.min(ports.hi);
    if lo > hi {
        return false;
    }
    match s.app {
        App::Any => s.proto.allows(proto),
        // An HTTP(S) service is about one port at a time; at most 80 and 443 are special.
        _ => [lo, hi, 80, 443]
            .into_iter()
            .filter(|p| (lo..=hi).contains(p))
            .chain((lo..=hi).find(|&p| p != 80 && p != 443))
            .any(|p| s.carries(proto, p)),
    }
}

/// `true` when `r` lies within the union of `ranges`.
fn within(r: PortRange, ranges: &[PortRange]) -> bool {
    let mut p = u32::from(r.lo);
    while p <= u32::from(r.hi) {
        match ranges
            .iter()
            .filter(|x| u32::from(x.lo) <= p && p <= u32::from(x.hi))
            .map(|x| u32::from(x.hi))
            .max()
        {
            Some(hi) => p = hi + 1,
            None => return false,
        }
    }
    true
}

fn services_text(s: &[Service]) -> String {
    let mut v: Vec<String> = s
        .iter()
        .map(|x| {
            let app = match x.app {
                App::Any => "",
                App::Http => " (http)",
                App::Https => " (https)",
            };
            format!("{} {}{app}", x.proto.name(), x.ports)
        })
        .collect();
    v.dedup();
    v.join(", ")
}

fn needs_ports_text(needs: &[&Need]) -> String {
    let mut v: Vec<String> = needs
        .iter()
        .map(|n| format!("{} {}", n.entry_proto.name(), n.ports))
        .collect();
    v.sort();
    v.dedup();
    v.join(", ")
}

/// The allow rules' destinations that let through more than the catalog needs, and those that
/// let through nothing it expects.
fn breadth(
    lists: &[Allowlist],
    entries: &[EntryCheck],
    catalog: &Catalog,
    region: Option<&str>,
) -> (Vec<Broader>, Vec<Useless>) {
    let needs: Vec<&Need> = entries.iter().flat_map(|e| e.needs.iter()).collect();
    let values = catalog.placeholders();
    let others: Vec<(Shape, &str)> = catalog
        .data()
        .other_scenarios
        .iter()
        .map(|e| (Shape::of_pattern(&e.pattern, values), e.scenario.as_str()))
        .collect();
    let mut broader = Vec::new();
    let mut useless = Vec::new();
    let mut seen = BTreeSet::new();
    for rule in lists.iter().flat_map(|l| l.rules.iter()) {
        if rule.action != Action::Allow || rule.uncertain.is_some() {
            continue;
        }
        let set: &[Service] = match &rule.services {
            Services::Set(s) => s,
            Services::Unspecified => &[],
        };
        let unspecified = rule.services == Services::Unspecified;
        for d in &rule.dests {
            if !seen.insert((rule.file.clone(), rule.label.clone(), d.text.clone())) {
                continue;
            }
            let at = At {
                file: rule.file.clone(),
                rule: rule.label.clone(),
                destination: d.text.clone(),
                defined: d.defined.clone(),
            };
            let mk_broader = |why: String, catalog: Vec<String>| Broader {
                at: at.clone(),
                why,
                catalog,
            };
            let mk_useless = |why: String, other_scenarios: Vec<String>| Useless {
                at: at.clone(),
                why,
                other_scenarios,
            };
            // The needs it touches (names), and which of them hold it whole.
            let (touched, holders): (Vec<&Need>, Vec<&Need>) = match &d.kind {
                DestKind::AnyAddress => {
                    broader.push(mk_broader("every address".into(), Vec::new()));
                    continue;
                }
                DestKind::Name(s) if s.is_every_name() => {
                    broader.push(mk_broader("every host name".into(), Vec::new()));
                    continue;
                }
                DestKind::Name(s) => {
                    let inner = s.without_apex();
                    let touched: Vec<&Need> = needs
                        .iter()
                        .copied()
                        .filter(|n| n.kind == NeedKind::Host && overlaps(s, &n.shape))
                        .collect();
                    let holders = touched
                        .iter()
                        .copied()
                        .filter(|n| holds(&n.shape, &inner).is_some())
                        .collect();
                    (touched, holders)
                }
                DestKind::Tag(t) => {
                    if t.eq_ignore_ascii_case("azurecloud") {
                        broader.push(mk_broader(
                            "every Azure address (the AzureCloud tag)".into(),
                            Vec::new(),
                        ));
                        continue;
                    }
                    let touched: Vec<&Need> = needs
                        .iter()
                        .copied()
                        .filter(|n| {
                            n.kind == NeedKind::ServiceTag
                                && !matches!(tag_relation(t, &n.tag, region), Rel::None)
                        })
                        .collect();
                    let holders = touched
                        .iter()
                        .copied()
                        .filter(|n| crate::catalog::tag_matches(&n.tag, t, region))
                        .collect();
                    (touched, holders)
                }
            };
            if touched.is_empty() {
                let mut other: Vec<String> = match &d.kind {
                    DestKind::Name(s) => others
                        .iter()
                        .filter(|(o, _)| overlaps(s, o))
                        .map(|(_, sc)| sc.to_string())
                        .collect(),
                    _ => Vec::new(),
                };
                other.sort();
                other.dedup();
                // A placeholder given another value than the one the destination names?
                let other_value: Vec<String> = match &d.kind {
                    DestKind::Name(s) => {
                        let mut v: Vec<String> = needs
                            .iter()
                            .filter(|n| n.free.as_ref().is_some_and(|f| overlaps(s, f)))
                            .map(|n| n.dest.clone())
                            .collect();
                        v.sort();
                        v.dedup();
                        v
                    }
                    _ => Vec::new(),
                };
                let why = match &d.kind {
                    _ if !other_value.is_empty() => format!(
                        "names another placeholder value than the one given: the catalog needs {}",
                        other_value.join(", ")
                    ),
                    DestKind::Tag(_) => "not a service tag the catalog lists in scope".to_string(),
                    _ => "no catalog entry in scope matches it".to_string(),
                };
                useless.push(mk_useless(why, other));
                continue;
            }
            if !unspecified {
                let on_ports = touched.iter().any(|n| {
                    set.iter().any(|s| {
                        protos(n.entry_proto)
                            .iter()
                            .any(|&p| carries_some(s, p, n.ports))
                    })
                });
                if !on_ports {
                    useless.push(mk_useless(
                        format!(
                            "the catalog needs it on {}; the rule allows {}",
                            needs_ports_text(&touched),
                            services_text(set)
                        ),
                        Vec::new(),
                    ));
                    continue;
                }
            }
            let mut names: Vec<String> = touched.iter().map(|n| n.dest.clone()).collect();
            names.sort();
            names.dedup();
            if holders.is_empty() {
                broader.push(mk_broader(
                    format!(
                        "lets through names no catalog entry needs; the catalog needs {}",
                        names.join(", ")
                    ),
                    names,
                ));
                continue;
            }
            if !unspecified {
                let extra: Vec<Service> = set
                    .iter()
                    .filter(|s| {
                        protos(s.proto).iter().any(|&p| {
                            let ranges: Vec<PortRange> = holders
                                .iter()
                                .filter(|n| n.entry_proto.allows(p))
                                .map(|n| n.ports)
                                .collect();
                            !within(s.ports, &ranges)
                        })
                    })
                    .copied()
                    .collect();
                if !extra.is_empty() {
                    broader.push(mk_broader(
                        format!(
                            "allows {}; the catalog lists {} for these names",
                            services_text(&extra),
                            needs_ports_text(&holders)
                        ),
                        names,
                    ));
                }
            }
        }
    }
    (broader, useless)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(proto: Proto, lo: u16, hi: u16, app: App) -> Service {
        Service {
            proto,
            ports: PortRange { lo, hi },
            app,
        }
    }

    #[test]
    fn services_cover_ranges_and_protocols() {
        let s = Services::Set(vec![
            svc(Proto::Tcp, 8704, 8706, App::Any),
            svc(Proto::Any, 8707, 8710, App::Any),
        ]);
        assert_eq!(
            service_cover(&s, Proto::Tcp, PortRange { lo: 8704, hi: 8710 }),
            (true, true)
        );
        assert_eq!(
            service_cover(&s, Proto::Udp, PortRange { lo: 8704, hi: 8710 }),
            (false, true)
        );
        assert_eq!(
            service_cover(&s, Proto::Udp, PortRange::one(443)),
            (false, false)
        );
        let app = Services::Set(vec![
            svc(Proto::Tcp, 443, 443, App::Http),
            svc(Proto::Tcp, 80, 80, App::Https),
        ]);
        assert_eq!(
            service_cover(&app, Proto::Tcp, PortRange::one(443)),
            (false, false)
        );
        assert_eq!(
            service_cover(&app, Proto::Tcp, PortRange::one(80)),
            (false, false)
        );
        let every = Services::Set(vec![svc(Proto::Any, 1, 65535, App::Any)]);
        assert_eq!(
            service_cover(&every, Proto::Udp, PortRange { lo: 1, hi: 65535 }),
            (true, true)
        );
    }

    #[test]
    fn tags_relate_by_region() {
        assert!(matches!(
            tag_relation("Storage", "Storage.<region>", None),
            Rel::Full
        ));
        assert!(matches!(
            tag_relation("Storage.EastUS", "Storage.<region>", Some("eastus")),
            Rel::Full
        ));
        assert!(matches!(
            tag_relation("Storage.WestUS", "Storage.<region>", Some("eastus")),
            Rel::None
        ));
        assert!(matches!(
            tag_relation("Storage.WestUS", "Storage.<region>", None),
            Rel::Bound(_)
        ));
        assert!(matches!(
            tag_relation("AzureMachineLearning.EastUS", "AzureMachineLearning", None),
            Rel::Partial(_)
        ));
        assert!(matches!(
            tag_relation("AzureCloud", "Storage.<region>", None),
            Rel::Full
        ));
        assert!(matches!(
            tag_relation("Sql", "Storage.<region>", None),
            Rel::None
        ));
    }

    /// A small catalog and an Azure Firewall policy: protocols, ports, ranges, order, values.
    #[test]
    fn needs_walk_the_rules_in_order() {
        let toml = r#"
[[entry]]
id = "api"
cloud = "public"
group = "g"
purpose = "p"
host = "*.a.example"
ports = [443]

[[entry]]
id = "blob"
cloud = "public"
group = "g"
purpose = "p"
host = "<storage>.blob.example"
ports = [443]

[[entry]]
id = "udp"
cloud = "public"
group = "g"
purpose = "p"
host = "t.example"
proto = "udp"
ports = [5831]

[[entry]]
id = "range"
cloud = "public"
group = "g"
purpose = "p"
host = "r.example"
ports = ["8704-8710"]
"#;
        let data = crate::catalog::CatalogData::parse(toml, "t").unwrap();
        let catalog = Catalog::new(data, Placeholders::default());
        let rule = |kind: &str, action: &str, prio: u32, body: &str| {
            format!(
                r#"{{"name": "c{prio}", "priority": {prio}, "action": {{"type": "{action}"}},
                    "rules": [{{"ruleType": "{kind}", "name": "r", {body}}}]}}"#
            )
        };
        let policy = format!(
            r#"{{"name": "g", "priority": 100, "ruleCollections": [{}]}}"#,
            [
                // HTTP on 443 is not HTTPS: never permits the TLS entry.
                rule("ApplicationRule", "Allow", 100, r#""targetFqdns": ["*.a.example"], "protocols": [{"protocolType": "Http", "port": 443}]"#),
                // Denied before it is allowed (collection 200 before 300).
                rule("ApplicationRule", "Deny", 200, r#""targetFqdns": ["x.blob.example"], "protocols": [{"protocolType": "Https", "port": 443}]"#),
                rule("ApplicationRule", "Allow", 300, r#""targetFqdns": ["x.blob.example", "y.blob.example", "*.a.example"], "protocols": [{"protocolType": "Https", "port": 443}]"#),
                rule("NetworkRule", "Allow", 400, r#""destinationFqdns": ["t.example"], "ipProtocols": ["Any"], "destinationPorts": ["1-65535"]"#),
                rule("NetworkRule", "Allow", 500, r#""destinationFqdns": ["r.example"], "ipProtocols": ["TCP"], "destinationPorts": ["8704-8707", "8708-8710"]"#),
            ]
            .join(",")
        );
        let list = super::super::azure::read(&policy, "p.json").unwrap();
        let c = check(&[list], &catalog);
        let got: Vec<(String, Status, Vec<Bindings>)> = c
            .entries
            .iter()
            .map(|e| (e.id.clone(), e.status, e.ports[0].values.clone()))
            .collect();
        let y = Bindings::from([("storage".to_string(), "y".to_string())]);
        assert_eq!(
            got,
            [
                ("api".to_string(), Status::Permitted, vec![]),
                ("blob".to_string(), Status::PermittedFor, vec![y]),
                ("udp".to_string(), Status::Permitted, vec![]),
                ("range".to_string(), Status::Permitted, vec![]),
            ]
        );
        assert!(c.entries[1].ports[0].notes[0].contains("denies it for <storage> = x"));
        // The network rule to t.example allows every port and both protocols: broader.
        let why: Vec<&str> = c.broader.iter().map(|b| b.why.as_str()).collect();
        assert_eq!(
            why,
            ["allows any 1-65535; the catalog lists udp 5831 for these names"]
        );
        // The HTTP rule's destination is the catalog's, on a port it does not use for HTTP.
        assert_eq!(c.useless.len(), 1);
        assert_eq!(c.useless[0].at.rule, "g/c100/r");
    }

    #[test]
    fn within_walks_unions() {
        let r = |lo, hi| PortRange { lo, hi };
        assert!(within(r(443, 445), &[r(443, 443), r(444, 500)]));
        assert!(!within(r(443, 445), &[r(443, 443), r(445, 445)]));
        assert!(within(r(1, 65535), &[r(1, 65535)]));
    }
}

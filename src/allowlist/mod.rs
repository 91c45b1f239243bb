//! Allowlists audited without a capture (`allowscope check-allowlist`): an Azure Firewall
//! policy's rule collection groups, a squid configuration, or a plain list of host names, read
//! into one model of ordered allow and deny rules ([`Allowlist`]), then checked against the
//! catalog in scope ([`check()`]): which catalog entries no rule permits (and the rules to add),
//! which rules let through more than the catalog needs, which let through nothing it expects.
//!
//! The readers are in [`azure`], [`squid`] and [`list`]; the format is told from the content
//! ([`detect`]) unless given. What a reader cannot follow (FQDN tags, IP groups, a squid ACL
//! read from a file, a regular expression, an address) is never guessed at: it is listed in
//! [`Allowlist::not_followed`] and the report says so.
//!
//! The model, shared by every format:
//! - a rule lets through (or denies) a set of destinations (host names as [`shape::Shape`]s,
//!   service tags, every name, every address) on a set of services (protocol, ports, and for
//!   Azure Firewall's application rules and a proxy, HTTP or HTTPS);
//! - rules are tried in the order the firewall tries them and the first that matches decides
//!   (Azure Firewall: network rules before application rules, each by rule collection group
//!   priority, then rule collection priority; squid: `http_access` lines top down); what no rule
//!   matches is denied (squid: the opposite of the last line, added as a last rule).

pub mod azure;
pub mod check;
pub mod list;
pub mod shape;
pub mod squid;

use std::fmt;

use crate::catalog::{PortRange, Proto};

pub use check::{
    bindings_text, check, At, Broader, Check, EntryCheck, Need, NeedKind, PortCheck, RuleRef,
    Status, TagsChecked, Useless,
};
pub use shape::Shape;

/// The formats `check-allowlist` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// An Azure Firewall policy's rule collection groups as JSON: an ARM template, `az network
    /// firewall policy rule-collection-group show` or `list` output, or the REST API's
    AzureFirewall,
    /// A squid configuration (`acl ... dstdomain`, `acl ... port`, `http_access`)
    Squid,
    /// One host name per line (`*.` wildcard, optional `:port` or `tcp/443`), `#` comments
    FqdnList,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::AzureFirewall => "azure-firewall",
            InputFormat::Squid => "squid",
            InputFormat::FqdnList => "fqdn-list",
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Deny,
}

/// Where a rule comes from, in words of its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// Azure Firewall application rule (HTTP/HTTPS by name).
    Application,
    /// Azure Firewall network rule (protocol, port, address, name or service tag).
    Network,
    /// A squid `http_access` line.
    Proxy,
    /// A line of a plain list.
    List,
}

impl RuleKind {
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Application => "application rule",
            RuleKind::Network => "network rule",
            RuleKind::Proxy => "http_access line",
            RuleKind::List => "list line",
        }
    }
}

/// A destination of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestKind {
    /// Host names (`*` is every name).
    Name(Shape),
    /// Every address (`*`, `0.0.0.0/0`): every name and every service tag.
    AnyAddress,
    /// An Azure service tag, as written (`Storage.EastUS`).
    Tag(String),
}

/// A destination of a rule, with its text as the file writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub text: String,
    pub kind: DestKind,
    /// Where it is defined when that is not the rule itself (a squid ACL's name and line).
    pub defined: Option<String>,
}

/// Application-layer protocol an application rule or a proxy matches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// Any traffic on the port (network rules, lists).
    Any,
    /// Plain HTTP (Azure Firewall `Http`; a proxied request that is not CONNECT).
    Http,
    /// TLS (Azure Firewall `Https`; a CONNECT tunnel through a proxy).
    Https,
}

/// One protocol and port range a rule lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Transport: `Tcp`, `Udp` or `Any` (both).
    pub proto: Proto,
    pub ports: PortRange,
    pub app: App,
}

impl Service {
    /// `true` when this service carries traffic of `proto` (`Tcp` or `Udp`) to `port`: the
    /// transport agrees, the port is in range, and an HTTP service is not asked to carry TLS
    /// on 443 nor an HTTPS one plain HTTP on 80.
    pub fn carries(&self, proto: Proto, port: u16) -> bool {
        let app_ok = match self.app {
            App::Any => true,
            App::Http => port != 443,
            App::Https => port != 80,
        };
        app_ok && self.proto.allows(proto) && self.ports.contains(port)
    }
}

/// What a rule lets through, protocol and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Services {
    /// The allowlist does not say (a plain list's line without a port): any protocol and port;
    /// never called broader than the catalog for its ports.
    Unspecified,
    /// These, and nothing else.
    Set(Vec<Service>),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The file it is in, as given on the command line.
    pub file: String,
    /// The rule in words of its format (`group/collection/rule`, `line 12: http_access ...`).
    pub label: String,
    pub action: Action,
    pub kind: RuleKind,
    /// What it lets through (or denies): any of these.
    pub dests: Vec<Dest>,
    /// Destinations excluded from it (squid's `!acl` of a dstdomain ACL).
    pub except: Vec<Dest>,
    pub services: Services,
    /// Set when the rule depends on something not followed (a squid ACL of a type the reader
    /// does not evaluate): such a rule is never taken to decide, and results it might change
    /// say so.
    pub uncertain: Option<String>,
}

/// Something in the file that was not followed, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct NotFollowed {
    pub file: String,
    /// Where: a rule or a line.
    #[serde(rename = "where")]
    pub at: String,
    pub what: String,
    pub why: String,
}

/// One allowlist file, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist {
    /// The file, as given on the command line.
    pub file: String,
    pub format: InputFormat,
    /// In the order the firewall tries them; what none matches is denied.
    pub rules: Vec<Rule>,
    /// Only HTTP (tcp 80) and HTTPS (tcp 443) go through it (a proxy).
    pub http_only: bool,
    pub not_followed: Vec<NotFollowed>,
    /// The file names service tags: the catalog's service-tag rules are checked.
    pub uses_tags: bool,
}

/// Why a file could not be read as an allowlist (exit 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    pub file: String,
    pub message: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            crate::text::escape_terminal(&self.file),
            crate::text::escape_terminal(&self.message)
        )
    }
}

impl std::error::Error for ReadError {}

/// Tells the format from the content: JSON (`{` or `[` first) is an Azure Firewall export; a
/// file with squid directives (`acl`, `http_access`, `http_port`, ...) at the start of a line is
/// a squid configuration; anything else is read as a list (and refused line by line if it is
/// not one).
pub fn detect(text: &str) -> InputFormat {
    let t = text.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return InputFormat::AzureFirewall;
    }
    let squid = t.lines().any(|l| {
        let first = l.split_whitespace().next().unwrap_or("");
        squid::DIRECTIVES.contains(&first)
    });
    if squid {
        InputFormat::Squid
    } else {
        InputFormat::FqdnList
    }
}

/// Reads one allowlist file's bytes: `format`, or the one [`detect`] tells. `is_tag` says
/// whether a plain list's word is a service tag (`AzureMachineLearning`, `Storage.EastUS`)
/// rather than a host name.
pub fn read(
    bytes: &[u8],
    file: &str,
    format: Option<InputFormat>,
    is_tag: &dyn Fn(&str) -> bool,
) -> Result<Allowlist, ReadError> {
    let err = |message: String| ReadError {
        file: file.to_string(),
        message,
    };
    if bytes.is_empty() {
        return Err(err("the file is empty".into()));
    }
    if bytes.contains(&0) {
        return Err(err(
            "binary data, not an allowlist (a firewall policy as JSON, a squid configuration or a list of host names)".into(),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        err(format!(
            "not UTF-8 text (invalid byte at offset {}): not an allowlist",
            e.valid_up_to()
        ))
    })?;
    if text.trim_start_matches('\u{feff}').trim().is_empty() {
        return Err(err("the file is empty (only white space)".into()));
    }
    let format = format.unwrap_or_else(|| detect(text));
    match format {
        InputFormat::AzureFirewall => azure::read(text, file),
        InputFormat::Squid => squid::read(text, file),
        InputFormat::FqdnList => list::read(text, file, is_tag),
    }
    .map_err(err)
}

/// Parses a port or a `low-high` range (`*`: every port).
pub(crate) fn port_range(s: &str) -> Option<PortRange> {
    let s = s.trim();
    if s == "*" {
        return Some(PortRange { lo: 1, hi: 65535 });
    }
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?),
        None => {
            let p = s.parse::<u16>().ok()?;
            (p, p)
        }
    };
    // Port 0 is no port a connection can use: not a rule's port either.
    (lo > 0 && lo <= hi).then_some(PortRange { lo, hi })
}

/// A host name or wildcard as an allowlist writes it, normalized to the form the catalog uses
/// (lower case, punycode, no trailing dot): `a.b`, `*.a.b`, `.a.b` (squid), `*`. `None` when it
/// is not one (characters a host name cannot have, `*` inside a name, empty labels).
pub(crate) fn name_destination(raw: &str) -> Option<Dest> {
    let raw = raw.trim();
    let (prefix, rest) = if raw == "*" {
        return Some(Dest {
            text: "*".into(),
            kind: DestKind::Name(Shape::every_name()),
            defined: None,
        });
    } else if let Some(r) = raw.strip_prefix("*.") {
        ("*.", r)
    } else if let Some(r) = raw.strip_prefix('.') {
        (".", r)
    } else {
        ("", raw)
    };
    let norm = crate::catalog::normalize(rest)?;
    if !norm
        .split('.')
        .all(crate::catalog::name::valid_literal_label)
    {
        return None;
    }
    let text = format!("{prefix}{norm}");
    let shape = Shape::of_destination(&text)?;
    Some(Dest {
        text,
        kind: DestKind::Name(shape),
        defined: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_from_the_content() {
        assert_eq!(detect("  {\"resources\": []}"), InputFormat::AzureFirewall);
        assert_eq!(detect("\u{feff}[{}]"), InputFormat::AzureFirewall);
        assert_eq!(
            detect("# squid\nacl a dstdomain .x.com\nhttp_access allow a\n"),
            InputFormat::Squid
        );
        assert_eq!(detect("login.microsoftonline.com\n"), InputFormat::FqdnList);
    }

    #[test]
    fn bad_bytes_are_refused_never_a_panic() {
        let no = |_: &str| false;
        for (bytes, want) in [
            (&b""[..], "empty"),
            (b"  \n\t", "empty"),
            (b"\x00\x01\x02", "binary"),
            (b"\xff\xfe\xfd", "not UTF-8"),
            (b"{not json", "not JSON"),
            (b"{\"a\": 1}", "no rule collection"),
            (b"hello world, this is prose", "line 1"),
        ] {
            let e = read(bytes, "f", None, &no).unwrap_err();
            assert!(e.message.contains(want), "{bytes:?}: {}", e.message);
        }
    }

    #[test]
    fn ports_and_names_parse() {
        assert_eq!(port_range("443"), Some(PortRange::one(443)));
        assert_eq!(
            port_range("8000-8999"),
            Some(PortRange { lo: 8000, hi: 8999 })
        );
        assert_eq!(port_range("*"), Some(PortRange { lo: 1, hi: 65535 }));
        assert_eq!(port_range("9-1"), None);
        assert_eq!(port_range("http"), None);
        assert_eq!(port_range("0"), None);
        assert_eq!(port_range("0-80"), None);
        assert_eq!(
            name_destination("*.AzureML.ms.").unwrap().text,
            "*.azureml.ms"
        );
        assert_eq!(name_destination(".azureml.ms").unwrap().text, ".azureml.ms");
        assert!(name_destination("a b").is_none());
        assert!(name_destination("a.*.b").is_none());
        assert!(name_destination("$(x).com").is_none());
    }
}

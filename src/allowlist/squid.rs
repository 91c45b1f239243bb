//! A squid configuration's access rules: `acl NAME TYPE VALUE...` lines (a name used on several
//! lines adds to itself) and `http_access allow|deny [!]ACL...` lines, tried top down; the
//! first whose ACLs all match decides; when none does, the answer is the opposite of the last
//! line (no line at all: deny). `dstdomain` values are host names, and a leading dot matches
//! the domain and every name under it (`.azureml.ms`: `azureml.ms` and `ws.azureml.ms`).
//!
//! A request is modelled as squid sees the two kinds of traffic a client sends through a proxy:
//! HTTPS as `CONNECT name:443`, plain HTTP as `GET http://name/` (port 80). Other protocols and
//! ports do not go through a proxy at all. ACL types followed: `dstdomain`, `port`, `method`,
//! the predefined `all`, `CONNECT`, `localhost`, `to_localhost`, `to_linklocal`, `manager`;
//! ACLs about the client (`src`, `proxy_auth`, `time`, ...) are taken to match the Azure ML
//! compute. Every other type (regular expressions, `dst` addresses, `ssl::server_name`, values
//! read from a file) is not followed: a line using one is never taken to decide, and the
//! report lists it.

use std::collections::BTreeMap;

use super::{
    name_destination, port_range, Action, Allowlist, App, Dest, DestKind, InputFormat, NotFollowed,
    Rule, RuleKind, Service, Services, Shape,
};
use crate::catalog::{PortRange, Proto};

/// Directives that say a file is a squid configuration.
pub const DIRECTIVES: &[&str] = &[
    "acl",
    "http_access",
    "http_port",
    "https_port",
    "cache_peer",
    "never_direct",
    "always_direct",
    "ssl_bump",
    "http_reply_access",
    "visible_hostname",
    "coredump_dir",
    "refresh_pattern",
    "cache_dir",
];

/// ACL types about the client, taken to match the Azure ML compute.
const CLIENT_TYPES: &[&str] = &[
    "src",
    "srcdomain",
    "srcdom_regex",
    "arp",
    "eui64",
    "proxy_auth",
    "proxy_auth_regex",
    "ident",
    "ident_regex",
    "ext_user",
    "ext_user_regex",
    "time",
    "myip",
    "myport",
    "myportname",
    "localip",
    "localport",
    "browser",
    "maxconn",
    "max_user_ip",
    "user_cert",
    "ca_cert",
];

/// One ACL, as defined (all its lines).
struct Acl {
    ty: String,
    values: Vec<String>,
    /// Values read from a file (`"path"`): not followed.
    from_file: bool,
    lines: Vec<usize>,
}

/// What an ACL reference means for the requests this reader models.
enum Meaning {
    /// Always matches (`all`, a client ACL).
    True,
    /// Never matches (`localhost`, `to_localhost`, ...).
    False,
    /// Host names.
    Domains(Vec<Dest>),
    /// Ports.
    Ports(Vec<PortRange>),
    /// Methods, upper case.
    Methods(Vec<String>),
    /// Not followed, and why.
    Unknown(String),
}

/// The line without its comment: from a `#` that starts the line or follows white space
/// (squid.conf.default writes `acl Safe_ports port 80`, tabs, `# http`).
fn strip_comment(line: &str) -> &str {
    let b = line.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if c == b'#' && (i == 0 || b[i - 1].is_ascii_whitespace()) {
            return line[..i].trim_end();
        }
    }
    line
}

/// The configuration's lines with continuations joined (`\` at the end), comments and blank
/// lines dropped: (line number of the first piece, text).
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw.trim_end_matches('\r'));
        let (cont, body) = match line.strip_suffix('\\') {
            Some(b) => (true, b),
            None => (false, line),
        };
        let entry = pending.get_or_insert_with(|| (i + 1, String::new()));
        if !entry.1.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body.trim());
        if !cont {
            if let Some((n, t)) = pending.take() {
                let t = t.trim().to_string();
                if !t.is_empty() && !t.starts_with('#') {
                    out.push((n, t));
                }
            }
        }
    }
    if let Some((n, t)) = pending {
        if !t.trim().is_empty() && !t.trim().starts_with('#') {
            out.push((n, t.trim().to_string()));
        }
    }
    out
}

struct Reader<'a> {
    file: &'a str,
    acls: BTreeMap<String, Acl>,
    notes: Vec<NotFollowed>,
    /// ACLs already noted as taken to match the client.
    noted_client: Vec<String>,
}

impl Reader<'_> {
    fn note(&mut self, at: String, what: String, why: &str) {
        self.notes.push(NotFollowed {
            file: self.file.to_string(),
            at,
            what,
            why: why.to_string(),
        });
    }

    fn acl_line(&mut self, n: usize, words: &[&str]) {
        let (Some(name), Some(ty)) = (words.get(1), words.get(2)) else {
            self.note(
                format!("line {n}"),
                words.join(" "),
                "an acl line needs a name and a type",
            );
            return;
        };
        let mut from_file = false;
        let mut values = Vec::new();
        for v in words.iter().skip(3) {
            if v.starts_with('-') && values.is_empty() {
                continue; // -i, -n, --: options before the values
            }
            if v.starts_with('"') {
                from_file = true;
                continue;
            }
            values.push(v.to_string());
        }
        let acl = self.acls.entry(name.to_string()).or_insert_with(|| Acl {
            ty: ty.to_string(),
            values: Vec::new(),
            from_file: false,
            lines: Vec::new(),
        });
        if !acl.ty.eq_ignore_ascii_case(ty) {
            let first = acl.lines.first().copied().unwrap_or(n);
            self.note(
                format!("line {n}"),
                format!("acl {name} {ty}"),
                &format!("redefines the type of the ACL of line {first}: squid refuses this; the line is skipped"),
            );
            return;
        }
        acl.values.extend(values);
        acl.from_file |= from_file;
        acl.lines.push(n);
    }

    fn meaning(&mut self, name: &str) -> Meaning {
        let Some(acl) = self.acls.get(name) else {
            return match name {
                "all" => Meaning::True,
                "CONNECT" => Meaning::Methods(vec!["CONNECT".into()]),
                "localhost" | "to_localhost" | "to_linklocal" | "manager" => Meaning::False,
                _ => Meaning::Unknown(format!("ACL `{name}` is not defined")),
            };
        };
        let lines = acl
            .lines
            .iter()
            .map(|l| l.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let ty = acl.ty.to_ascii_lowercase();
        if acl.from_file {
            return Meaning::Unknown(format!(
                "ACL `{name}` (line {lines}) reads its values from a file"
            ));
        }
        match ty.as_str() {
            "dstdomain" => {
                let mut dests = Vec::new();
                let mut bad = Vec::new();
                for v in &acl.values {
                    match name_destination(v) {
                        Some(mut d) if d.text != "*" => {
                            d.defined = Some(format!("acl {name}, line {lines}"));
                            dests.push(d);
                        }
                        _ => bad.push(v.clone()),
                    }
                }
                for v in bad {
                    self.note(
                        format!("line {lines}"),
                        format!("acl {name} dstdomain {v}"),
                        "not a host name (an address is not checked against names)",
                    );
                }
                Meaning::Domains(dests)
            }
            "port" => {
                let mut ranges = Vec::new();
                let mut bad = Vec::new();
                for v in &acl.values {
                    match port_range(v) {
                        Some(r) if v != "*" => ranges.push(r),
                        _ => bad.push(v.clone()),
                    }
                }
                if !bad.is_empty() {
                    return Meaning::Unknown(format!(
                        "ACL `{name}` (line {lines}): `{}` is not a port",
                        bad.join(" ")
                    ));
                }
                Meaning::Ports(ranges)
            }
            "method" => {
                Meaning::Methods(acl.values.iter().map(|m| m.to_ascii_uppercase()).collect())
            }
            "dst"
                if !acl.values.is_empty()
                    && acl
                        .values
                        .iter()
                        .all(|v| matches!(v.as_str(), "all" | "0.0.0.0/0" | "::/0" | "0/0")) =>
            {
                Meaning::True
            }
            t if CLIENT_TYPES.contains(&t) => {
                if !self.noted_client.iter().any(|n| n == name) {
                    self.noted_client.push(name.to_string());
                    self.note(
                        format!("line {lines}"),
                        format!("acl {name} {t}"),
                        "about the client: taken to match the Azure ML compute",
                    );
                }
                Meaning::True
            }
            t => Meaning::Unknown(format!("ACL `{name}` (line {lines}) is of type {t}")),
        }
    }

    fn access_line(&mut self, n: usize, text: &str, words: &[&str]) -> Option<Rule> {
        let action = match words.get(1).map(|w| w.to_ascii_lowercase()) {
            Some(a) if a == "allow" => Action::Allow,
            Some(a) if a == "deny" => Action::Deny,
            _ => {
                self.note(
                    format!("line {n}"),
                    text.to_string(),
                    "neither allow nor deny: skipped",
                );
                return None;
            }
        };
        let mut domains: Vec<Vec<Dest>> = Vec::new();
        let mut except = Vec::new();
        let mut uncertain: Vec<String> = Vec::new();
        // The two requests modelled: CONNECT name:443 and GET http://name/ (port 80).
        let mut connect_ok = true;
        let mut get_ok = true;
        for w in words.iter().skip(2) {
            let (neg, name) = match w.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, *w),
            };
            match self.meaning(name) {
                Meaning::True => {
                    if neg {
                        return None;
                    }
                }
                Meaning::False => {
                    if !neg {
                        return None;
                    }
                }
                Meaning::Domains(d) => {
                    if neg {
                        except.extend(d);
                    } else {
                        domains.push(d);
                    }
                }
                Meaning::Ports(r) => {
                    let has = |p: u16| r.iter().any(|x| x.contains(p));
                    connect_ok &= has(443) != neg;
                    get_ok &= has(80) != neg;
                }
                Meaning::Methods(m) => {
                    let has = |x: &str| m.iter().any(|y| y == x);
                    connect_ok &= has("CONNECT") != neg;
                    get_ok &= has("GET") != neg;
                }
                Meaning::Unknown(why) => uncertain.push(why),
            }
        }
        if domains.len() > 1 {
            uncertain.push(
                "more than one dstdomain ACL on the line (a name must be in all of them)".into(),
            );
        }
        let dests = domains.into_iter().next().unwrap_or_else(|| {
            vec![Dest {
                text: "*".into(),
                kind: DestKind::Name(Shape::every_name()),
                defined: Some("no dstdomain ACL on the line: every destination".into()),
            }]
        });
        let mut services = Vec::new();
        if get_ok {
            services.push(Service {
                proto: Proto::Tcp,
                ports: PortRange::one(80),
                app: App::Http,
            });
        }
        if connect_ok {
            services.push(Service {
                proto: Proto::Tcp,
                ports: PortRange::one(443),
                app: App::Https,
            });
        }
        if services.is_empty() {
            return None;
        }
        let uncertain = (!uncertain.is_empty()).then(|| uncertain.join("; "));
        if let Some(why) = &uncertain {
            self.note(
                format!("line {n}"),
                text.to_string(),
                &format!("not followed: {why}; the line is never taken to decide"),
            );
        }
        Some(Rule {
            file: self.file.to_string(),
            label: format!("line {n}: {text}"),
            action,
            kind: RuleKind::Proxy,
            dests,
            except,
            services: Services::Set(services),
            uncertain,
        })
    }
}

/// Reads a squid configuration (see the module documentation).
pub fn read(text: &str, file: &str) -> Result<Allowlist, String> {
    let lines = logical_lines(text);
    let mut r = Reader {
        file,
        acls: BTreeMap::new(),
        notes: Vec::new(),
        noted_client: Vec::new(),
    };
    // ACLs first: squid needs them defined before use, but a missing one is reported the same.
    let mut access: Vec<(usize, &str, Vec<&str>)> = Vec::new();
    let mut seen_directive = false;
    for (n, t) in &lines {
        let words: Vec<&str> = t.split_whitespace().collect();
        let first = words.first().copied().unwrap_or("");
        seen_directive |= DIRECTIVES.contains(&first);
        match first {
            "acl" => r.acl_line(*n, &words),
            "http_access" => access.push((*n, t.as_str(), words)),
            "include" => r.note(
                format!("line {n}"),
                t.clone(),
                "included files are not read",
            ),
            _ => {}
        }
    }
    if !seen_directive {
        return Err(
            "no squid directive (acl, http_access, http_port, ...): not a squid configuration"
                .into(),
        );
    }
    let mut rules = Vec::new();
    let mut last: Option<(usize, Action)> = None;
    for (n, t, words) in &access {
        let action = if words
            .get(1)
            .is_some_and(|w| w.eq_ignore_ascii_case("allow"))
        {
            Action::Allow
        } else {
            Action::Deny
        };
        last = Some((*n, action));
        if let Some(rule) = r.access_line(*n, t, words) {
            rules.push(rule);
        }
    }
    // The shapes (HTTP, HTTPS) some certain line already decides for every destination never
    // reach the default.
    let caught = |app: App| {
        rules.iter().any(|r: &Rule| {
            r.uncertain.is_none()
                && r.except.is_empty()
                && r.dests.iter().any(|d| d.text == "*")
                && matches!(&r.services, Services::Set(s) if s.iter().any(|x| x.app == app))
        })
    };
    let open: Vec<Service> = [(80, App::Http), (443, App::Https)]
        .into_iter()
        .filter(|(_, app)| !caught(*app))
        .map(|(port, app)| Service {
            proto: Proto::Tcp,
            ports: PortRange::one(port),
            app,
        })
        .collect();
    match last {
        Some((n, Action::Deny)) if !open.is_empty() => rules.push(Rule {
            file: file.to_string(),
            label: format!(
                "no http_access line matches: squid does the opposite of the last one (line {n}, a deny)"
            ),
            action: Action::Allow,
            kind: RuleKind::Proxy,
            dests: vec![Dest {
                text: "*".into(),
                kind: DestKind::Name(Shape::every_name()),
                defined: Some("squid's default".into()),
            }],
            except: Vec::new(),
            services: Services::Set(open),
            uncertain: None,
        }),
        Some(_) => {}
        None => r.note(
            "the configuration".into(),
            "no http_access line".into(),
            "squid denies every request",
        ),
    }
    Ok(Allowlist {
        file: file.to_string(),
        format: InputFormat::Squid,
        rules,
        http_only: true,
        not_followed: r.notes,
        uses_tags: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_join_and_comments_go() {
        let l = logical_lines(
            "# c\nacl a dstdomain \\\n  .x.com \\\n  y.com\n\n  # d\nhttp_access allow a\n",
        );
        assert_eq!(
            l,
            [
                (2, "acl a dstdomain .x.com y.com".to_string()),
                (7, "http_access allow a".to_string())
            ]
        );
    }

    #[test]
    fn comments_end_lines() {
        assert_eq!(
            strip_comment("acl Safe_ports port 80\t\t# http"),
            "acl Safe_ports port 80"
        );
        assert_eq!(strip_comment("acl r url_regex a#b"), "acl r url_regex a#b");
        assert_eq!(strip_comment("# all"), "");
    }

    #[test]
    fn access_lines_become_rules_with_their_ports() {
        let conf = "acl SSL_ports port 443\nacl Safe_ports port 80 443\nacl ml dstdomain .azureml.ms\n\
                    acl localnet src 10.0.0.0/8\nacl re dstdom_regex x\n\
                    http_access deny !Safe_ports\nhttp_access deny CONNECT !SSL_ports\n\
                    http_access allow localnet CONNECT ml\nhttp_access allow re\nhttp_access allow localhost\n\
                    http_access deny all\n";
        let a = read(conf, "s.conf").unwrap();
        let labels: Vec<&str> = a.rules.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "line 8: http_access allow localnet CONNECT ml",
                "line 9: http_access allow re",
                "line 11: http_access deny all",
            ]
        );
        assert_eq!(
            a.rules[0].services,
            Services::Set(vec![Service {
                proto: Proto::Tcp,
                ports: PortRange::one(443),
                app: App::Https
            }])
        );
        assert!(a.rules[1].uncertain.is_some());
        assert!(a.http_only);
    }

    #[test]
    fn the_default_is_the_opposite_of_the_last_line() {
        let a = read("acl x dstdomain .x.com\nhttp_access deny x\n", "s").unwrap();
        assert_eq!(a.rules.len(), 2);
        assert_eq!(a.rules[1].action, Action::Allow);
        let a = read("http_port 3128\n", "s").unwrap();
        assert!(a.rules.is_empty());
        assert_eq!(a.not_followed[0].what, "no http_access line");
    }

    #[test]
    fn odd_lines_never_panic() {
        for conf in [
            "acl\nhttp_access\n",
            "acl a\nhttp_access maybe a\n",
            "acl a dstdomain\nhttp_access allow a\n",
            "acl a port x-y\nhttp_access allow a\n",
            "acl a dstdomain \"/etc/x\"\nhttp_access allow a\n",
            "acl a dstdomain 10.0.0.1 *\nacl a port 1\nhttp_access allow !a\n",
            "http_access allow \\",
        ] {
            let _ = read(conf, "s");
        }
        assert!(read("cache_mem 1 MB\n", "s").is_err());
    }
}

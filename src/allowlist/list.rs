//! A plain list of destinations, one per line, for any firewall or proxy that takes one:
//!
//! ```text
//! # comment (a `#` starts one anywhere on a line)
//! login.microsoftonline.com          any protocol, any port (the list does not say)
//! *.azureml.ms:443                   TCP 443; a leading `*.` is one or more labels, not the name
//! .blob.core.windows.net             a leading `.` is the name and every name under it
//! eastus.tundra.azureml.ms udp/5831  protocol and port, as `allowscope audit --rules fqdn-list`
//! https://mcr.microsoft.com/         a URL: its host, on the scheme's port
//! AzureMachineLearning tcp/443       a service tag the catalog knows
//! ```
//!
//! Addresses (`10.0.0.0/8`) are noted, not checked. A line that is none of these is an error
//! (the file is probably not a list), with its number.

use super::{
    name_destination, port_range, Action, Allowlist, App, Dest, DestKind, InputFormat, NotFollowed,
    Rule, RuleKind, Service, Services,
};
use crate::catalog::Proto;

/// `tcp/443`, `udp/5831`, `any/443`, `tcp/8704-8710`, or a bare port (TCP, as `host:port`
/// means everywhere else).
fn service(s: &str) -> Option<Service> {
    let (proto, ports) = match s.split_once('/') {
        Some((p, ports)) => {
            let proto = match p.to_ascii_lowercase().as_str() {
                "tcp" => Proto::Tcp,
                "udp" => Proto::Udp,
                "any" => Proto::Any,
                _ => return None,
            };
            (proto, ports)
        }
        None => (Proto::Tcp, s),
    };
    if ports.trim() == "*" {
        return None;
    }
    Some(Service {
        proto,
        ports: port_range(ports)?,
        app: App::Any,
    })
}

/// An address, a CIDR block, `[v6]` or `[v6]:port`.
fn address(s: &str) -> bool {
    let host = s
        .strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .unwrap_or(s);
    let host = host.split('/').next().unwrap_or(host);
    host.parse::<std::net::IpAddr>().is_ok()
        || s.rsplit_once(':')
            .is_some_and(|(h, _)| h.parse::<std::net::Ipv4Addr>().is_ok())
}

/// Reads a list (see the module documentation). `is_tag` tells a service tag from a name.
pub fn read(text: &str, file: &str, is_tag: &dyn Fn(&str) -> bool) -> Result<Allowlist, String> {
    let mut rules = Vec::new();
    let mut notes = Vec::new();
    let mut uses_tags = false;
    for (i, raw) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let n = i + 1;
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let bad = |why: &str| {
            Err(format!(
                "line {n}: `{line}`: {why} (a list has one host name, wildcard, URL or service tag per line, optionally with :PORT or PROTO/PORT)"
            ))
        };
        if words.len() > 2 {
            return bad("more than a destination and a port");
        }
        let mut target = words[0];
        let mut svc: Option<Service> = None;
        // A URL: its host, on the scheme's port unless one is written.
        for (scheme, port) in [("https://", 443u16), ("http://", 80)] {
            if let Some(rest) = target.strip_prefix(scheme) {
                let host = rest.split('/').next().unwrap_or("");
                target = host;
                svc = Some(Service {
                    proto: Proto::Tcp,
                    ports: crate::catalog::PortRange::one(port),
                    app: App::Any,
                });
            }
        }
        if address(target) {
            notes.push(NotFollowed {
                file: file.to_string(),
                at: format!("line {n}"),
                what: line.to_string(),
                why: "addresses are not checked against the catalog's names (they change)".into(),
            });
            continue;
        }
        if let Some((host, port)) = target.rsplit_once(':') {
            match service(port) {
                Some(mut s) => {
                    if let Some(scheme) = svc {
                        s.proto = scheme.proto;
                    }
                    svc = Some(s);
                    target = host;
                }
                None => return bad("the part after `:` is not a port"),
            }
        }
        if let Some(w) = words.get(1) {
            if svc.is_some() {
                return bad("a port is given twice");
            }
            match service(w) {
                Some(s) => svc = Some(s),
                None => return bad("the second word is not PROTO/PORT (tcp/443) or a port"),
            }
        }
        let dest = if is_tag(target) {
            uses_tags = true;
            Dest {
                text: target.to_string(),
                kind: DestKind::Tag(target.to_string()),
                defined: None,
            }
        } else {
            match name_destination(target) {
                Some(d) => d,
                None => return bad("not a host name, wildcard, URL, address or service tag"),
            }
        };
        rules.push(Rule {
            file: file.to_string(),
            label: format!("line {n}: {line}"),
            action: Action::Allow,
            kind: RuleKind::List,
            dests: vec![dest],
            except: Vec::new(),
            services: match svc {
                Some(s) => Services::Set(vec![s]),
                None => Services::Unspecified,
            },
            uncertain: None,
        });
    }
    if rules.is_empty() && notes.is_empty() {
        return Err("no destination in the file (only comments)".into());
    }
    Ok(Allowlist {
        file: file.to_string(),
        format: InputFormat::FqdnList,
        rules,
        http_only: false,
        not_followed: notes,
        uses_tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::PortRange;

    fn tag(s: &str) -> bool {
        s.split('.').next() == Some("AzureMachineLearning")
    }

    #[test]
    fn every_line_form() {
        let a = read(
            "# c\nlogin.microsoftonline.com\n*.AzureML.ms:443 # api\n.blob.core.windows.net\n\
             eastus.tundra.azureml.ms udp/5831\nhttps://mcr.microsoft.com/v2/\nAzureMachineLearning tcp/443\n\
             10.0.0.0/8\nx.example:8704-8710\n",
            "l.txt",
            &tag,
        )
        .unwrap();
        let got: Vec<(String, Services)> = a
            .rules
            .iter()
            .map(|r| (r.dests[0].text.clone(), r.services.clone()))
            .collect();
        let s = |proto, lo, hi| {
            Services::Set(vec![Service {
                proto,
                ports: PortRange { lo, hi },
                app: App::Any,
            }])
        };
        assert_eq!(
            got,
            [
                (
                    "login.microsoftonline.com".to_string(),
                    Services::Unspecified
                ),
                ("*.azureml.ms".to_string(), s(Proto::Tcp, 443, 443)),
                (".blob.core.windows.net".to_string(), Services::Unspecified),
                (
                    "eastus.tundra.azureml.ms".to_string(),
                    s(Proto::Udp, 5831, 5831)
                ),
                ("mcr.microsoft.com".to_string(), s(Proto::Tcp, 443, 443)),
                ("AzureMachineLearning".to_string(), s(Proto::Tcp, 443, 443)),
                ("x.example".to_string(), s(Proto::Tcp, 8704, 8710)),
            ]
        );
        assert!(a.uses_tags);
        assert_eq!(a.not_followed.len(), 1);
        assert_eq!(a.rules[1].label, "line 3: *.AzureML.ms:443");
    }

    #[test]
    fn what_is_not_a_list_is_an_error_with_its_line() {
        for (text, line) in [
            ("a.com\nthe quick brown fox\n", "line 2"),
            ("a.com tcp/x\n", "line 1"),
            ("a.com:443 tcp/443\n", "line 1"),
            ("a.com:http\n", "line 1"),
            ("<html>\n", "line 1"),
            ("a.*.com\n", "line 1"),
            ("# only\n# comments\n", "no destination"),
        ] {
            let e = read(text, "l", &tag).unwrap_err();
            assert!(e.contains(line), "{text:?}: {e}");
        }
    }
}

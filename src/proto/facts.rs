//! Joins the extractors to flows: what each finished flow says about where it was going and
//! how far it got, and the one name attributed to it ([`Facts`], which the flow keeps: a
//! [`Described`] flow).

use serde::Serialize;

use super::http::{self, Head, Request, Response};
use super::quic::{self, QuicFacts};
use super::tls;
use super::{Alert, HelloStatus, ServerFacts};
use crate::flow::{AppFacts, Dir, Flow, Outcome, Proto};

/// Where a flow's name came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NameSource {
    Sni,
    Connect,
    HttpHost,
    Quic,
    /// The answer this client (or another address of the same host) received.
    Dns,
    /// The answer another client received for the server's address: the client's own lookup
    /// is not in the capture and its addresses could not be tied to one that asked (see
    /// `crate::names`). A weaker name: verdicts on it carry a lower confidence.
    DnsAnyClient,
    /// No name at all: the flow went to an IP literal (or its lookup is not in the capture),
    /// and is known by the server's address.
    Address,
    /// Known by the server's address, which a range of an Azure service tag holds
    /// (`--service-tags FILE`): the name is the tag. Weaker than a host name: the range may
    /// serve many hosts.
    IpTag,
}

/// TLS seen on a flow (directly, or inside a CONNECT tunnel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct TlsFacts {
    pub client_hello: HelloStatus,
    pub server: ServerFacts,
    pub client_alerts: Vec<Alert>,
    /// The handshake got as far as the client's first encrypted/CCS records after a ServerHello.
    pub handshake_complete: bool,
    /// This TLS ran inside an HTTP CONNECT tunnel.
    pub in_tunnel: bool,
    /// This TLS started after a plaintext exchange on the same connection (STARTTLS in SMTP,
    /// IMAP, POP3, FTP, ...).
    pub after_plaintext: bool,
}

impl TlsFacts {
    /// The first alert sent before the handshake completed, with the side that sent it.
    pub fn early_alert(&self) -> Option<(&'static str, Alert)> {
        let server = self.server.alerts.iter().find(|a| a.before_handshake);
        let client = self.client_alerts.iter().find(|a| a.before_handshake);
        server
            .map(|a| ("server", *a))
            .or_else(|| client.map(|a| ("client", *a)))
    }
}

/// An HTTP CONNECT through an explicit proxy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ConnectFacts {
    pub host: String,
    pub port: u16,
    /// The proxy's answers in order (407 then 200 when it asked for credentials).
    pub statuses: Vec<u16>,
    pub x_squid_error: Option<String>,
    /// The last answer was 2xx: a tunnel opened.
    pub tunnel: bool,
}

/// Plain HTTP/1.x on a flow (not the CONNECT exchange).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct HttpFacts {
    pub method: String,
    pub target: String,
    pub host: Option<String>,
    /// The request's HTTP version (`HTTP/1.1`, ...).
    pub version: String,
    pub upgrade: Option<String>,
    pub connection: Option<String>,
    /// Sec-WebSocket-Key of a websocket handshake.
    pub ws_key: Option<String>,
    pub status: Option<u16>,
    pub reason: Option<String>,
    pub server: Option<String>,
    /// Via header(s) of the response: a proxy on the way says so there.
    pub via: Option<String>,
    pub x_squid_error: Option<String>,
    pub azure_firewall_deny: bool,
    /// The request head was cut by the capture.
    pub truncated: bool,
}

impl HttpFacts {
    /// A CONNECT whose target was not `host:port` (or the capture cut it): a parsed one is
    /// [`ConnectFacts`] instead.
    pub fn is_connect(&self) -> bool {
        self.method.eq_ignore_ascii_case("CONNECT")
    }
}

/// Everything the extractors found on one flow, behind one box that exists once something was
/// found or named: a live flow's facts are empty until it finishes, and a table holds many
/// live flows (8 bytes each instead of 88). Reads see empty facts through [`Deref`] while
/// there is no box; a write through [`DerefMut`] makes it.
///
/// [`Deref`]: std::ops::Deref
/// [`DerefMut`]: std::ops::DerefMut
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts(Option<Box<FactsData>>);

/// The facts themselves (see [`Facts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FactsData {
    // Boxed: most flows have one of these or none, and a Flow stays small to move.
    pub tls: Option<Box<TlsFacts>>,
    pub http: Option<Box<HttpFacts>>,
    pub connect: Option<Box<ConnectFacts>>,
    pub quic: Option<Box<QuicFacts>>,
    /// DNS messages carried by this TCP flow (DNS over TCP).
    pub dns_over_tcp: u32,
    pub name: Option<String>,
    pub name_source: Option<NameSource>,
    /// For names from DNS: the chain from the name asked to the one that carried the address.
    pub dns_chain: Vec<String>,
    /// A name the flow carried (SNI, CONNECT target, Host, QUIC SNI) was no host name (over
    /// 253 octets, an empty label, a label over 63): not taken, and counted in the input's
    /// summary.
    pub name_not_taken: bool,
}

/// What [`Facts`] reads as while it holds nothing.
static NO_FACTS: FactsData = FactsData {
    tls: None,
    http: None,
    connect: None,
    quic: None,
    dns_over_tcp: 0,
    name: None,
    name_source: None,
    dns_chain: Vec::new(),
    name_not_taken: false,
};

impl std::ops::Deref for Facts {
    type Target = FactsData;

    #[inline]
    fn deref(&self) -> &FactsData {
        self.0.as_deref().unwrap_or(&NO_FACTS)
    }
}

impl std::ops::DerefMut for Facts {
    #[inline]
    fn deref_mut(&mut self) -> &mut FactsData {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<FactsData> for Facts {
    fn from(d: FactsData) -> Facts {
        Facts(Some(Box::new(d)))
    }
}

/// A flow with the facts the extractors read in it: what the table's flows carry in the
/// pipeline, and what every later stage reads.
pub type Described = Flow<Facts>;

impl AppFacts for Facts {
    /// A proxy's refusal, Azure Firewall's 470, a TLS alert before the handshake finished, and
    /// for a CONNECT tunnel, how far the tunnelled TLS got.
    fn app_outcome(&self, server: &Dir) -> Outcome {
        if let Some(c) = &self.connect {
            if !c.tunnel && !c.statuses.is_empty() {
                return Outcome::ProxyDenied;
            }
        }
        // A CONNECT whose target is not `host:port` (or that the capture cut), answered with a
        // refusal: the proxy's answer decides, whatever the target was. Not a 407 to a cut
        // request: a client that has credentials asks again on the same connection, and the
        // capture cut what followed.
        if self.http.as_ref().is_some_and(|h| {
            h.is_connect()
                && h.status
                    .is_some_and(|s| !((200..300).contains(&s) || h.truncated && s == 407))
        }) {
            return Outcome::ProxyDenied;
        }
        if self
            .http
            .as_ref()
            .is_some_and(|h| h.azure_firewall_deny || h.status == Some(470))
        {
            return Outcome::HttpDenied;
        }
        if let Some(t) = &self.tls {
            if t.early_alert().is_some() {
                return Outcome::TlsAlert;
            }
            if t.in_tunnel && !t.server.server_hello {
                // The proxy said 200 but the far end never answered the tunnelled hello.
                return if server.rst_ns.is_some() || server.fin_ns.is_some() {
                    Outcome::ResetAfterHello
                } else {
                    Outcome::RequestUnanswered
                };
            }
        }
        Outcome::Established
    }
}

/// A ClientHello longer than the bytes the flow table keeps of a first flight
/// (`--reassembly-cap`): read up to `have` of the `need` bytes it needs, when the cap and not
/// the capture (a hole) or the table-wide budget (which the input's summary reports on its
/// own) cut it. Its SNI (and what follows it) may be missing: raise the cap.
pub fn hello_over_cap(flow: &Described) -> Option<(usize, usize)> {
    let c = &flow.dirs[0].stream;
    let by_cap = c.capped() && !c.budget_refused() && !c.has_hole();
    match flow.facts.tls.as_deref()?.client_hello {
        HelloStatus::Truncated { have, need, .. } if by_cap => Some((have, need)),
        _ => None,
    }
}

/// Fills `flow.facts` from its first flights and datagrams, and names the flow from them (SNI,
/// CONNECT, Host, QUIC). Names from DNS come later, from the whole input: `crate::names`.
pub fn extract(flow: &mut Described) {
    let mut facts = Facts::default();
    match flow.proto {
        Proto::Tcp => tcp_facts(flow, &mut facts),
        Proto::Udp if !flow.datagrams().is_empty() => {
            facts.quic = quic::flow_facts(
                flow.datagrams().iter().map(Vec::as_slice),
                flow.server_datagrams().iter().map(Vec::as_slice),
            )
            .map(|mut q| {
                let n = &mut q.packets.short_header;
                *n = n.saturating_add(flow.short_headers);
                Box::new(q)
            });
        }
        _ => {}
    }
    name(&mut facts);
    flow.facts = facts;
}

fn tcp_facts(flow: &Described, facts: &mut Facts) {
    let c = &flow.dirs[0].stream;
    let s = &flow.dirs[1].stream;
    let (cb, sb) = (c.bytes(), s.bytes());
    if cb.is_empty() {
        return;
    }
    // DNS over TCP to port 53.
    if flow.server.port == 53 {
        let msgs = super::dns::parse_tcp_stream(cb, c.has_hole());
        facts.dns_over_tcp = msgs.messages.len() as u32;
    }
    let hello = tls::client_hello(cb, c.has_hole());
    if hello != HelloStatus::NotTls {
        facts.tls = Some(Box::new(tls_facts(hello, cb, sb, s.has_hole(), false)));
        return;
    }
    let reqs = http::requests(cb, c.has_hole());
    let resps = http::responses(sb, s.has_hole());
    if let Some(first) = reqs.first() {
        if first.method.eq_ignore_ascii_case("CONNECT") {
            if let Some((host, port)) = http::connect_target(&first.target) {
                let statuses: Vec<u16> = resps.iter().map(|r| r.status).collect();
                let tunnel = statuses.last().is_some_and(|s| (200..300).contains(s));
                facts.connect = Some(Box::new(ConnectFacts {
                    host,
                    port,
                    statuses,
                    x_squid_error: resps.iter().find_map(|r| r.x_squid_error.clone()),
                    tunnel,
                }));
                if tunnel {
                    if let Some((co, so)) = http::tunnel_offsets(cb, sb) {
                        let (ic, is) = (cb.get(co..).unwrap_or(&[]), sb.get(so..).unwrap_or(&[]));
                        let hello = tls::client_hello(ic, c.has_hole());
                        if hello != HelloStatus::NotTls {
                            facts.tls =
                                Some(Box::new(tls_facts(hello, ic, is, s.has_hole(), true)));
                        }
                    }
                }
                return;
            }
        }
        // A CONNECT whose target is not `host:port` is judged by the proxy's last answer on
        // the connection, as a parsed one is (`ConnectFacts::tunnel`): a 407 the client
        // answered with credentials and a 200 is a tunnel, not a refusal.
        let answer = if first.method.eq_ignore_ascii_case("CONNECT") {
            resps.last()
        } else {
            resps.first()
        };
        facts.http = Some(Box::new(http_facts(first, answer)));
    } else if let Some((co, so)) = starttls_offsets(cb, sb) {
        let (ic, is) = (&cb[co..], &sb[so..]);
        let hello = tls::client_hello(ic, c.has_hole());
        if hello != HelloStatus::NotTls {
            let mut t = tls_facts(hello, ic, is, s.has_hole(), false);
            t.after_plaintext = true;
            facts.tls = Some(Box::new(t));
        }
    } else if let Head::Truncated = http::parse_request(cb, c.has_hole()) {
        // The request was cut (snap length): its method and the answer's status line may
        // still be there, and tell a proxy's refusal or Azure Firewall's 470 apart from a
        // reached server.
        facts.http = Some(Box::new(HttpFacts {
            method: http::method_of_cut(cb).unwrap_or_default().to_string(),
            // As much of the target as the capture kept (a proxy's absolute form shows in
            // its first bytes).
            target: http::method_of_cut(cb)
                .and_then(|m| cb.get(m.len() + 1..))
                .map(|t| {
                    let end = t
                        .iter()
                        .position(|&b| b == b' ' || b == b'\r' || b == b'\n')
                        .unwrap_or(t.len());
                    String::from_utf8_lossy(&t[..end]).into_owned()
                })
                .unwrap_or_default(),
            host: None,
            version: String::new(),
            upgrade: None,
            connection: None,
            ws_key: None,
            status: resps
                .first()
                .map(|r| r.status)
                .or_else(|| http::status_of_cut(sb)),
            reason: None,
            server: None,
            via: None,
            x_squid_error: None,
            azure_firewall_deny: false,
            truncated: true,
        }));
    }
}

fn tls_facts(
    hello: HelloStatus,
    client: &[u8],
    server: &[u8],
    server_hole: bool,
    in_tunnel: bool,
) -> TlsFacts {
    TlsFacts {
        client_hello: hello,
        server: tls::server_flight(server, server_hole),
        client_alerts: tls::client_alerts(client),
        handshake_complete: tls::looks_complete(client, server),
        in_tunnel,
        after_plaintext: false,
    }
}

/// Where TLS starts after a plaintext exchange (STARTTLS): in each direction, the first TLS
/// handshake record header (16 03 0x) at the start of a line, after at least one line.
fn starttls_offsets(client: &[u8], server: &[u8]) -> Option<(usize, usize)> {
    fn find(b: &[u8]) -> Option<usize> {
        (1..b.len().saturating_sub(2))
            .find(|&i| b[i - 1] == b'\n' && b[i] == 0x16 && b[i + 1] == 0x03 && b[i + 2] <= 4)
    }
    // The plaintext before must look like text lines (commands and replies), not binary.
    let c = find(client)?;
    let printable = |b: &[u8]| {
        b.iter()
            .all(|&x| x == b'\r' || x == b'\n' || x == b'\t' || (0x20..0x7f).contains(&x))
    };
    if !printable(&client[..c]) {
        return None;
    }
    let s = find(server)
        .filter(|&s| printable(&server[..s]))
        .unwrap_or(server.len());
    Some((c, s))
}

fn http_facts(req: &Request, resp: Option<&Response>) -> HttpFacts {
    HttpFacts {
        method: req.method.clone(),
        target: req.target.clone(),
        host: req.host.clone(),
        version: req.version.clone(),
        upgrade: req.upgrade.clone(),
        connection: req.connection.clone(),
        ws_key: req.ws_key.clone(),
        status: resp.map(|r| r.status),
        reason: resp.map(|r| r.reason.clone()),
        server: resp.and_then(|r| r.server.clone()),
        via: resp.and_then(|r| r.via.clone()),
        x_squid_error: resp.and_then(|r| r.x_squid_error.clone()),
        azure_firewall_deny: resp.is_some_and(|r| r.azure_firewall_deny),
        truncated: false,
    }
}

/// Strips a `:port` suffix from a Host header value (IPv6 literals keep their brackets off).
fn host_only(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

/// Whether `n` (its trailing dot removed) can be a host name: 1 to 253 octets, no empty label
/// and none over 63 octets (RFC 1035 section 2.3.4; RFC 1123 allows digits first). What else
/// it holds is the wire's, escaped wherever it is written.
pub fn is_host_name(n: &str) -> bool {
    let n = n.strip_suffix('.').unwrap_or(n);
    (1..=253).contains(&n.len()) && n.split('.').all(|l| (1..=63).contains(&l.len()))
}

fn name(facts: &mut Facts) {
    let sni = || {
        facts
            .tls
            .as_ref()
            .and_then(|t| t.client_hello.hello()?.sni.clone())
            .map(|n| (n, NameSource::Sni))
    };
    let connect = || {
        facts
            .connect
            .as_ref()
            .map(|c| (c.host.clone(), NameSource::Connect))
    };
    let host = || {
        // A CONNECT names its target in the request line (a target that is not host:port names
        // nothing: its Host header repeats it), so only another request's Host is a name.
        let http = facts.http.as_ref().filter(|h| !h.is_connect())?;
        // A Host that is an IP literal says the client used no name: the flow is known by
        // that address (and no DNS answer may name it).
        let h = host_only(http.host.as_deref()?);
        match h.parse::<std::net::IpAddr>() {
            Ok(ip) => Some((crate::text::ip_text(ip), NameSource::Address)),
            Err(_) => Some((h.to_string(), NameSource::HttpHost)),
        }
    };
    let quic = || {
        facts
            .quic
            .as_ref()?
            .sni
            .clone()
            .map(|n| (n, NameSource::Quic))
    };
    // The first that is a host name, in this order; one that is not is passed over.
    let mut not_taken = false;
    let mut pick = None;
    for candidate in [sni(), connect(), host(), quic()].into_iter().flatten() {
        if is_host_name(&candidate.0) {
            pick = Some(candidate);
            break;
        }
        not_taken = true;
    }
    facts.name_not_taken = not_taken;
    if let Some((n, src)) = pick {
        facts.name = Some(n.trim_end_matches('.').to_ascii_lowercase());
        facts.name_source = Some(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_name_has_at_most_253_octets_and_no_empty_label() {
        assert!(is_host_name("ml.azure.com"));
        assert!(is_host_name("ml.azure.com."));
        assert!(is_host_name("10.0.0.1") && is_host_name("fd00::1"));
        assert!(is_host_name(&format!("{}.example", "a".repeat(63))));
        assert!(!is_host_name(&format!("{}.example", "a".repeat(64))));
        let long = vec!["abcdefghi"; 26].join("."); // 259 octets
        assert!(!is_host_name(&long));
        assert!(is_host_name(&long[..253]));
        for bad in [
            "",
            ".",
            "a..b",
            ".a.b",
            "a.b..",
            "x".repeat(65_000).as_str(),
        ] {
            assert!(!is_host_name(bad), "{bad:.20}");
        }
        // An over-long Host is passed over for the next name the flow carries.
        let mut f: Facts = FactsData {
            http: Some(Box::new(HttpFacts {
                host: Some(format!("{}:443", "x".repeat(300))),
                ..Default::default()
            })),
            quic: Some(Box::new(QuicFacts {
                sni: Some("OK.example.".into()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into();
        name(&mut f);
        assert_eq!(f.name.as_deref(), Some("ok.example"));
        assert!(f.name_not_taken);
        let mut g: Facts = FactsData {
            quic: Some(Box::new(QuicFacts {
                sni: Some("a..b".into()),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into();
        name(&mut g);
        assert_eq!((g.name.clone(), g.name_not_taken), (None, true));
        // A CONNECT's Host repeats its target: when the target is no host:port, neither names
        // the flow; another request's Host does.
        for (method, named) in [("CONNECT", None), ("GET", Some("ml.azure.com"))] {
            let mut h: Facts = FactsData {
                http: Some(Box::new(HttpFacts {
                    method: method.into(),
                    host: Some("ml.azure.com".into()),
                    ..Default::default()
                })),
                ..Default::default()
            }
            .into();
            name(&mut h);
            assert_eq!(h.name.as_deref(), named, "{method}");
        }
    }

    /// A live flow's record fits mimalloc's 512-byte size class: a flood holds hundreds of
    /// thousands of them (README, "Memory"). Facts are one pointer until something is found.
    #[test]
    fn a_live_flow_record_fits_512_bytes() {
        assert!(std::mem::size_of::<Described>() <= 512);
        assert_eq!(std::mem::size_of::<Facts>(), 8);
        assert_eq!(std::mem::size_of::<crate::flow::OptNs>(), 8);
    }

    #[test]
    fn starttls_is_found_after_plaintext_lines() {
        let hello = crate::synth::tls_client_hello("mail.allowscope.test");
        let mut client = b"EHLO client\r\nSTARTTLS\r\n".to_vec();
        client.extend_from_slice(&hello);
        let mut server = b"220 ready\r\n250-STARTTLS\r\n220 go ahead\r\n".to_vec();
        server.extend_from_slice(&[0x16, 0x03, 0x03, 0, 4, 2, 0, 0, 0]);
        assert_eq!(starttls_offsets(&client, &server), Some((23, 39)));
        let t = tls::client_hello(&client[23..], false);
        assert_eq!(
            t.hello().unwrap().sni.as_deref(),
            Some("mail.allowscope.test")
        );
        // binary before the record: not STARTTLS
        let mut bin = vec![0u8, 1, 2, b'\n'];
        bin.extend_from_slice(&hello);
        assert_eq!(starttls_offsets(&bin, &server), None);
        assert_eq!(starttls_offsets(b"GET / HTTP/1.1\r\n\r\n", &server), None);
    }

    /// A CONNECT whose target the parser rejects (not `host:port`) and that the proxy refused
    /// is a proxy's refusal, not a reached server (it fell back to plain HTTP facts, whose 403
    /// made the flow reached).
    #[test]
    fn a_refused_connect_with_a_rejected_target_is_proxy_denied() {
        let facts = |target: &str, status: u16, truncated: bool| -> Facts {
            FactsData {
                http: Some(Box::new(HttpFacts {
                    method: "CONNECT".into(),
                    target: target.into(),
                    status: Some(status),
                    truncated,
                    ..HttpFacts::default()
                })),
                ..FactsData::default()
            }
            .into()
        };
        let server = crate::flow::Dir::default();
        for target in ["exa mple.com:443", "example.com", "user@example.com:443"] {
            assert_eq!(http::connect_target(target), None, "{target}");
            assert_eq!(
                facts(target, 403, false).app_outcome(&server),
                Outcome::ProxyDenied
            );
        }
        assert_eq!(
            facts("exa mple.com:443", 407, false).app_outcome(&server),
            Outcome::ProxyDenied
        );
        // Cut: a 407 may be followed by the retry the capture lost.
        assert_eq!(
            facts("exa", 407, true).app_outcome(&server),
            Outcome::Established
        );
        assert_eq!(
            facts("exa mple.com:443", 200, false).app_outcome(&server),
            Outcome::Established
        );
    }

    #[test]
    fn host_header_port_is_stripped() {
        assert_eq!(host_only("example.com:8080"), "example.com");
        assert_eq!(host_only("example.com"), "example.com");
        assert_eq!(host_only("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_only("a:b"), "a:b");
    }
}

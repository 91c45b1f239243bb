//! HTTP/1.x request and response heads (RFC 9112), including proxy CONNECT and its tunnel.
//!
//! Only what an egress audit needs: the request line, Host, Upgrade and Connection; the status
//! line and the headers that name a proxy or firewall (Server, Via, X-Squid-Error) or frame the
//! body (Content-Length); Azure Firewall's 470 deny page. Header names are case-insensitive,
//! bare LF line ends are accepted, and a head longer than 64 KiB is not HTTP. Header values are
//! kept as sent (lossy UTF-8): they are attacker-controlled, escape them before display.

use serde::Serialize;

/// Longest head accepted (request or status line, headers, and the empty line).
pub const MAX_HEAD: usize = 64 * 1024;

/// The request methods recognized (RFC 9110 plus PATCH). `PRI` (the HTTP/2 preface) is not one.
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "PATCH", "TRACE",
];

/// Result of reading the start of a flight as an HTTP head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Head<T> {
    /// A whole head (up to and including its empty line).
    Complete(T),
    /// Looks like HTTP (a known method, or `HTTP/`, then a plausible line) but the bytes end
    /// before the head does.
    Truncated,
    /// Not HTTP/1.x (or a head over [`MAX_HEAD`]).
    NotHttp,
}

/// An HTTP request head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Request {
    pub method: String,
    /// The first token after the method (a malformed line such as `CONNECT host:25 / HTTP/1.0`
    /// keeps `host:25`).
    pub target: String,
    /// `HTTP/1.1`, `HTTP/1.0`, ...
    pub version: String,
    /// The first Host header, as sent (may carry a port).
    pub host: Option<String>,
    /// Upgrade header(s), joined with ", ".
    pub upgrade: Option<String>,
    /// Connection header(s), joined with ", ".
    pub connection: Option<String>,
    /// Sec-WebSocket-Key: random per websocket handshake, so the same value on both sides of
    /// a proxy ties the two legs together.
    pub ws_key: Option<String>,
    /// Bytes of the head, the empty line included.
    pub head_len: usize,
}

/// An HTTP response head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub server: Option<String>,
    pub x_squid_error: Option<String>,
    /// Via header(s), joined with ", ".
    pub via: Option<String>,
    /// Content-Length, when present and valid (several equal values count as one).
    pub content_length: Option<u64>,
    /// 470 with "Action: Deny" (any case) in the body bytes available after the head (Azure
    /// Firewall application-rule deny page). Only the body's first 64 KiB, and no more than
    /// Content-Length, are searched.
    pub azure_firewall_deny: bool,
    /// Bytes of the head, the empty line included.
    pub head_len: usize,
}

/// How the message after a head is framed (RFC 9112 6.3), from its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Content-Length (valid) and no Transfer-Encoding.
    Length(u64),
    /// Neither header.
    None,
    /// Transfer-Encoding present, or an invalid Content-Length: the end cannot be found here.
    Unknown,
}

/// A head split into its lines, and the headers as (lower-case name, value).
struct Parsed<'a> {
    first: &'a [u8],
    headers: Vec<(String, String)>,
    head_len: usize,
}

impl Parsed<'_> {
    fn first_value(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn joined(&self, name: &str) -> Option<String> {
        let vals: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!vals.is_empty()).then(|| vals.join(", "))
    }

    /// Content-Length if every value (and every element of a comma list) is the same number.
    fn content_length(&self) -> Result<Option<u64>, ()> {
        let mut found = None;
        for (_, v) in self.headers.iter().filter(|(n, _)| n == "content-length") {
            for part in v.split(',') {
                let part = part.trim_matches([' ', '\t']);
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(());
                }
                let n: u64 = part.parse().map_err(|_| ())?;
                if found.is_some_and(|f| f != n) {
                    return Err(());
                }
                found = Some(n);
            }
        }
        Ok(found)
    }

    fn framing(&self) -> Framing {
        if self.headers.iter().any(|(n, _)| n == "transfer-encoding") {
            return Framing::Unknown;
        }
        match self.content_length() {
            Ok(Some(n)) => Framing::Length(n),
            Ok(None) => Framing::None,
            Err(()) => Framing::Unknown,
        }
    }
}

/// Outcome of looking for the end of a head.
enum Split<'a> {
    Done(Parsed<'a>),
    /// No empty line in the bytes (and fewer than [`MAX_HEAD`] of them).
    Incomplete,
    TooLong,
}

fn trim_ows(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&c| c != b' ' && c != b'\t');
    let Some(start) = start else { return &[] };
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .unwrap_or(start);
    &b[start..=end]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Finds the empty line ending the head and collects the header fields. Lines end in LF, with
/// or without CR; obsolete line folding is joined with one space; lines without a colon are
/// skipped.
fn split_head(bytes: &[u8]) -> Split<'_> {
    let limit = bytes.len().min(MAX_HEAD);
    let mut pos = 0;
    let mut first: Option<&[u8]> = None;
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut last_was_header = false;
    loop {
        let Some(nl) = memchr::memchr(b'\n', &bytes[pos..limit]) else {
            return if bytes.len() >= MAX_HEAD {
                Split::TooLong
            } else {
                Split::Incomplete
            };
        };
        let mut line = &bytes[pos..pos + nl];
        if let Some(l) = line.strip_suffix(b"\r") {
            line = l;
        }
        pos += nl + 1;
        if first.is_none() {
            first = Some(line);
            continue;
        }
        if line.is_empty() {
            return Split::Done(Parsed {
                first: first.unwrap_or_default(),
                headers,
                head_len: pos,
            });
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let (true, Some((_, v))) = (last_was_header, headers.last_mut()) {
                let more = trim_ows(line);
                if !more.is_empty() {
                    if !v.is_empty() {
                        v.push(' ');
                    }
                    v.push_str(&String::from_utf8_lossy(more));
                }
            }
            continue;
        }
        last_was_header = false;
        if let Some(colon) = memchr::memchr(b':', line) {
            let name = trim_ows(&line[..colon]);
            if !name.is_empty() {
                headers.push((
                    text(name).to_ascii_lowercase(),
                    text(trim_ows(&line[colon + 1..])),
                ));
                last_was_header = true;
            }
        }
    }
}

/// The first line so far: printable text (tab and bytes >= 0x80 allowed, no other controls).
fn plausible_line(b: &[u8]) -> bool {
    let line = match memchr::memchr(b'\n', b) {
        Some(i) => &b[..i],
        None => b,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.iter().all(|&c| (c >= 0x20 && c != 0x7f) || c == b'\t')
}

/// `HTTP/` then a digit, optionally `.` and a digit.
fn valid_version(v: &str) -> bool {
    match v.as_bytes() {
        [b'H', b'T', b'T', b'P', b'/', d] => d.is_ascii_digit(),
        [b'H', b'T', b'T', b'P', b'/', d, b'.', e] => d.is_ascii_digit() && e.is_ascii_digit(),
        _ => false,
    }
}

/// Does `bytes` start like `prefix` (or is it a non-empty beginning of it)?
enum Start {
    Yes,
    Partial,
    No,
}

fn starts_like(bytes: &[u8], prefix: &[u8]) -> Start {
    if bytes.starts_with(prefix) {
        Start::Yes
    } else if !bytes.is_empty() && prefix.starts_with(bytes) {
        Start::Partial
    } else {
        Start::No
    }
}

fn request_start(bytes: &[u8]) -> Start {
    let mut partial = false;
    for m in METHODS {
        let mut tok = [0u8; 8];
        tok[..m.len()].copy_from_slice(m.as_bytes());
        tok[m.len()] = b' ';
        match starts_like(bytes, &tok[..=m.len()]) {
            Start::Yes => return Start::Yes,
            Start::Partial => partial = true,
            Start::No => {}
        }
    }
    if partial {
        Start::Partial
    } else {
        Start::No
    }
}

fn parse_request_framed(bytes: &[u8]) -> Head<(Request, Framing)> {
    match request_start(bytes) {
        Start::No => return Head::NotHttp,
        Start::Partial => return Head::Truncated,
        Start::Yes => {}
    }
    if !plausible_line(bytes) {
        return Head::NotHttp;
    }
    let p = match split_head(bytes) {
        Split::Done(p) => p,
        Split::Incomplete => return Head::Truncated,
        Split::TooLong => return Head::NotHttp,
    };
    let line = text(p.first);
    let tokens: Vec<&str> = line.split([' ', '\t']).filter(|t| !t.is_empty()).collect();
    let (Some(&method), Some(&version)) = (tokens.first(), tokens.last()) else {
        return Head::NotHttp;
    };
    if tokens.len() < 3 || !valid_version(version) {
        return Head::NotHttp;
    }
    let req = Request {
        method: method.to_string(),
        target: tokens[1].to_string(),
        version: version.to_string(),
        host: p.first_value("host"),
        upgrade: p.joined("upgrade"),
        connection: p.joined("connection"),
        ws_key: p.first_value("sec-websocket-key"),
        head_len: p.head_len,
    };
    // RFC 9110 9.3.6: a CONNECT request has no content; what follows is the tunnel.
    let framing = if req.method == "CONNECT" {
        Framing::Length(0)
    } else {
        p.framing()
    };
    Head::Complete((req, framing))
}

/// Case-insensitive (ASCII) search.
fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

fn parse_response_framed(bytes: &[u8]) -> Head<(Response, Framing)> {
    match starts_like(bytes, b"HTTP/") {
        Start::No => return Head::NotHttp,
        Start::Partial => return Head::Truncated,
        Start::Yes => {}
    }
    if !plausible_line(bytes) {
        return Head::NotHttp;
    }
    let p = match split_head(bytes) {
        Split::Done(p) => p,
        Split::Incomplete => return Head::Truncated,
        Split::TooLong => return Head::NotHttp,
    };
    let line = text(p.first);
    let (version, rest) = line.split_once([' ', '\t']).unwrap_or((line.as_str(), ""));
    let rest = rest.trim_start_matches([' ', '\t']);
    let code = rest.as_bytes();
    let status_ok = code.len() >= 3
        && code[..3].iter().all(u8::is_ascii_digit)
        && code[0] != b'0'
        && (code.len() == 3 || code[3] == b' ' || code[3] == b'\t');
    if !valid_version(version) || !status_ok {
        return Head::NotHttp;
    }
    let status: u16 = rest[..3].parse().unwrap_or(0);
    let content_length = p.content_length().ok().flatten();
    let azure_firewall_deny = status == 470 && {
        let body = &bytes[p.head_len..];
        let mut n = body.len().min(MAX_HEAD);
        if let Some(cl) = content_length {
            n = n.min(usize::try_from(cl).unwrap_or(usize::MAX));
        }
        contains_ci(&body[..n], b"action: deny")
    };
    let resp = Response {
        version: version.to_string(),
        status,
        reason: rest[3..].trim_matches([' ', '\t']).to_string(),
        server: p.first_value("server"),
        x_squid_error: p.first_value("x-squid-error"),
        via: p.joined("via"),
        content_length,
        azure_firewall_deny,
        head_len: p.head_len,
    };
    // RFC 9112 6.3: no content after 1xx, 204 and 304.
    let framing = match status {
        100..=199 | 204 | 304 => Framing::Length(0),
        _ => p.framing(),
    };
    Head::Complete((resp, framing))
}

/// Reads the request head at the start of `bytes`.
///
/// `hole` (the capture lacks bytes after `bytes`) does not change the result: a head that does
/// not end in the bytes is [`Head::Truncated`] either way, since without a hole the client
/// stopped sending (or the capture ended) inside it.
pub fn parse_request(bytes: &[u8], hole: bool) -> Head<Request> {
    let _ = hole;
    match parse_request_framed(bytes) {
        Head::Complete((r, _)) => Head::Complete(r),
        Head::Truncated => Head::Truncated,
        Head::NotHttp => Head::NotHttp,
    }
}

/// Reads the response head at the start of `bytes` (`hole`: as for [`parse_request`]).
pub fn parse_response(bytes: &[u8], hole: bool) -> Head<Response> {
    let _ = hole;
    match parse_response_framed(bytes) {
        Head::Complete((r, _)) => Head::Complete(r),
        Head::Truncated => Head::Truncated,
        Head::NotHttp => Head::NotHttp,
    }
}

/// The status of a response whose head the capture cut: the status line's code when the
/// bytes hold `HTTP/x.y NNN` (the code followed by a space, a tab, the line's end or the end of
/// the bytes). A 96-byte snap keeps a proxy's or Azure Firewall's status line while it cuts
/// the request that asked.
pub fn status_of_cut(bytes: &[u8]) -> Option<u16> {
    let line = bytes.split(|&b| b == b'\r' || b == b'\n').next()?;
    let (version, rest) = line.split_at(line.iter().position(|&b| b == b' ')?);
    if !valid_version(std::str::from_utf8(version).ok()?) {
        return None;
    }
    let code = rest.get(1..)?;
    let digits = code.get(..3)?;
    let ok = digits.iter().all(u8::is_ascii_digit)
        && digits[0] != b'0'
        && matches!(code.get(3), None | Some(b' ' | b'\t'));
    ok.then(|| {
        digits
            .iter()
            .fold(0u16, |n, d| n * 10 + u16::from(d - b'0'))
    })
}

/// The method of a request whose head the capture cut, when the bytes start with a known one
/// and a space.
pub fn method_of_cut(bytes: &[u8]) -> Option<&'static str> {
    METHODS
        .into_iter()
        .find(|m| bytes.starts_with(m.as_bytes()) && bytes.get(m.len()) == Some(&b' '))
}

/// `CONNECT host:port` target -> (host, port). An IPv6 literal is in brackets (returned
/// without them); a missing, empty, zero or non-numeric port, an unbracketed IPv6 address, or a
/// host with userinfo, a slash, spaces or controls gives None. The host is returned as sent
/// (not lower-cased).
pub fn connect_target(target: &str) -> Option<(String, u16)> {
    let target = target.trim();
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    // authority-form is host:port only: no userinfo, path, spaces or controls.
    let bad_host = |b: u8| b <= b' ' || b == 0x7f || matches!(b, b'/' | b'@' | b'[' | b']');
    if host.is_empty() || host.bytes().any(bad_host) {
        return None;
    }
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Some((host.to_string(), p)),
        _ => None,
    }
}

/// Consecutive heads from the start of `bytes`, each with its offset, skipping bodies by
/// Content-Length. Stops at the first thing that is not a complete head, at a body whose end
/// cannot be known here (chunked, no length on a response: read to close) or lies past the
/// bytes, and after a 101 (what follows is another protocol).
fn heads<T>(
    bytes: &[u8],
    parse: impl Fn(&[u8]) -> Head<(T, Framing)>,
    head_len: impl Fn(&T) -> usize,
    last: impl Fn(&T) -> bool,
) -> Vec<(usize, T)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let Head::Complete((h, framing)) = parse(&bytes[pos..]) else {
            break;
        };
        let next = pos + head_len(&h);
        let stop = last(&h);
        out.push((pos, h));
        let body = match framing {
            Framing::Length(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Framing::None | Framing::Unknown => break,
        };
        if stop {
            break;
        }
        pos = match next.checked_add(body) {
            Some(p) if p <= bytes.len() => p,
            _ => break,
        };
    }
    out
}

fn request_heads(bytes: &[u8]) -> Vec<(usize, Request)> {
    heads(
        bytes,
        |b| match parse_request_framed(b) {
            // A request without length headers has no body.
            Head::Complete((r, Framing::None)) => Head::Complete((r, Framing::Length(0))),
            other => other,
        },
        |r| r.head_len,
        |_| false,
    )
}

fn response_heads(bytes: &[u8]) -> Vec<(usize, Response)> {
    heads(
        bytes,
        parse_response_framed,
        |r| r.head_len,
        |r| r.status == 101,
    )
}

/// The requests in a client flight, in order: several heads in a row on one connection (for
/// instance a CONNECT answered 407, then a second CONNECT with credentials). Bodies are skipped
/// by Content-Length; a chunked body ends the walk, as does anything that is not a complete
/// head (such as the TLS bytes of a tunnel). `hole`: as for [`parse_request`].
pub fn requests(bytes: &[u8], hole: bool) -> Vec<Request> {
    let _ = hole;
    request_heads(bytes).into_iter().map(|(_, r)| r).collect()
}

/// The responses in a server flight, in order (see [`requests`]). A response with neither
/// Content-Length nor Transfer-Encoding runs to the end of the connection and ends the walk,
/// except 1xx, 204 and 304, which have no body; a 101 ends it too. The request methods are not
/// known here, so a response to HEAD with a Content-Length is taken to carry a body.
pub fn responses(bytes: &[u8], hole: bool) -> Vec<Response> {
    let _ = hole;
    response_heads(bytes).into_iter().map(|(_, r)| r).collect()
}

/// After a successful CONNECT, where the tunnelled bytes start in each direction: (offset in
/// `client`, offset in `server`).
///
/// Responses are paired with requests in order (interim 1xx responses other than 101 pair with
/// none). The first CONNECT answered 2xx opens the tunnel right after both heads (a 2xx to
/// CONNECT has no content, whatever its headers say). None when no CONNECT succeeded in the
/// bytes, or when a 101 switched protocols first.
pub fn tunnel_offsets(client: &[u8], server: &[u8]) -> Option<(usize, usize)> {
    let reqs = request_heads(client);
    let mut reqs = reqs.iter();
    for (rpos, resp) in response_heads(server) {
        if (100..200).contains(&resp.status) && resp.status != 101 {
            continue;
        }
        let (qpos, req) = reqs.next()?;
        if resp.status == 101 {
            return None;
        }
        if req.method == "CONNECT" && (200..300).contains(&resp.status) {
            return Some((qpos + req.head_len, rpos + resp.head_len));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::XorShift;

    fn req(b: &[u8]) -> Request {
        match parse_request(b, false) {
            Head::Complete(r) => r,
            other => panic!("{other:?}"),
        }
    }

    fn resp(b: &[u8]) -> Response {
        match parse_response(b, false) {
            Head::Complete(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn get_with_host() {
        let b = b"GET /index.html HTTP/1.1\r\nhOsT: Example.com\r\nUser-Agent: t\r\n\r\nrest";
        let r = req(b);
        assert_eq!(r.method, "GET");
        assert_eq!(r.target, "/index.html");
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!(r.host.as_deref(), Some("Example.com"));
        assert_eq!(r.upgrade, None);
        assert_eq!(r.connection, None);
        assert_eq!(r.head_len, b.len() - 4);
        assert_eq!(requests(b, false).len(), 1);
    }

    #[test]
    fn lf_only_and_folded_and_odd_lines() {
        let b = b"GET / HTTP/1.0\nHost:  a.example \nX-Long: one\n  two\n\ttwo-b\nnot a header\nConnection: keep-alive\nConnection: Upgrade\n\n";
        let r = req(b);
        assert_eq!(r.host.as_deref(), Some("a.example"));
        assert_eq!(r.connection.as_deref(), Some("keep-alive, Upgrade"));
        assert_eq!(r.head_len, b.len());
        // Duplicate Host: the first wins.
        let r = req(b"GET / HTTP/1.1\r\nHost: one\r\nHost: two\r\n\r\n");
        assert_eq!(r.host.as_deref(), Some("one"));
    }

    #[test]
    fn connect_with_and_without_host() {
        let r = req(b"CONNECT api.example.com:443 HTTP/1.1\r\nHost: api.example.com:443\r\nProxy-Connection: keep-alive\r\n\r\n\x16\x03\x01");
        assert_eq!(r.method, "CONNECT");
        assert_eq!(
            connect_target(&r.target),
            Some(("api.example.com".to_string(), 443))
        );
        assert_eq!(r.host.as_deref(), Some("api.example.com:443"));
        // The malformed request line of a real SMTP-through-proxy trace, with no Host.
        let r = req(b"CONNECT mailin03.sul.t-online.de:25 / HTTP/1.0\r\nMozilla 4.0 (compatible)\r\n\r\nHELO x\r\n");
        assert_eq!(r.target, "mailin03.sul.t-online.de:25");
        assert_eq!(r.version, "HTTP/1.0");
        assert_eq!(r.host, None);
        assert_eq!(
            connect_target(&r.target),
            Some(("mailin03.sul.t-online.de".to_string(), 25))
        );
        // The SMTP after it is not a request.
        assert_eq!(
            requests(b"CONNECT m.example:25 HTTP/1.0\r\n\r\nHELO x\r\n", false).len(),
            1
        );
    }

    #[test]
    fn status_and_method_of_a_cut_head() {
        assert_eq!(
            status_of_cut(b"HTTP/1.1 403 Forbidden\r\nX-Squid"),
            Some(403)
        );
        assert_eq!(status_of_cut(b"HTTP/1.1 470"), Some(470));
        assert_eq!(status_of_cut(b"HTTP/1.0 200\r\n"), Some(200));
        assert_eq!(status_of_cut(b"HTTP/1.1 47"), None);
        assert_eq!(status_of_cut(b"HTTP/1.1 4700"), None);
        assert_eq!(status_of_cut(b"HTTP/1.1 047 x"), None);
        assert_eq!(status_of_cut(b"SSH-2.0-x 200"), None);
        assert_eq!(status_of_cut(b""), None);
        assert_eq!(method_of_cut(b"CONNECT ok.allowscope.te"), Some("CONNECT"));
        assert_eq!(method_of_cut(b"GET /x"), Some("GET"));
        assert_eq!(method_of_cut(b"CONNECTX"), None);
        assert_eq!(method_of_cut(b"CONN"), None);
    }

    #[test]
    fn connect_targets() {
        let t = |s: &str| connect_target(s);
        assert_eq!(t("example.com:8443"), Some(("example.com".into(), 8443)));
        assert_eq!(t("[2001:db8::1]:443"), Some(("2001:db8::1".into(), 443)));
        assert_eq!(t("10.0.0.1:445"), Some(("10.0.0.1".into(), 445)));
        assert_eq!(t("example.com"), None);
        assert_eq!(t("example.com:"), None);
        assert_eq!(t("example.com:0"), None);
        assert_eq!(t("example.com:65536"), None);
        assert_eq!(t("example.com:+443"), None);
        assert_eq!(t("example.com:44x"), None);
        assert_eq!(t(":443"), None);
        assert_eq!(t("[2001:db8::1]"), None);
        assert_eq!(t("[2001:db8::1]443"), None);
        assert_eq!(t("2001:db8::1:443"), None);
        assert_eq!(t("[]:443"), None);
        assert_eq!(t("user@example.com:443"), None);
        assert_eq!(t("example.com/x:443"), None);
        assert_eq!(t("exa mple.com:443"), None);
        assert_eq!(t("http://example.com:443"), None);
        assert_eq!(t(" Example.COM:443 "), Some(("Example.COM".into(), 443)));
    }

    #[test]
    fn connection_established() {
        let b = b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03\x00\x51";
        let r = resp(b);
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!(r.status, 200);
        assert_eq!(r.reason, "Connection established");
        assert_eq!(r.head_len, b.len() - 5);
        assert_eq!(r.content_length, None);
        assert!(!r.azure_firewall_deny);
        // No reason phrase at all.
        assert_eq!(resp(b"HTTP/1.1 204\r\n\r\n").reason, "");
    }

    #[test]
    fn squid_denied() {
        let body = b"<html>ERROR: The requested URL could not be retrieved</html>\n";
        let mut b = format!(
            "HTTP/1.1 403 Forbidden\r\nServer: squid/5.7\r\nMime-Version: 1.0\r\nContent-Type: text/html;charset=utf-8\r\nContent-Length: {}\r\nX-Squid-Error: ERR_ACCESS_DENIED 0\r\nVary: Accept-Language\r\nX-Cache: MISS from proxy\r\nVia: 1.1 proxy (squid/5.7)\r\nConnection: keep-alive\r\n\r\n",
            body.len()
        )
        .into_bytes();
        b.extend_from_slice(body);
        let r = resp(&b);
        assert_eq!(r.status, 403);
        assert_eq!(r.server.as_deref(), Some("squid/5.7"));
        assert_eq!(r.x_squid_error.as_deref(), Some("ERR_ACCESS_DENIED 0"));
        assert_eq!(r.via.as_deref(), Some("1.1 proxy (squid/5.7)"));
        assert_eq!(r.content_length, Some(body.len() as u64));
        assert!(!r.azure_firewall_deny);
    }

    fn proxy_auth_exchange() -> (Vec<u8>, Vec<u8>, usize, usize) {
        let mut client =
            b"CONNECT ws.example.net:443 HTTP/1.1\r\nHost: ws.example.net:443\r\n\r\n".to_vec();
        client.extend_from_slice(b"CONNECT ws.example.net:443 HTTP/1.1\r\nHost: ws.example.net:443\r\nProxy-Authorization: Basic dTpw\r\n\r\n");
        let c_tunnel = client.len();
        client.extend_from_slice(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
        let body = "Proxy authentication required";
        let mut server = format!(
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes();
        server.extend_from_slice(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let s_tunnel = server.len();
        server.extend_from_slice(b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03");
        (client, server, c_tunnel, s_tunnel)
    }

    #[test]
    fn proxy_auth_then_tunnel() {
        let (client, server, ct, st) = proxy_auth_exchange();
        let reqs = requests(&client, false);
        assert_eq!(reqs.len(), 2);
        assert!(reqs.iter().all(|r| r.method == "CONNECT"));
        assert_eq!(reqs[1].host.as_deref(), Some("ws.example.net:443"));
        let resps = responses(&server, false);
        let statuses: Vec<u16> = resps.iter().map(|r| r.status).collect();
        assert_eq!(statuses, vec![407, 200]);
        assert_eq!(tunnel_offsets(&client, &server), Some((ct, st)));
        // Only the 407 so far: no tunnel.
        let ok_len = b"HTTP/1.1 200 Connection established\r\n\r\n".len();
        let first_resp = &server[..st - ok_len];
        assert_eq!(responses(first_resp, true).len(), 1);
        assert_eq!(tunnel_offsets(&client, first_resp), None);
        // A simple one-shot CONNECT.
        let c = b"CONNECT a.example:443 HTTP/1.1\r\n\r\nTLS";
        let s = b"HTTP/1.0 200 OK\r\nContent-Length: 99\r\n\r\nTLS";
        assert_eq!(tunnel_offsets(c, s), Some((c.len() - 3, s.len() - 3)));
        // Denied: no tunnel.
        let s = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(tunnel_offsets(c, s), None);
        // A GET answered 200 is not a tunnel.
        assert_eq!(
            tunnel_offsets(b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"),
            None
        );
        // Interim responses pair with no request.
        let s = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        assert_eq!(tunnel_offsets(c, s), Some((c.len() - 3, s.len())));
    }

    #[test]
    fn websocket_upgrade() {
        let r = req(b"GET /chat HTTP/1.1\r\nHost: ws.instances.azureml.ms\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        assert_eq!(r.upgrade.as_deref(), Some("websocket"));
        assert_eq!(r.connection.as_deref(), Some("Upgrade"));
        let s = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05hello";
        let r = resp(s);
        assert_eq!(r.status, 101);
        assert_eq!(responses(s, false).len(), 1);
        assert_eq!(
            tunnel_offsets(b"GET /chat HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", s),
            None
        );
    }

    #[test]
    fn azure_firewall_470() {
        let body = "HTTP request from 10.0.0.4:50110 to example.com:80. Url: example.com/. Action: Deny. No rule matched. Proceeding with default action";
        let mk = |body: &str, cl: Option<usize>| {
            let mut h =
                "HTTP/1.1 470 status code 470\r\nContent-Type: text/plain; charset=utf-8\r\n"
                    .to_string();
            if let Some(cl) = cl {
                h.push_str(&format!("Content-Length: {cl}\r\n"));
            }
            h.push_str("\r\n");
            h.push_str(body);
            h.into_bytes()
        };
        let r = resp(&mk(body, Some(body.len())));
        assert_eq!(r.status, 470);
        assert!(r.azure_firewall_deny);
        assert!(resp(&mk(body, None)).azure_firewall_deny);
        assert!(resp(&mk(&body.to_uppercase(), None)).azure_firewall_deny);
        // The body is not (yet) there, or the words lie past Content-Length.
        assert!(!resp(&mk("", Some(body.len()))).azure_firewall_deny);
        assert!(!resp(&mk(body, Some(20))).azure_firewall_deny);
        // Another status with the same words.
        let mut b = b"HTTP/1.1 403 Forbidden\r\n\r\n".to_vec();
        b.extend_from_slice(body.as_bytes());
        assert!(!resp(&b).azure_firewall_deny);
    }

    #[test]
    fn truncated_heads() {
        let full = b"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n";
        for cut in 1..full.len() {
            assert_eq!(
                parse_request(&full[..cut], true),
                Head::Truncated,
                "cut {cut}"
            );
        }
        assert!(matches!(parse_request(full, false), Head::Complete(_)));
        let full = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n";
        for cut in 1..full.len() {
            assert_eq!(parse_response(&full[..cut], true), Head::Truncated);
        }
        assert_eq!(parse_request(b"", true), Head::NotHttp);
        assert_eq!(parse_response(b"", true), Head::NotHttp);
        // Complete heads with a cut body still parse; the walk stops at the cut body.
        let b = b"POST /u HTTP/1.1\r\nContent-Length: 10\r\n\r\n12345";
        assert!(matches!(parse_request(b, true), Head::Complete(_)));
        assert_eq!(requests(b, true).len(), 1);
    }

    #[test]
    fn not_http() {
        let cases: [&[u8]; 14] = [
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"SSH-2.0-OpenSSH_9.6\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET / HTTP/x\r\n\r\n",
            b"GET / FTP/1.0\r\n\r\n",
            b"GET \x00\x01\x02\x03",
            b"CONNECT a:1 HTTP/1.1\x00\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 OK\r\n\r\n",
            b"HTTP/1.1 099 Odd\r\n\r\n",
            b"HTTPS/1.1 200 OK\r\n\r\n",
        ];
        for c in cases {
            assert_eq!(parse_request(c, false), Head::NotHttp, "{c:?}");
            assert_eq!(parse_response(c, false), Head::NotHttp, "{c:?}");
            assert!(requests(c, false).is_empty() && responses(c, false).is_empty());
        }
        // A head over 64 KiB.
        let mut big = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        big.extend(std::iter::repeat_n(b'a', MAX_HEAD));
        assert_eq!(parse_request(&big, true), Head::NotHttp);
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request(&big, false), Head::NotHttp);
        // Just under the limit is fine.
        let mut ok = b"GET / HTTP/1.1\r\nX-Pad: ".to_vec();
        ok.extend(std::iter::repeat_n(b'a', MAX_HEAD - ok.len() - 4));
        ok.extend_from_slice(b"\r\n\r\n");
        assert_eq!(ok.len(), MAX_HEAD);
        assert!(matches!(parse_request(&ok, false), Head::Complete(_)));
    }

    #[test]
    fn every_method() {
        for m in METHODS {
            let b = format!("{m} /x HTTP/1.1\r\n\r\n");
            assert_eq!(req(b.as_bytes()).method, m);
        }
    }

    #[test]
    fn pipelined_requests_and_responses() {
        let c = b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /d HTTP/1.1\r\n\r\n";
        let targets: Vec<String> = requests(c, false).into_iter().map(|r| r.target).collect();
        assert_eq!(
            targets,
            vec!["/a", "/b", "/c"],
            "chunked body ends the walk"
        );
        let s = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
        let statuses: Vec<u16> = responses(s, false).iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            vec![100, 204, 304, 200, 200],
            "no length: read to close"
        );
        // Conflicting Content-Length values: invalid, and the walk stops.
        let s = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n";
        let r = responses(s, false);
        assert_eq!((r.len(), r[0].content_length), (1, None));
        let s = b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nokHTTP/1.1 201 OK\r\n\r\n";
        assert_eq!(responses(s, false).len(), 2);
    }

    #[test]
    fn serializes() {
        let h = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false);
        let v = serde_json::to_value(&h).unwrap();
        assert_eq!(v["status"], "complete");
        assert_eq!(v["host"], "a");
        let v = serde_json::to_value(parse_response(b"HTTP/1.1 2", true)).unwrap();
        assert_eq!(v["status"], "truncated");
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = XorShift::new(0x4774);
        let seeds: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody",
            b"HTTP/1.1 470 x\r\nContent-Length: 12\r\n\r\nAction: Deny",
            b"CONNECT [::1]:443 HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nVia: a\r\n b\r\n\r\n",
        ];
        for i in 0..20_000 {
            let b = if i % 2 == 0 {
                let n = rng.below(200);
                rng.bytes(n)
            } else {
                let mut b = seeds[rng.below(seeds.len())].to_vec();
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(b.len());
                    b[at] = match rng.below(4) {
                        0 => b'\n',
                        1 => b':',
                        2 => b' ',
                        _ => rng.next_u64() as u8,
                    };
                }
                b.truncate(rng.below(b.len() + 1));
                b
            };
            let hole = i % 3 == 0;
            if let Head::Complete(r) = parse_request(&b, hole) {
                assert!(r.head_len <= b.len());
                let _ = connect_target(&r.target);
            }
            if let Head::Complete(r) = parse_response(&b, hole) {
                assert!(r.head_len <= b.len() && (100..1000).contains(&r.status));
            }
            let _ = (requests(&b, hole), responses(&b, hole));
            if let Some((c, s)) = tunnel_offsets(&b, &b) {
                assert!(c <= b.len() && s <= b.len());
            }
            let s = String::from_utf8_lossy(&b);
            let _ = connect_target(&s);
        }
    }
}

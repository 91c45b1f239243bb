//! Application facts extracted from the reassembled first flights and datagrams of a flow:
//! TLS (ClientHello / ServerHello / alerts / certificate), DNS, HTTP/1.x and CONNECT, QUIC
//! Initial. Each extractor is a pure function over bytes that never panics, returns owned
//! facts, and says "truncated" when the capture cut what it was reading (never "absent").

use serde::Serialize;

/// What a TLS ClientHello said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ClientHello {
    /// server_name (host_name type), as sent (may be attacker-controlled: escape before display).
    pub sni: Option<String>,
    /// ALPN protocol names offered, in order.
    pub alpn: Vec<String>,
    /// Offered versions: supported_versions if present, else the legacy version (0x0303 = TLS 1.2).
    pub versions: Vec<u16>,
    /// An encrypted_client_hello extension (0xfe0d) is present: `sni` is then the outer
    /// (cover) name, not the real destination.
    pub ech: bool,
    /// The 32-byte client random (hex in JSON). A TCP relay (haproxy in TCP mode, a NAT)
    /// forwards the ClientHello unchanged, so the same random on two legs ties them together.
    #[serde(serialize_with = "ser_hex_opt")]
    #[schemars(with = "Option<String>", extend("pattern" = "^[0-9a-f]{64}$"))]
    pub random: Option<[u8; 32]>,
}

/// Bytes as lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Serializes bytes as a hex string.
pub(crate) fn ser_hex<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex(bytes))
}

fn ser_hex_opt<S: serde::Serializer>(bytes: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => ser_hex(b, s),
        None => s.serialize_none(),
    }
}

/// Result of reading a client's first flight as TLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum HelloStatus {
    /// A complete ClientHello (possibly over several records and segments).
    Complete(ClientHello),
    /// The flight starts like a TLS handshake but the capture lacks bytes of the ClientHello
    /// (snap length, a missing segment). Whatever could be read before the cut is kept.
    Truncated {
        partial: ClientHello,
        have: usize,
        need: usize,
    },
    /// Not TLS (or not a ClientHello).
    NotTls,
}

impl HelloStatus {
    /// The ClientHello fields read, complete or up to the cut.
    pub fn hello(&self) -> Option<&ClientHello> {
        match self {
            HelloStatus::Complete(h) => Some(h),
            HelloStatus::Truncated { partial, .. } => Some(partial),
            HelloStatus::NotTls => None,
        }
    }
}

/// A TLS alert seen on the wire (plaintext: before encryption started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Alert {
    /// 1 warning, 2 fatal.
    pub level: u8,
    pub description: u8,
    /// Sent before the handshake completed (no ChangeCipherSpec / application data yet).
    pub before_handshake: bool,
}

/// What the server's first flight said.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct ServerFacts {
    /// A ServerHello was seen.
    pub server_hello: bool,
    /// Chosen version (supported_versions extension if present, else the legacy version).
    pub version: Option<u16>,
    /// ALPN chosen (visible in the ServerHello for TLS <= 1.2 only).
    pub alpn: Option<String>,
    /// Plaintext alerts from the server.
    pub alerts: Vec<Alert>,
    /// TLS <= 1.2: subject and issuer of the first certificate, RFC 4514-style strings.
    pub cert_subject: Option<String>,
    pub cert_issuer: Option<String>,
    /// The first flight was cut before the parser finished (snap length, missing segment).
    pub truncated: bool,
}
pub mod dns;
pub mod facts;
pub use facts::Described;
pub mod http;
pub mod quic;
pub mod tls;

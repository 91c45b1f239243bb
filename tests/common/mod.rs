//! Helpers shared by the integration tests that run the built binary on `captures/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A capture of the project's `captures/` directory.
pub fn cap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// `out` with the commit the binary was built from written as null where a document's
/// provenance names it (`"commit": "..."`, indented or compact): the golden outputs hold no
/// commit, which changes with every one.
#[allow(dead_code)] // not every test binary compares outputs
pub fn stable(out: &str) -> String {
    let commit = env!("ALLOWSCOPE_COMMIT");
    if commit.is_empty() {
        return out.to_string();
    }
    out.replace(&format!("\"commit\": \"{commit}\""), "\"commit\": null")
        .replace(&format!("\"commit\":\"{commit}\""), "\"commit\":null")
}

/// The `flow` rows of an audit's NDJSON (which also has `dns-finding` and `coverage` rows), as
/// lines, without the fields every row carries (`kind`, `labels`).
#[allow(dead_code)] // not every test binary reads the audit's NDJSON
pub fn flow_lines(nd: &str) -> String {
    let mut out = String::new();
    for l in nd.lines() {
        let mut v: serde_json::Value = serde_json::from_str(l).expect("an NDJSON row");
        if v["kind"] != "flow" {
            continue;
        }
        let o = v.as_object_mut().expect("a row is an object");
        o.remove("kind");
        o.remove("labels");
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

/// Runs the built binary (no colour) and returns its exit code, stdout (with no commit, see
/// [`stable`]) and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run allowscope");
    (
        out.status.code().unwrap_or(-1),
        stable(&String::from_utf8_lossy(&out.stdout)),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A tool a test needs: under CI its absence fails the test, elsewhere the test is skipped.
#[allow(dead_code)] // not every test binary runs tools
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "`{tool}` is missing and CI must not skip (.ci/run installs it)"
        );
        eprintln!("skipped: `{tool}` is not installed");
    }
    found
}

/// The audit JSON document (`--fail-on never`) of one capture of `captures/`.
#[allow(dead_code)] // not every test binary merges documents
pub fn audit_json_of(capture: &str) -> String {
    let path = cap(capture);
    let (_, doc, _) = run(&[
        "audit",
        "--format",
        "json",
        "--fail-on",
        "never",
        path.to_str().unwrap_or_default(),
    ]);
    doc
}

/// A pcap writer: Ethernet, IPv4, TCP or UDP, microsecond times.
#[allow(dead_code)] // not every test binary writes captures
pub struct Pcap {
    pub bytes: Vec<u8>,
    us: u64,
}

#[allow(dead_code)]
impl Pcap {
    pub fn new() -> Pcap {
        let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&65535u32.to_le_bytes());
        bytes.extend_from_slice(&1u32.to_le_bytes());
        Pcap {
            bytes,
            us: 1_763_700_000_000_000,
        }
    }

    pub fn frame(&mut self, src: [u8; 4], dst: [u8; 4], proto: u8, l4: &[u8]) {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0];
        let total = (20 + l4.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let mut sum: u32 = ip
            .chunks(2)
            .map(|c| u32::from(c[0]) << 8 | u32::from(c[1]))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        self.us += 1000;
        let len = f.len() as u32;
        self.bytes
            .extend_from_slice(&((self.us / 1_000_000) as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&((self.us % 1_000_000) as u32).to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self.bytes.extend_from_slice(&f);
    }

    /// Lets `us` microseconds pass before the next frame (each frame is 1 ms after the last).
    pub fn wait(&mut self, us: u64) {
        self.us += us;
    }

    pub fn udp(&mut self, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, payload: &[u8]) {
        let mut u = sport.to_be_bytes().to_vec();
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        self.frame(src, dst, 17, &u);
    }

    /// A lookup of the A record of `name` from `client`'s UDP port `port` (also its id) to
    /// `resolver`: the query, and the answer when `answer` is given.
    #[allow(dead_code)] // not every test binary writes DNS
    pub fn lookup(
        &mut self,
        client: [u8; 4],
        resolver: [u8; 4],
        port: u16,
        name: &str,
        answer: Option<[u8; 4]>,
    ) {
        self.udp(client, resolver, port, 53, &dns_message(port, name, None));
        if answer.is_some() {
            self.udp(resolver, client, 53, port, &dns_message(port, name, answer));
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        src: [u8; 4],
        dst: [u8; 4],
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) {
        let mut t = Vec::new();
        t.extend_from_slice(&sport.to_be_bytes());
        t.extend_from_slice(&dport.to_be_bytes());
        t.extend_from_slice(&seq.to_be_bytes());
        t.extend_from_slice(&ack.to_be_bytes());
        t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        self.frame(src, dst, 6, &t);
    }

    /// A TLS connection with `sni`: answered with a ServerHello-like record (reached), or
    /// reset by the server after the ClientHello (blocked).
    #[allow(dead_code)] // not every test binary writes TLS
    pub fn tls(&mut self, port: u16, server: [u8; 4], sni: &str, answered: bool) {
        const C: [u8; 4] = [10, 0, 0, 2];
        let (syn, ack, fin, rst, psh) = (0x02, 0x10, 0x01, 0x04, 0x08);
        self.tcp(C, server, port, 443, 100, 0, syn, &[]);
        self.tcp(server, C, 443, port, 500, 101, syn | ack, &[]);
        self.tcp(C, server, port, 443, 101, 501, ack, &[]);
        let hello = client_hello(sni.as_bytes());
        self.tcp(C, server, port, 443, 101, 501, psh | ack, &hello);
        let next = 101 + hello.len() as u32;
        if answered {
            let server_hello = [
                0x16, 3, 3, 0, 6, 2, 0, 0, 2, 3, 3, 0x17, 3, 3, 0, 2, 0xaa, 0xbb,
            ];
            self.tcp(server, C, 443, port, 501, next, psh | ack, &server_hello);
            self.tcp(C, server, port, 443, next, 519, fin | ack, &[]);
            self.tcp(server, C, 443, port, 519, next + 1, fin | ack, &[]);
        } else {
            self.tcp(server, C, 443, port, 501, next, rst | ack, &[]);
        }
    }
}

/// A TLS 1.2-framed ClientHello with one SNI of `sni` (any bytes, any length that fits).
#[allow(dead_code)] // not every test binary writes TLS
pub fn client_hello(sni: &[u8]) -> Vec<u8> {
    client_hello_padded(sni, 0)
}

/// [`client_hello`] with a padding extension of `padding` zero bytes before the SNI (none when
/// zero).
#[allow(dead_code)] // not every test binary writes TLS
pub fn client_hello_padded(sni: &[u8], padding: u16) -> Vec<u8> {
    let n = sni.len() as u16;
    let mut ext = Vec::new();
    if padding > 0 {
        ext.extend_from_slice(&[0, 21]);
        ext.extend_from_slice(&padding.to_be_bytes());
        ext.resize(ext.len() + usize::from(padding), 0);
    }
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&(n + 5).to_be_bytes());
    ext.extend_from_slice(&(n + 3).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&n.to_be_bytes());
    ext.extend_from_slice(sni);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.extend_from_slice(&[0, 0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// A DNS message asking for the A record of `qname` (`id`); a response when `answer` is given
/// (NOERROR, one A record of that address with a TTL of 60).
#[allow(dead_code)] // not every test binary writes DNS
pub fn dns_message(id: u16, qname: &str, answer: Option<[u8; 4]>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    let flags: u16 = if answer.is_some() { 0x8180 } else { 0x0100 };
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    for label in qname.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(a) = answer {
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        m.extend_from_slice(&a);
    }
    m
}

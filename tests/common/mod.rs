//! Helpers shared by the integration tests that run the built binary on `captures/`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A capture of the project's `captures/` directory.
pub fn cap(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// Runs the built binary (no colour) and returns its exit code, stdout and stderr.
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_allowscope"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run allowscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
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
}

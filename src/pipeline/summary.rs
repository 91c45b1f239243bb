//! What one input produced ([`FileResult`]: flows, DNS messages, [`FileSummary`]) and how the
//! parts of the workers of one input are put together into it ([`finish_result`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::stream::Stream;
use super::worker::Part;
use crate::capture::{CaptureReader, Compression, ReadError};
use crate::decode::{DefragStats, Skip};
use crate::flow::TableStats;
use crate::proto::Described;

/// What was skipped while decoding, by reason. The summaries are read back as they are
/// written (`allowscope merge`): the names are the build's own when read from a capture.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkipCounts {
    /// Frames of link types we do not decode, per link type.
    pub unsupported_linktype: BTreeMap<u32, u64>,
    /// Frames that carry no IP (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames too short or inconsistent to read an IP header, per reason.
    pub malformed: BTreeMap<Cow<'static, str>, u64>,
}

/// IP fragment reassembly counters.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FragmentCounts {
    pub fragments: u64,
    pub reassembled: u64,
    pub expired: u64,
    pub dropped_over_limit: u64,
    pub overlaps: u64,
}

impl From<&DefragStats> for FragmentCounts {
    fn from(s: &DefragStats) -> Self {
        FragmentCounts {
            fragments: s.fragments,
            reassembled: s.completed,
            expired: s.expired,
            dropped_over_limit: s.dropped_over_limit,
            overlaps: s.overlaps,
        }
    }
}

/// The per-file summary: what was read, what was skipped, what went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSummary {
    pub file: String,
    /// The run's `--label key=value` pairs (see [`crate::provenance`]).
    pub labels: BTreeMap<String, String>,
    /// "pcap", "pcap-ns" or "pcapng"; null when the file could not be opened.
    pub format: Option<Cow<'static, str>>,
    pub compression: Option<Compression>,
    /// Bytes of the input as stored (compressed, for a compressed file); null when it was not
    /// read to its end.
    pub size: Option<u64>,
    /// The SHA-256 of those bytes (what `sha256sum` prints); null as `size`.
    pub sha256: Option<String>,
    pub packets: u64,
    /// Bytes of the (decompressed) capture stream read.
    pub file_bytes: u64,
    pub captured_bytes: u64,
    pub wire_bytes: u64,
    /// Frames per link type.
    pub linktypes: BTreeMap<u32, u64>,
    /// Packets the snap length cut short (their parsed layers were kept).
    pub truncated_packets: u64,
    /// Flows whose SNI, CONNECT target, Host or QUIC SNI was no host name (over 253 octets,
    /// an empty label, a label over 63): not taken as their name.
    #[serde(default)]
    pub names_not_taken: u64,
    /// TLS flows whose ClientHello was longer than the reassembly cap (`--reassembly-cap`):
    /// read in part, its SNI may be missing.
    #[serde(default)]
    pub hellos_over_cap: u64,
    /// UDP datagrams to or from port 53 that could not be read as DNS (a compression loop, a
    /// name over 255 octets, not DNS at all).
    #[serde(default)]
    pub dns_unreadable: u64,
    pub skipped: SkipCounts,
    pub skipped_blocks: u64,
    pub interface_drops: Option<u64>,
    pub fragments: FragmentCounts,
    pub flow_table: TableStats,
    pub warnings: Vec<String>,
    /// Why reading stopped early (file, byte offset, what was wrong), if it did.
    pub error: Option<String>,
    /// The latest frame time of the input: where the capture stopped watching (not written).
    #[serde(skip)]
    pub latest_ns: Option<i64>,
}

impl FileSummary {
    pub(super) fn empty(file: String) -> Self {
        FileSummary {
            file,
            labels: BTreeMap::new(),
            format: None,
            compression: None,
            size: None,
            sha256: None,
            packets: 0,
            file_bytes: 0,
            captured_bytes: 0,
            wire_bytes: 0,
            linktypes: BTreeMap::new(),
            truncated_packets: 0,
            names_not_taken: 0,
            hellos_over_cap: 0,
            dns_unreadable: 0,
            skipped: SkipCounts::default(),
            skipped_blocks: 0,
            interface_drops: None,
            fragments: FragmentCounts::default(),
            flow_table: TableStats::default(),
            warnings: Vec::new(),
            error: None,
            latest_ns: None,
        }
    }
}

pub use crate::names::DnsEvent;

/// Everything one input produced.
pub struct FileResult {
    pub summary: FileSummary,
    /// Finished flows in first-seen order, with their application facts. Boxed as the flow
    /// table made them: a flow is large, and moving every one into a new vector costs more
    /// than the indirection.
    #[allow(clippy::vec_box)]
    pub flows: Vec<Box<Described>>,
    /// DNS messages in time order (a message over TCP at the first payload of its direction),
    /// copies of one datagram captured on both sides of a router removed.
    pub dns: Vec<DnsEvent>,
}

impl SkipCounts {
    /// Frames skipped for any reason.
    pub fn total(&self) -> u64 {
        self.not_ip
            + self.unsupported_linktype.values().sum::<u64>()
            + self.malformed.values().sum::<u64>()
    }

    pub(crate) fn count(&mut self, skip: Skip) {
        match skip {
            Skip::UnsupportedLinkType(lt) => *self.unsupported_linktype.entry(lt).or_default() += 1,
            Skip::NotIp(_) => self.not_ip += 1,
            Skip::Malformed(why) => *self.malformed.entry(why.into()).or_default() += 1,
        }
    }

    fn add(&mut self, o: SkipCounts) {
        for (k, v) in o.unsupported_linktype {
            *self.unsupported_linktype.entry(k).or_default() += v;
        }
        self.not_ip += o.not_ip;
        for (k, v) in o.malformed {
            *self.malformed.entry(k).or_default() += v;
        }
    }
}

/// Puts the parts of one input together (in any order of parts: the result is the same) with
/// its named flows and DNS messages (`named`, from [`Stream::finish`]). Any epoch still in a
/// part goes through the stream first: a part that kept every flow (a live view's snapshot)
/// is the whole input as one epoch. `skipped` holds what the reader skipped itself; `peak`
/// is the table's own peak when one table held every flow (else the stream counted it from the
/// flows' lives).
pub(crate) fn finish_result(
    name: String,
    reader: &CaptureReader,
    error: Option<ReadError>,
    mut parts: Vec<Part>,
    mut skipped: SkipCounts,
    peak: Option<u64>,
    mut stream: Stream,
) -> FileResult {
    let latest = reader.stats().latest_ts_ns;
    stream.end_at(latest);
    for (i, p) in parts.iter_mut().enumerate() {
        stream.push(i, std::mem::take(&mut p.epoch));
    }
    let (flows, dns, stream_peak) = stream.finish();
    let mut summary = FileSummary::empty(name.clone());
    let mut frag = DefragStats::default();
    let mut table = TableStats::default();
    let mut truncated = 0;
    for p in parts {
        truncated += p.truncated;
        summary.names_not_taken += p.names_not_taken;
        summary.hellos_over_cap += p.hellos_over_cap;
        summary.dns_unreadable += p.dns_unreadable;
        skipped.add(p.skipped);
        frag.completed += p.fragments.completed;
        frag.expired += p.fragments.expired;
        frag.dropped_over_limit += p.fragments.dropped_over_limit;
        frag.overlaps += p.fragments.overlaps;
        frag.fragments += p.fragments.fragments;
        table.flows += p.table.flows;
        table.evicted += p.table.evicted;
        table.icmp_errors_unmatched += p.table.icmp_errors_unmatched;
        table.icmp_errors_unreadable += p.table.icmp_errors_unreadable;
        table.icmp_other += p.table.icmp_other;
        table.other_proto += p.table.other_proto;
        table.reassembly_budget_exhausted |= p.table.reassembly_budget_exhausted;
    }
    table.peak_live = peak.unwrap_or(stream_peak);
    let st = reader.stats();
    if let Some((size, sha256)) = reader.digest() {
        summary.size = Some(size);
        summary.sha256 = Some(sha256);
    }
    summary.format = Some(reader.format().name().into());
    summary.compression = Some(reader.compression());
    summary.packets = st.frames;
    summary.file_bytes = st.stream_bytes;
    summary.captured_bytes = st.captured_bytes;
    summary.wire_bytes = st.wire_bytes;
    summary.linktypes = st.linktypes.clone();
    summary.truncated_packets = truncated;
    summary.skipped = skipped;
    summary.skipped_blocks = st.skipped_blocks;
    summary.interface_drops = st.interface_drops;
    summary.fragments = (&frag).into();
    summary.flow_table = table;
    summary.latest_ns = latest;
    summary.warnings = reader
        .warnings()
        .iter()
        .map(|w| format!("{name}: {w}"))
        .collect();
    summary.error = error.map(|e| format!("{name}: {e}"));
    // Nothing silent: a capture none of whose frames could be decoded is an error (exit 2),
    // not an empty report.
    if summary.error.is_none() && summary.packets > 0 && summary.skipped.total() >= summary.packets
    {
        summary.error = Some(format!(
            "{name}: {} ({})",
            summary.nothing_decoded(),
            summary.skipped.reasons()
        ));
    }
    FileResult {
        summary,
        flows,
        dns,
    }
}
impl SkipCounts {
    /// Why frames were skipped, as text: "2 not IP, 5 of unsupported link type linktype-105,
    /// 1 malformed (NFLOG TLV cut)".
    pub fn reasons(&self) -> String {
        let mut parts = Vec::new();
        if self.not_ip > 0 {
            parts.push(format!("{} not IP", self.not_ip));
        }
        for (lt, n) in &self.unsupported_linktype {
            parts.push(format!(
                "{n} of unsupported link type {}",
                crate::decode::linktype_name(*lt)
            ));
        }
        for (why, n) in &self.malformed {
            parts.push(format!("{n} malformed ({why})"));
        }
        parts.join(", ")
    }
}

impl FileSummary {
    /// "no frame of link type 239 could be decoded" (link types joined by "/").
    pub fn nothing_decoded(&self) -> String {
        let lts: Vec<String> = self.linktypes.keys().map(u32::to_string).collect();
        format!("no frame of link type {} could be decoded", lts.join("/"))
    }
}

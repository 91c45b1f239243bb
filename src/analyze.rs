//! One pass over one input: read frames, decode, reassemble IP fragments, track flows.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::capture::{open_input, CaptureReader, Compression, Input, ReadError};
use crate::decode::{decode, decode_transport, DefragStats, Defragmenter, Skip, L4};
use crate::flow::{Flow, FlowConfig, FlowTable, TableStats};

/// What was skipped while decoding, by reason.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SkipCounts {
    /// Frames of link types we do not decode, per link type.
    pub unsupported_linktype: BTreeMap<u32, u64>,
    /// Frames that carry no IP (ARP, LLDP, ...).
    pub not_ip: u64,
    /// Frames too short or inconsistent to read an IP header, per reason.
    pub malformed: BTreeMap<&'static str, u64>,
}

/// IP fragment reassembly counters.
#[derive(Debug, Clone, Default, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct FileSummary {
    pub file: String,
    /// "pcap", "pcap-ns" or "pcapng"; null when the file could not be opened.
    pub format: Option<&'static str>,
    pub compression: Option<Compression>,
    pub packets: u64,
    /// Bytes of the (decompressed) capture stream read.
    pub file_bytes: u64,
    pub captured_bytes: u64,
    pub wire_bytes: u64,
    /// Frames per link type.
    pub linktypes: BTreeMap<u32, u64>,
    /// Packets the snap length cut short (their parsed layers were kept).
    pub truncated_packets: u64,
    pub skipped: SkipCounts,
    pub skipped_blocks: u64,
    pub interface_drops: Option<u64>,
    pub fragments: FragmentCounts,
    pub flow_table: TableStats,
    pub warnings: Vec<String>,
    /// Why reading stopped early (file, byte offset, what was wrong), if it did.
    pub error: Option<String>,
}

impl FileSummary {
    fn empty(file: String) -> Self {
        FileSummary {
            file,
            format: None,
            compression: None,
            packets: 0,
            file_bytes: 0,
            captured_bytes: 0,
            wire_bytes: 0,
            linktypes: BTreeMap::new(),
            truncated_packets: 0,
            skipped: SkipCounts::default(),
            skipped_blocks: 0,
            interface_drops: None,
            fragments: FragmentCounts::default(),
            flow_table: TableStats::default(),
            warnings: Vec::new(),
            error: None,
        }
    }
}

/// Everything one input produced.
pub struct FileResult {
    pub summary: FileSummary,
    /// Finished flows in first-seen order.
    pub flows: Vec<Flow>,
}

/// Reads one input to the end (or to the first unrecoverable error) and returns its flows.
pub fn analyze_input(input: &Input, cfg: &FlowConfig) -> FileResult {
    let name = input.display();
    match open_input(input) {
        Ok(reader) => analyze_reader(name, reader, cfg),
        Err(e) => {
            let mut summary = FileSummary::empty(name.clone());
            summary.error = Some(format!("{name}: {e}"));
            FileResult {
                summary,
                flows: Vec::new(),
            }
        }
    }
}

/// Reads an opened capture to the end and returns its flows.
pub fn analyze_reader(name: String, mut reader: CaptureReader, cfg: &FlowConfig) -> FileResult {
    let mut summary = FileSummary::empty(name.clone());
    let mut table = FlowTable::new(cfg.clone());
    let mut defrag = Defragmenter::default();
    let mut flows: Vec<Flow> = Vec::new();
    let mut sink = |f: Flow| flows.push(f);
    let mut truncated = 0u64;
    let mut last_defrag_sweep = i64::MIN;
    let error: Option<ReadError> = loop {
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        let cut = (frame.data.len() as u64) < frame.orig_len as u64;
        match decode(frame.linktype, frame.data) {
            Ok(pkt) => {
                if pkt.truncated || cut {
                    truncated += 1;
                }
                let cut = cut || pkt.truncated;
                if let L4::Fragment(fr) = &pkt.l4 {
                    if frame.ts_ns > last_defrag_sweep.saturating_add(1_000_000_000) {
                        defrag.expire(frame.ts_ns);
                        last_defrag_sweep = frame.ts_ns;
                    }
                    if let Some(whole) = defrag.push(frame.ts_ns, &pkt.ip, fr) {
                        let (l4, t) = decode_transport(whole.ip, &whole.data);
                        table.packet(
                            frame.ts_ns,
                            frame.orig_len,
                            cut || t,
                            &whole.ip,
                            &l4,
                            &mut sink,
                        );
                    }
                } else {
                    table.packet(
                        frame.ts_ns,
                        frame.orig_len,
                        cut,
                        &pkt.ip,
                        &pkt.l4,
                        &mut sink,
                    );
                }
            }
            Err(Skip::UnsupportedLinkType(lt)) => {
                *summary.skipped.unsupported_linktype.entry(lt).or_default() += 1;
            }
            Err(Skip::NotIp(_)) => summary.skipped.not_ip += 1,
            Err(Skip::Malformed(why)) => *summary.skipped.malformed.entry(why).or_default() += 1,
        }
    };
    table.finish(&mut sink);
    let st = reader.stats();
    summary.format = Some(reader.format().name());
    summary.compression = Some(reader.compression());
    summary.packets = st.frames;
    summary.file_bytes = st.stream_bytes;
    summary.captured_bytes = st.captured_bytes;
    summary.wire_bytes = st.wire_bytes;
    summary.linktypes = st.linktypes.clone();
    summary.truncated_packets = truncated;
    summary.skipped_blocks = st.skipped_blocks;
    summary.interface_drops = st.interface_drops;
    summary.fragments = defrag.stats().into();
    summary.flow_table = table.stats().clone();
    summary.warnings = reader
        .warnings()
        .iter()
        .map(|w| format!("{name}: {w}"))
        .collect();
    summary.error = error.map(|e| format!("{name}: {e}"));
    flows.sort_by(crate::flow::order);
    FileResult { summary, flows }
}

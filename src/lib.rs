//! allowscope: audit packet captures against the outbound allowlist a service needs.
//!
//! The rooms, in data-flow order (docs/ARCHITECTURE.md has the picture and the import rule that
//! `tests/architecture.rs` checks):
//! `capture` (files, stdin, pcap/pcapng, gzip/zstd; zero-copy frames; `capture::live`, behind
//! the `live` feature, an interface through libpcap) -> `decode` (link layers, tunnels, IP,
//! transport views) -> `flow` (the bidirectional flow table, TCP state, first-flight reassembly,
//! outcomes) -> `proto` (TLS, DNS, HTTP and CONNECT, QUIC facts, which each flow keeps:
//! `proto::Described`) -> `names` (DNS answers to
//! flows, host ties, local blocks) -> `pipeline` (one input read and analysed, split among
//! workers) -> `catalog` (the hosts a service needs) -> `audit` (verdicts, mechanisms, evidence,
//! coverage, the rules to add; `audit::ws` for websockets) -> `allowlist` (a firewall's
//! allowlist read and checked against the catalog, without a capture) -> `report` (text,
//! Markdown, JSON, NDJSON, the rules in each firewall's language) -> `cli` (arguments, commands,
//! exit codes; the `live` command around the live capture source). The ground floor: `text`,
//! `time`, `rng`, `vocab_macro` (the vocabularies' one declaration), `synth` (the bench's and the
//! tests' synthetic captures: behind the `synth` feature, not part of the API), `wire` (the
//! bounds-checked byte reads every header and message parser shares).

pub mod allowlist;
pub mod audit;
pub mod capture;
pub mod catalog;
pub mod cli;
pub mod decode;
pub mod flow;
pub mod names;
pub mod pipeline;
pub mod proto;
pub mod provenance;
pub mod report;
pub mod rng;
#[cfg(any(test, feature = "synth"))]
#[doc(hidden)]
pub mod synth;
pub mod text;
pub mod time;
mod vocab_macro;
pub mod wire;

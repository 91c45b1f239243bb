//! allowscope: audit packet captures against the outbound allowlist a service needs.
//!
//! Data flow (see `../shared/design.md` in the project workspace and README.md):
//! `capture` (files, stdin; zero-copy frames) -> `decode` (link, IP, L4 views) ->
//! `flow` (bidirectional flow table, TCP state, first-flight reassembly, outcomes) ->
//! `report` (table, JSON, NDJSON).

pub mod audit;
pub mod capture;
pub mod catalog;
pub mod cli;
pub mod decode;
pub mod flow;
#[cfg(feature = "live")]
pub mod live;
pub mod names;
pub mod pipeline;
pub mod proto;
pub mod report;
pub mod rng;
pub mod synth;
pub mod time;
pub mod ws;

/// The old path of [`pipeline`], kept for `src/audit/` (being split into files on another
/// branch); it goes when that branch uses `crate::pipeline`.
pub use pipeline as analyze;

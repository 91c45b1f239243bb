//! `audit --parquet DIR`: the audit as Parquet tables (zstd), for engines (DuckDB, Spark, Trino)
//! over many runs: `DIR/flows/part-NNNNN.parquet` and `DIR/dns/part-NNNNN.parquet` (one file
//! per input, written as its flows and lookups are judged, a row group every [`ROW_GROUP`]
//! rows, so memory stays flat), `DIR/findings.parquet` (the flow findings and the DNS
//! findings, `kind` telling them apart), `DIR/coverage.parquet` (one row per catalog entry,
//! input and verdict: the coverage matrix in long form) and `DIR/websockets.parquet`. Every row carries the run's `labels` (a MAP), every file the run's provenance
//! (key-value metadata `allowscope.provenance`, the JSON of the document's `provenance`, and
//! `allowscope.schema_version`). The column types are in the README ("Parquet").

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use crate::audit::{Audit, Judged};
use crate::proto::Described;
use crate::provenance::Provenance;

/// Rows buffered before they are written as a row group.
pub const ROW_GROUP: usize = 65_536;

/// The type of a column.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    I64,
    F64,
    Bool,
    /// Nanoseconds since 1970, UTC.
    Time,
    /// A list of strings (never null: empty when there are none).
    StrList,
}

/// A column: its name, type, whether it may be null.
type Spec = (&'static str, Kind, bool);

/// One column's buffered values and definition levels.
struct Col {
    spec: Spec,
    strs: Vec<ByteArray>,
    ints: Vec<i64>,
    floats: Vec<f64>,
    bools: Vec<bool>,
    defs: Vec<i16>,
    /// Repetition levels (lists only).
    reps: Vec<i16>,
}

/// A value for a column.
pub enum V<'a> {
    S(Option<&'a str>),
    I(Option<i64>),
    F(Option<f64>),
    B(Option<bool>),
    L(Vec<&'a str>),
}

/// One Parquet file being written: a table of the columns given, then `labels`.
struct Table {
    cols: Vec<Col>,
    label_keys: Vec<ByteArray>,
    label_values: Vec<ByteArray>,
    label_defs: Vec<i16>,
    label_reps: Vec<i16>,
    rows: usize,
    writer: SerializedFileWriter<std::fs::File>,
    path: PathBuf,
}

fn err(path: &Path, e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("{}: {e}", path.display()))
}

impl Table {
    fn create(path: &Path, specs: &[Spec], provenance: &Provenance) -> io::Result<Table> {
        let mut msg = String::from("message row {\n");
        for (name, kind, optional) in specs {
            let rep = if *optional { "OPTIONAL" } else { "REQUIRED" };
            if *kind == Kind::StrList {
                // The LIST layout every engine reads (the Parquet format's three levels).
                msg.push_str(&format!(
                    "  {rep} GROUP {name} (LIST) {{\n    REPEATED GROUP list {{\n      REQUIRED BYTE_ARRAY element (UTF8);\n    }}\n  }}\n"
                ));
                continue;
            }
            let ty = match kind {
                Kind::Str | Kind::StrList => "BYTE_ARRAY",
                Kind::I64 | Kind::Time => "INT64",
                Kind::F64 => "DOUBLE",
                Kind::Bool => "BOOLEAN",
            };
            let ann = match kind {
                Kind::Str => " (UTF8)",
                Kind::Time => " (TIMESTAMP(NANOS,true))",
                _ => "",
            };
            msg.push_str(&format!("  {rep} {ty} {name}{ann};\n"));
        }
        msg.push_str(
            "  REQUIRED GROUP labels (MAP) {\n    REPEATED GROUP key_value {\n      REQUIRED BYTE_ARRAY key (UTF8);\n      OPTIONAL BYTE_ARRAY value (UTF8);\n    }\n  }\n}\n",
        );
        let schema =
            Arc::new(parquet::schema::parser::parse_message_type(&msg).map_err(|e| err(path, e))?);
        let meta = vec![
            KeyValue::new(
                "allowscope.provenance".into(),
                serde_json::to_string(provenance).map_err(|e| err(path, e))?,
            ),
            KeyValue::new(
                "allowscope.schema_version".into(),
                crate::audit::SCHEMA_VERSION.to_string(),
            ),
        ];
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).map_err(|e| err(path, e))?,
            ))
            .set_key_value_metadata(Some(meta))
            .set_created_by(format!("allowscope {}", env!("CARGO_PKG_VERSION")))
            .build();
        let file = std::fs::File::create(path).map_err(|e| err(path, e))?;
        let writer =
            SerializedFileWriter::new(file, schema, Arc::new(props)).map_err(|e| err(path, e))?;
        Ok(Table {
            cols: specs
                .iter()
                .map(|s| Col {
                    spec: *s,
                    strs: Vec::new(),
                    ints: Vec::new(),
                    floats: Vec::new(),
                    bools: Vec::new(),
                    defs: Vec::new(),
                    reps: Vec::new(),
                })
                .collect(),
            label_keys: Vec::new(),
            label_values: Vec::new(),
            label_defs: Vec::new(),
            label_reps: Vec::new(),
            rows: 0,
            writer,
            path: path.to_path_buf(),
        })
    }

    /// Adds a row: one value per column, in the columns' order, and the labels.
    fn row(&mut self, values: &[V<'_>], labels: &BTreeMap<String, String>) -> io::Result<()> {
        debug_assert_eq!(values.len(), self.cols.len());
        for (c, v) in self.cols.iter_mut().zip(values) {
            if let V::L(items) = v {
                debug_assert!(c.spec.1 == Kind::StrList && !c.spec.2);
                if items.is_empty() {
                    c.defs.push(0);
                    c.reps.push(0);
                }
                for (i, s) in items.iter().enumerate() {
                    c.strs.push(ByteArray::from(s.as_bytes().to_vec()));
                    c.defs.push(1);
                    c.reps.push(i16::from(i > 0));
                }
                continue;
            }
            let present = match v {
                V::S(Some(s)) => {
                    c.strs.push(ByteArray::from(s.as_bytes().to_vec()));
                    true
                }
                V::I(Some(i)) => {
                    c.ints.push(*i);
                    true
                }
                V::F(Some(f)) => {
                    c.floats.push(*f);
                    true
                }
                V::B(Some(b)) => {
                    c.bools.push(*b);
                    true
                }
                _ => false,
            };
            debug_assert!(present || c.spec.2, "{} is required", c.spec.0);
            c.defs.push(i16::from(present));
        }
        if labels.is_empty() {
            self.label_defs.push(0);
            self.label_reps.push(0);
        }
        for (i, (k, v)) in labels.iter().enumerate() {
            self.label_keys.push(ByteArray::from(k.as_bytes().to_vec()));
            self.label_values
                .push(ByteArray::from(v.as_bytes().to_vec()));
            self.label_defs.push(1);
            self.label_reps.push(i16::from(i > 0));
        }
        self.rows += 1;
        if self.rows >= ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered rows as a row group.
    fn flush(&mut self) -> io::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |x: parquet::errors::ParquetError| err(&path, x);
        let mut rg = self.writer.next_row_group().map_err(e)?;
        let mut at = 0;
        while let Some(mut col) = rg.next_column().map_err(e)? {
            if let Some(c) = self.cols.get_mut(at) {
                let defs = c.spec.2.then_some(&c.defs[..]);
                match c.spec.1 {
                    Kind::StrList => col
                        .typed::<ByteArrayType>()
                        .write_batch(&c.strs, Some(&c.defs), Some(&c.reps))
                        .map(drop),
                    Kind::Str => col
                        .typed::<ByteArrayType>()
                        .write_batch(&c.strs, defs, None)
                        .map(drop),
                    Kind::I64 | Kind::Time => col
                        .typed::<Int64Type>()
                        .write_batch(&c.ints, defs, None)
                        .map(drop),
                    Kind::F64 => col
                        .typed::<DoubleType>()
                        .write_batch(&c.floats, defs, None)
                        .map(drop),
                    Kind::Bool => col
                        .typed::<BoolType>()
                        .write_batch(&c.bools, defs, None)
                        .map(drop),
                }
                .map_err(e)?;
                c.strs.clear();
                c.ints.clear();
                c.floats.clear();
                c.bools.clear();
                c.defs.clear();
                c.reps.clear();
            } else {
                // The labels: key, then value (a value is there whenever its key is).
                let (vals, defs): (&[ByteArray], Vec<i16>) = if at == self.cols.len() {
                    (&self.label_keys, self.label_defs.clone())
                } else {
                    (
                        &self.label_values,
                        self.label_defs.iter().map(|d| d * 2).collect(),
                    )
                };
                col.typed::<ByteArrayType>()
                    .write_batch(vals, Some(&defs), Some(&self.label_reps))
                    .map_err(e)?;
            }
            col.close().map_err(e)?;
            at += 1;
        }
        rg.close().map_err(e)?;
        self.label_keys.clear();
        self.label_values.clear();
        self.label_defs.clear();
        self.label_reps.clear();
        self.rows = 0;
        Ok(())
    }

    fn close(mut self) -> io::Result<()> {
        self.flush()?;
        let path = self.path.clone();
        self.writer.close().map_err(|e| err(&path, e))?;
        Ok(())
    }
}

const FLOW_COLUMNS: &[Spec] = &[
    ("file", Kind::Str, false),
    ("proto", Kind::Str, false),
    ("src_ip", Kind::Str, false),
    ("src_port", Kind::I64, false),
    ("dst_ip", Kind::Str, false),
    ("dst_port", Kind::I64, false),
    ("target_port", Kind::I64, false),
    ("first_seen", Kind::Time, false),
    ("last_seen", Kind::Time, false),
    ("duration_s", Kind::F64, false),
    ("packets_from_client", Kind::I64, false),
    ("packets_from_server", Kind::I64, false),
    ("bytes_from_client", Kind::I64, false),
    ("bytes_from_server", Kind::I64, false),
    ("payload_bytes_from_client", Kind::I64, false),
    ("payload_bytes_from_server", Kind::I64, false),
    ("history", Kind::Str, false),
    ("outcome", Kind::Str, false),
    ("attempts", Kind::I64, false),
    ("evicted", Kind::Bool, false),
    ("name", Kind::Str, true),
    ("name_source", Kind::Str, true),
    ("sni", Kind::Str, true),
    ("http_host", Kind::Str, true),
    ("http_status", Kind::I64, true),
    ("connect_target", Kind::Str, true),
    ("quic_version", Kind::Str, true),
    ("verdict", Kind::Str, false),
    ("mechanism", Kind::Str, true),
    ("confidence", Kind::Str, true),
    ("evidence", Kind::Str, false),
    ("entry_id", Kind::Str, true),
];

const LOOKUP_COLUMNS: &[Spec] = &[
    ("file", Kind::Str, false),
    ("time", Kind::Time, false),
    ("client", Kind::Str, false),
    ("server", Kind::Str, false),
    ("transport", Kind::Str, false),
    ("id", Kind::I64, false),
    ("qname", Kind::Str, true),
    ("qtype", Kind::Str, true),
    ("answered", Kind::Bool, false),
    ("query_seen", Kind::Bool, false),
    ("rcode", Kind::Str, true),
    ("cnames", Kind::Str, false),
    ("addresses", Kind::Str, false),
    ("nodata", Kind::Bool, false),
    ("sinkhole", Kind::Bool, false),
    ("privatelink", Kind::Bool, false),
    ("truncated", Kind::Bool, false),
    ("malformed", Kind::Str, true),
    ("rtt_s", Kind::F64, true),
];

/// The flows and DNS lookups tables of one input, written as they are judged.
pub struct FlowParquet {
    table: Table,
    lookups: Table,
    file: String,
    labels: BTreeMap<String, String>,
}

impl FlowParquet {
    /// `DIR/flows/part-NNNNN.parquet` and `DIR/dns/part-NNNNN.parquet` for input number
    /// `input` (named `file`).
    pub fn create(
        dir: &Path,
        input: usize,
        file: &str,
        provenance: &Provenance,
    ) -> io::Result<FlowParquet> {
        let path = |table: &str| -> io::Result<PathBuf> {
            let d = dir.join(table);
            std::fs::create_dir_all(&d).map_err(|e| err(&d, e))?;
            Ok(d.join(format!("part-{input:05}.parquet")))
        };
        Ok(FlowParquet {
            table: Table::create(&path("flows")?, FLOW_COLUMNS, provenance)?,
            lookups: Table::create(&path("dns")?, LOOKUP_COLUMNS, provenance)?,
            file: file.to_string(),
            labels: provenance.labels.clone(),
        })
    }

    /// Adds judged flows (in flow order).
    pub fn flows(&mut self, flows: &[Box<Described>], judged: &[Judged]) -> io::Result<()> {
        for (f, j) in flows.iter().zip(judged) {
            let r = super::FlowRecord::new(f, &self.file);
            let quic = f
                .facts
                .quic
                .as_ref()
                .map(|q| crate::proto::quic::version_name(q.version));
            let name_source = f.facts.name_source.map(super::name_source_str);
            let [c, s] = &f.dirs;
            self.table.row(
                &[
                    V::S(Some(&self.file)),
                    V::S(Some(f.proto.name())),
                    V::S(Some(&r.src_ip)),
                    V::I(Some(f.client.port.into())),
                    V::S(Some(&r.dst_ip)),
                    V::I(Some(f.server.port.into())),
                    V::I(Some(crate::audit::target_port(f).into())),
                    V::I(Some(f.first_ns)),
                    V::I(Some(f.last_ns)),
                    V::F(Some(r.duration_s)),
                    V::I(Some(c.packets as i64)),
                    V::I(Some(s.packets as i64)),
                    V::I(Some(c.bytes as i64)),
                    V::I(Some(s.bytes as i64)),
                    V::I(Some(c.payload_bytes as i64)),
                    V::I(Some(s.payload_bytes as i64)),
                    V::S(Some(f.history.as_str())),
                    V::S(Some(f.outcome().name())),
                    V::I(Some(f.attempts() as i64)),
                    V::B(Some(f.evicted)),
                    V::S(f.facts.name.as_deref()),
                    V::S(name_source),
                    V::S(r.sni),
                    V::S(r.http_host),
                    V::I(r.http_status.map(i64::from)),
                    V::S(r.connect_target.as_deref()),
                    V::S(quic.as_deref()),
                    V::S(Some(j.verdict.name())),
                    V::S(j.mechanism.map(|m| m.name())),
                    V::S(j.confidence.map(|c| c.name())),
                    V::S(Some(&j.evidence)),
                    V::S(j.entry_id.as_deref()),
                ],
                &self.labels,
            )?;
        }
        Ok(())
    }

    /// Adds a DNS lookup.
    pub fn lookup(&mut self, l: &crate::names::lookups::Lookup<'_>) -> io::Result<()> {
        let addresses: Vec<String> = l.addresses.iter().map(|a| a.to_string()).collect();
        self.lookups.row(
            &[
                V::S(Some(l.file)),
                V::I(Some(l.first_ns)),
                V::S(Some(&l.client)),
                V::S(Some(&l.server)),
                V::S(Some(l.transport)),
                V::I(Some(l.id.into())),
                V::S(l.qname),
                V::S(l.qtype.as_deref()),
                V::B(Some(l.answered)),
                V::B(Some(l.query_seen)),
                V::S(l.rcode),
                V::S(Some(&l.cnames.join(" > "))),
                V::S(Some(&addresses.join(", "))),
                V::B(Some(l.nodata)),
                V::B(Some(l.sinkhole)),
                V::B(Some(l.privatelink)),
                V::B(Some(l.truncated)),
                V::S(l.malformed),
                V::F(l.rtt_s),
            ],
            &self.labels,
        )
    }

    pub fn close(self) -> io::Result<()> {
        self.table.close()?;
        self.lookups.close()
    }
}

const FINDING_COLUMNS: &[Spec] = &[
    ("kind", Kind::Str, false),
    ("verdict", Kind::Str, false),
    ("mechanism", Kind::Str, true),
    ("confidence", Kind::Str, true),
    ("name", Kind::Str, false),
    ("proto", Kind::Str, false),
    ("dst_port", Kind::I64, true),
    ("entry_id", Kind::Str, true),
    ("requirement", Kind::Str, true),
    ("scenario", Kind::Str, true),
    ("flows", Kind::I64, false),
    ("lookups", Kind::I64, false),
    ("first_seen", Kind::Time, true),
    ("evidence", Kind::Str, false),
    ("files", Kind::StrList, false),
    ("dst_ips", Kind::StrList, false),
    ("name_guessed", Kind::Bool, false),
    ("worst_outcome", Kind::Str, true),
    ("best_outcome", Kind::Str, true),
];

const COVERAGE_COLUMNS: &[Spec] = &[
    ("entry_id", Kind::Str, false),
    ("pattern", Kind::Str, false),
    ("requirement", Kind::Str, false),
    ("scenario", Kind::Str, false),
    ("cloud", Kind::Str, false),
    ("exercised", Kind::Bool, false),
    ("credited_via", Kind::Str, true),
    ("file", Kind::Str, true),
    ("verdict", Kind::Str, true),
    ("count", Kind::I64, false),
];

const WS_COLUMNS: &[Spec] = &[
    ("name", Kind::Str, false),
    ("client", Kind::Str, false),
    ("server", Kind::Str, false),
    ("leg", Kind::Str, false),
    ("transport", Kind::Str, false),
    ("connect_status", Kind::I64, true),
    ("upgrade_status", Kind::I64, true),
    ("answered_by", Kind::Str, true),
    ("upgrade_dropped", Kind::Bool, false),
    ("outcome", Kind::Str, false),
    ("start", Kind::Time, true),
    ("duration_s", Kind::F64, false),
    ("bytes_from_client", Kind::I64, false),
    ("bytes_from_server", Kind::I64, false),
    ("idle_before_end_s", Kind::F64, true),
    ("ended_by", Kind::Str, true),
    ("rst_from_middlebox", Kind::Str, true),
    ("diagnosis", Kind::Str, false),
    ("timer", Kind::Str, true),
    ("evidence", Kind::Str, true),
    ("file", Kind::Str, false),
];

/// Writes `DIR/findings.parquet`, `DIR/coverage.parquet` and `DIR/websockets.parquet` of the
/// audit.
pub fn write_tables(dir: &Path, audit: &Audit, provenance: &Provenance) -> io::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let labels = &provenance.labels;
    let mut t = Table::create(&dir.join("findings.parquet"), FINDING_COLUMNS, provenance)?;
    let flow = audit.findings.iter().map(|f| ("flow", f));
    let dns = audit.dns_failures.iter().map(|f| ("dns", f));
    for (kind, f) in flow.chain(dns) {
        let e = f.entry.as_ref();
        // A run's findings have their time; i64::MAX is a merged document's unreadable one.
        let first = (f.first_ns != i64::MAX).then_some(f.first_ns);
        t.row(
            &[
                V::S(Some(kind)),
                V::S(Some(f.verdict.name())),
                V::S(f.mechanism.map(|m| m.name())),
                V::S(f.confidence.map(|c| c.name())),
                V::S(Some(&f.name)),
                V::S(Some(&f.proto)),
                V::I(f.dst_port.map(i64::from)),
                V::S(e.map(|e| e.id.as_str())),
                V::S(e.map(|e| &*e.requirement)),
                V::S(e.map(|e| e.scenario.as_str())),
                V::I(Some(f.flows as i64)),
                V::I(Some(f.lookups as i64)),
                V::I(first),
                V::S(Some(&f.evidence)),
                V::L(f.files.iter().map(String::as_str).collect()),
                V::L(f.dst_ips.iter().map(String::as_str).collect()),
                V::B(Some(f.name_guessed)),
                V::S(f.worst_outcome.map(|o| o.name())),
                V::S(f.best_outcome.map(|o| o.name())),
            ],
            labels,
        )?;
    }
    t.close()?;
    let mut t = Table::create(&dir.join("coverage.parquet"), COVERAGE_COLUMNS, provenance)?;
    for c in &audit.coverage {
        fn head<'a>(
            c: &'a crate::audit::Coverage,
            file: Option<&'a str>,
            verdict: Option<&'a str>,
            n: u64,
        ) -> [V<'a>; 10] {
            let e = &c.entry;
            [
                V::S(Some(e.id.as_str())),
                V::S(Some(e.pattern.as_str())),
                V::S(Some(&*e.requirement)),
                V::S(Some(e.scenario.as_str())),
                V::S(Some(&*e.cloud)),
                V::B(Some(c.exercised)),
                V::S(c.credited_via.as_deref()),
                V::S(file),
                V::S(verdict),
                V::I(Some(n as i64)),
            ]
        }
        if c.by_file.is_empty() {
            t.row(&head(c, None, None, 0), labels)?;
        }
        for (file, counts) in &c.by_file {
            for (verdict, n) in counts {
                t.row(&head(c, Some(file), Some(verdict), *n), labels)?;
            }
        }
    }
    t.close()?;
    let mut t = Table::create(&dir.join("websockets.parquet"), WS_COLUMNS, provenance)?;
    for w in &audit.websockets.connections {
        t.row(
            &[
                V::S(Some(&w.name)),
                V::S(Some(&w.client)),
                V::S(Some(&w.server)),
                V::S(Some(&w.leg)),
                V::S(Some(&w.transport)),
                V::I(w.connect_status.map(i64::from)),
                V::I(w.upgrade_status.map(i64::from)),
                V::S(w.answered_by.as_deref()),
                V::B(Some(w.upgrade_dropped)),
                V::S(Some(&w.outcome)),
                V::I(crate::time::parse_rfc3339(&w.start)),
                V::F(Some(w.duration_s)),
                V::I(Some(w.bytes_from_client as i64)),
                V::I(Some(w.bytes_from_server as i64)),
                V::F(w.idle_before_end_s),
                V::S(w.ended_by.as_deref()),
                V::S(w.rst_from_middlebox.as_deref()),
                V::S(Some(w.diagnosis.name())),
                V::S(w.timer.as_deref()),
                V::S(w.evidence.as_deref()),
                V::S(Some(&w.file)),
            ],
            labels,
        )?;
    }
    t.close()
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};

    /// More rows than a row group holds, labels or none: every row is read back, in row
    /// groups of [`ROW_GROUP`], with the provenance in the file's metadata.
    #[test]
    fn rows_past_a_row_group_read_back() {
        let path =
            std::env::temp_dir().join(format!("allowscope-pq-{}.parquet", std::process::id()));
        let specs: &[Spec] = &[
            ("s", Kind::Str, true),
            ("i", Kind::I64, false),
            ("f", Kind::F64, true),
            ("b", Kind::Bool, false),
            ("t", Kind::Time, true),
            ("l", Kind::StrList, false),
        ];
        let p = Provenance::of_run(
            "audit",
            None,
            crate::provenance::Options::of(&crate::flow::FlowConfig::default()),
            &BTreeMap::new(),
        );
        let mut t = Table::create(&path, specs, &p).unwrap();
        let two: BTreeMap<String, String> =
            [("host".into(), "a".into()), ("site".into(), "eu".into())].into();
        let none = BTreeMap::new();
        let n = ROW_GROUP + 10;
        for i in 0..n {
            let s = i.to_string();
            t.row(
                &[
                    V::S((i % 3 == 0).then_some(s.as_str())),
                    V::I(Some(i as i64)),
                    V::F((i % 2 == 0).then_some(i as f64)),
                    V::B(Some(i % 5 == 0)),
                    V::I((i % 7 == 0).then_some(i as i64)),
                    // None, one, or two items, one with a comma (a list, not a joined string).
                    V::L(["x,y", "z"][..i % 3].to_vec()),
                ],
                if i % 2 == 0 { &two } else { &none },
            )
            .unwrap();
        }
        t.close().unwrap();
        let r = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let meta = r.metadata();
        assert_eq!(meta.file_metadata().num_rows(), n as i64);
        assert_eq!(meta.num_row_groups(), 2);
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        assert!(kv.iter().any(|k| k.key == "allowscope.provenance"
            && k.value
                .as_deref()
                .is_some_and(|v| v.contains("\"command\":\"audit\""))));
        let rows: Vec<_> = r.get_row_iter(None).unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), n);
        let last = rows[n - 1].to_string();
        assert!(last.contains("i: 65545"), "{last}");
        let first = rows[0].to_string();
        assert!(first.contains("host") && first.contains("eu"), "{first}");
        assert!(first.contains("l: []"), "{first}");
        let third = rows[2].to_string();
        assert!(third.contains(r#"l: ["x,y", "z"]"#), "{third}");
        let _ = std::fs::remove_file(&path);
    }
}

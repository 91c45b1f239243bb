//! `allowscope flows` and `allowscope dns`: every flow, or every DNS lookup, of the inputs.

use std::io::{self, Write};

use super::inputs::{name_by_tags, progress_wanted, read_inputs, read_inputs_into};
use super::{exit_code, written, Error, Exit, FlowsArgs};
use crate::report::{escape_terminal, write_flows, FlowsFormat};

/// Which list `flows` writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    Flows,
    Dns,
}

/// What produced a `flows` or `dns` output (no catalog).
fn provenance(args: &FlowsArgs, view: View) -> crate::provenance::Provenance {
    let mut options = crate::provenance::Options::of(&args.table.config());
    options.service_tags = args
        .tags
        .service_tags
        .as_ref()
        .map(|p| p.display().to_string());
    crate::provenance::Provenance::of_run(
        match view {
            View::Flows => "flows",
            View::Dns => "dns",
        },
        None,
        options,
        &crate::provenance::labels(&args.table.labels),
    )
}

pub(super) fn flows(args: &FlowsArgs, view: View) -> Result<Exit, Error> {
    let tags = args.tags.load()?;
    let streamed = match view {
        View::Flows => args.format == FlowsFormat::Ndjson,
        View::Dns => args.format != FlowsFormat::Json,
    };
    if streamed {
        return rows(args, view, tags.as_ref());
    }
    let read = read_inputs(&args.inputs, &args.table, progress_wanted(args.quiet));
    read.some_read()?;
    let failed = read.any_failed();
    let (mut results, notes) = (read.results, read.notes);
    name_by_tags(&mut results, tags.as_ref());
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut err = io::stderr();
    for n in &notes {
        let _ = writeln!(err, "{n}");
    }
    let mut sink: Box<dyn Write> = if args.quiet {
        Box::new(io::sink())
    } else {
        Box::new(io::stderr())
    };
    written(match view {
        View::Flows => write_flows(
            &mut out,
            &mut sink,
            &results,
            args.format,
            &provenance(args, view),
        ),
        View::Dns => {
            let p = provenance(args, view);
            crate::report::dns::write_dns(&mut out, &results, args.format, &p).and_then(|_| {
                if args.format != FlowsFormat::Json {
                    crate::report::write_summaries(&mut sink, &results)?;
                }
                Ok(())
            })
        }
    })?;
    // The summaries (which carry the errors) went to stderr unless --quiet or JSON: errors
    // still reach stderr then.
    if args.format == FlowsFormat::Json || args.quiet {
        for e in results.iter().filter_map(|r| r.summary.error.as_ref()) {
            let _ = writeln!(err, "error: {}", escape_terminal(e));
        }
    }
    // The process ends here: freeing every flow one by one would only cost time.
    std::mem::forget(results);
    Ok(exit_code(failed, false))
}

/// Where rows go as they come: stdout, and the first error writing it (after which nothing
/// more is written, and the command ends as a failed write would).
struct Out {
    w: io::BufWriter<io::Stdout>,
    failed: Option<io::Error>,
}

impl Out {
    fn write(&mut self, row: impl FnOnce(&mut dyn Write) -> io::Result<()>) {
        if self.failed.is_none() {
            if let Err(e) = row(&mut self.w) {
                self.failed = Some(e);
            }
        }
    }
}

/// One input's rows, written as its flows finish (NDJSON of flows: epoch by epoch, in
/// first-seen order within one) or as its lookups complete (put back in the order they
/// began: the same rows, in the same order, as when the input is read whole).
struct Rows<'a> {
    out: &'a std::sync::Mutex<Out>,
    file: String,
    view: View,
    format: FlowsFormat,
    tags: Option<&'a crate::names::TagRanges>,
    lookups: crate::names::lookups::InOrder,
    gave_up: u64,
    /// The run's `--label`s, on every row.
    labels: &'a std::collections::BTreeMap<String, String>,
}

impl Rows<'_> {
    fn lookups(&self, all: Vec<crate::names::lookups::Joined>) {
        if all.is_empty() {
            return;
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write(|w| {
            for (q, r) in &all {
                let l = crate::names::lookups::lookup(q.as_ref(), r.as_ref(), &self.file);
                crate::report::dns::write_lookup(w, &l, self.format, self.labels)?;
            }
            Ok(())
        });
    }
}

impl crate::pipeline::FlowSink for Rows<'_> {
    fn dns(&mut self, messages: Vec<crate::pipeline::DnsEvent>) {
        if self.view != View::Dns {
            return;
        }
        let mut done = Vec::new();
        for m in messages {
            self.lookups.push(m, &mut |l| done.push(l));
        }
        self.lookups(done);
    }

    fn flows(&mut self, mut flows: Vec<Box<crate::proto::Described>>) {
        if self.view != View::Flows {
            return;
        }
        if let Some(t) = self.tags {
            crate::names::name_from_tags(&mut flows, t);
        }
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        out.write(|w| {
            for f in &flows {
                crate::report::pretty::to_writer_compact(
                    &mut *w,
                    &crate::report::Labelled {
                        row: crate::report::FlowRecord::new(f, &self.file),
                        labels: self.labels,
                    },
                )?;
                w.write_all(b"\n")?;
            }
            Ok(())
        });
    }

    fn end(&mut self) {
        let mut done = Vec::new();
        self.gave_up = std::mem::take(&mut self.lookups).finish(&mut |l| done.push(l));
        self.lookups(done);
    }
}

/// `flows --format ndjson` and `dns` (but JSON): the rows written as the inputs are read, one
/// input after another (each split among the threads), in memory bounded by the flows alive
/// at once rather than by the input.
fn rows(
    args: &FlowsArgs,
    view: View,
    tags: Option<&crate::names::TagRanges>,
) -> Result<Exit, Error> {
    let out = std::sync::Mutex::new(Out {
        w: io::BufWriter::with_capacity(1 << 16, io::stdout()),
        failed: None,
    });
    let labels = crate::provenance::labels(&args.table.labels);
    let (read, sinks) = read_inputs_into(
        &args.inputs,
        &args.table,
        progress_wanted(args.quiet),
        true,
        |_, input| {
            Some(Rows {
                out: &out,
                file: input.display(),
                view,
                format: args.format,
                tags,
                lookups: Default::default(),
                gave_up: 0,
                labels: &labels,
            })
        },
    );
    let gave_up: Vec<u64> = sinks
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.gave_up))
        .collect();
    drop(sinks);
    read.some_read()?;
    let failed = read.any_failed();
    let (mut results, notes) = (read.results, read.notes);
    for (r, n) in results.iter_mut().zip(gave_up) {
        if n > 0 {
            r.summary
                .warnings
                .push(crate::names::lookups::gave_up_warning(&r.summary.file, n));
        }
    }
    let Out {
        mut w,
        failed: write_failed,
    } = out.into_inner().unwrap_or_else(|e| e.into_inner());
    written(match write_failed {
        Some(e) => Err(e),
        None => w.flush(),
    })?;
    let mut err = io::stderr();
    for n in &notes {
        let _ = writeln!(err, "{n}");
    }
    if args.quiet {
        for e in results.iter().filter_map(|r| r.summary.error.as_ref()) {
            let _ = writeln!(err, "error: {}", escape_terminal(e));
        }
    } else {
        let _ = crate::report::write_summaries(&mut err, &results);
    }
    Ok(exit_code(failed, false))
}

//! Reading the inputs of a command: in parallel on the `--threads` pool, with progress on a
//! terminal, the catalog loaded first.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use rayon::prelude::*;

use super::{Error, TableArgs};
use crate::capture::{expand_inputs, Input};
use crate::pipeline::{analyze_input_into, FileResult, FlowSink};
use crate::report::audit::FailedInput;
use crate::report::escape_terminal;

/// Names the flows of `results` known only by address by their service tags (see
/// [`crate::names::name_from_tags`]).
pub fn name_by_tags(results: &mut [FileResult], tags: Option<&crate::catalog::TagRanges>) {
    if let Some(t) = tags {
        for r in results {
            crate::names::name_from_tags(&mut r.flows, t);
        }
    }
}

/// The inputs of a command, read: the results in input order, notes on skipped files and
/// unlisted inputs, and every input that failed.
pub struct ReadInputs {
    pub results: Vec<FileResult>,
    /// `note: skipped ...` and `error: ...` lines about inputs that could not even be listed.
    pub notes: Vec<String>,
    /// Inputs that could not be listed, opened or read to their end (in that order).
    pub failed: Vec<FailedInput>,
    /// The command-line inputs, to name them when no capture was found among them.
    named: Vec<PathBuf>,
    /// How many files under directories were skipped (not captures, unreadable).
    skipped: usize,
}

impl ReadInputs {
    /// Whether an input failed (exit 2).
    pub fn any_failed(&self) -> bool {
        !self.failed.is_empty()
    }

    /// Exit 2 when no capture was read at all: no capture file among the inputs (an empty
    /// directory, one without captures), or every input failed before its first packet. The
    /// notes and the inputs' errors are printed first; the error says which case it was.
    pub fn some_read(&self) -> Result<(), Error> {
        let read = |r: &FileResult| r.summary.error.is_none() || r.summary.packets > 0;
        if self.results.iter().any(read) {
            return Ok(());
        }
        let mut err = std::io::stderr().lock();
        for n in &self.notes {
            let _ = writeln!(err, "{n}");
        }
        for e in self.results.iter().filter_map(|r| r.summary.error.as_ref()) {
            let _ = writeln!(err, "error: {}", escape_terminal(e));
        }
        let why = if !self.failed.is_empty() {
            match self.failed.len() {
                1 => "the input failed (see above)".to_string(),
                n => format!("all {n} inputs failed (see above)"),
            }
        } else {
            let named: Vec<String> = self
                .named
                .iter()
                .map(|p| escape_terminal(&p.display().to_string()).into_owned())
                .collect();
            let skipped = match self.skipped {
                0 => String::new(),
                1 => "; 1 file skipped (see the note above)".to_string(),
                n => format!("; {n} files skipped (see the notes above)"),
            };
            format!(
                "no capture file (pcap or pcapng, plain, gzip or zstd) in {}{skipped}",
                named.join(", ")
            )
        };
        Err(Error::Message(format!("no capture was read: {why}")))
    }
}

/// Reads every input (in parallel, one file per worker; with fewer inputs than threads, each
/// input split among its share of them) and returns the results in input order, with notes
/// about inputs that could not even be listed and the inputs that failed.
pub fn read_inputs(inputs: &[PathBuf], table: &TableArgs, progress: bool) -> ReadInputs {
    read_inputs_into(inputs, table, progress, false, |_, _| None::<NoSink>).0
}

/// No sink: every flow stays in the result.
pub enum NoSink {}

impl FlowSink for NoSink {
    fn dns(&mut self, _: Vec<crate::pipeline::DnsEvent>) {
        match *self {}
    }
    fn flows(&mut self, _: Vec<Box<crate::proto::Described>>) {
        match *self {}
    }
}

/// [`read_inputs`], handing each input's flows to the sink `make` gives for it (its index
/// among the results, and the input) as they finish; returns the sinks too, in input order.
/// `sequential`: one input after another, each split among all the threads (for sinks that
/// write in input order as they go).
pub fn read_inputs_into<F: FlowSink>(
    inputs: &[PathBuf],
    table: &TableArgs,
    progress: bool,
    sequential: bool,
    make: impl Fn(usize, &Input) -> Option<F> + Sync,
) -> (ReadInputs, Vec<Option<F>>) {
    let (cfg, threads) = (&table.config(), table.threads);
    let (list, skipped, missing) = expand_inputs(inputs);
    let mut notes = Vec::new();
    for (p, why) in &skipped {
        let p = p.display().to_string();
        notes.push(format!("note: skipped {}: {why}", escape_terminal(&p)));
    }
    let mut failed = Vec::new();
    for (p, why) in &missing {
        let p = p.display().to_string();
        notes.push(format!("error: {}: {why}", escape_terminal(&p)));
        failed.push(FailedInput {
            error: format!("{p}: {why}"),
            file: p,
        });
    }
    let done = AtomicUsize::new(0);
    let per_input = workers_per_input(threads, if sequential { 1 } else { list.len() });
    let one = |(k, i): (usize, &Input)| {
        let mut sink = make(k, i);
        let r = analyze_input_into(
            i,
            cfg,
            per_input,
            table.mmap,
            sink.as_mut().map(|s| s as &mut dyn FlowSink),
        );
        done.fetch_add(1, Relaxed);
        (r, sink)
    };
    let run = || -> (Vec<FileResult>, Vec<Option<F>>) {
        if sequential {
            list.iter().enumerate().map(one).unzip()
        } else {
            list.par_iter().enumerate().map(one).unzip()
        }
    };
    let finished = AtomicBool::new(false);
    // Results come back in input order whatever the number of threads.
    let (results, sinks) = std::thread::scope(|scope| {
        if progress {
            scope.spawn(|| show_progress(&list, &done, &finished));
        }
        let r = with_threads(threads, run);
        finished.store(true, Relaxed);
        r
    });
    failed.extend(FailedInput::of(&results));
    let labels = crate::provenance::labels(&table.labels);
    let mut results = results;
    for r in &mut results {
        r.summary.labels.clone_from(&labels);
    }
    (
        ReadInputs {
            results,
            notes,
            failed,
            named: inputs.to_vec(),
            skipped: skipped.len(),
        },
        sinks,
    )
}

/// Runs `f` on a pool of `threads` threads (`--threads`), or on the current pool when that is
/// its size already or no number was given.
pub(super) fn with_threads<R: Send>(threads: Option<u16>, f: impl FnOnce() -> R + Send) -> R {
    match threads {
        Some(n) if n as usize != rayon::current_num_threads() => {
            match rayon::ThreadPoolBuilder::new()
                .num_threads(n as usize)
                .build()
            {
                Ok(pool) => pool.install(f),
                Err(_) => f(),
            }
        }
        _ => f(),
    }
}

/// Worker threads for each input: 1 when there are at least as many inputs as threads (the
/// inputs run side by side), else the threads divided among the inputs.
fn workers_per_input(threads: Option<u16>, inputs: usize) -> usize {
    let threads = threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        usize::from,
    );
    (threads / inputs.max(1)).clamp(1, crate::pipeline::MAX_WORKERS)
}

/// The total size of the inputs when it is known: every input a plain (not compressed) file,
/// whose bytes are the bytes the readers count.
fn known_size(list: &[Input]) -> Option<u64> {
    let mut total = 0u64;
    for i in list {
        let Input::File(p) = i else { return None };
        // Only a regular file: opening a FIFO would block, and reading it would take bytes.
        if !std::fs::metadata(p).ok()?.is_file() {
            return None;
        }
        let mut f = std::fs::File::open(p).ok()?;
        let mut head = [0u8; 4];
        let n = crate::capture::read_prefix(&mut f, &mut head).ok()?;
        let plain = crate::capture::compression_of(head.get(..n).unwrap_or(&[]))
            == crate::capture::Compression::None;
        if !plain {
            return None;
        }
        total = total.saturating_add(f.metadata().ok()?.len());
    }
    Some(total)
}

/// Progress on stderr (only called when it is a terminal), from the first second on: a bar
/// with the percent and the time left when the inputs' size is known (plain files), else a
/// spinner; bytes read, rate and inputs done either way. Cleared at the end.
fn show_progress(list: &[Input], done: &AtomicUsize, finished: &AtomicBool) {
    let start = std::time::Instant::now();
    let base = crate::pipeline::BYTES_READ.load(Relaxed);
    let ms = |var: &str, default: u64| {
        let v = std::env::var(var).ok().and_then(|v| v.parse().ok());
        std::time::Duration::from_millis(v.unwrap_or(default))
    };
    // A tenth of a second, after a second by default; the tests show it at once and redraw it
    // more often (a run of a second needs a large input, and a release build reads their
    // input within one tenth).
    let tick = ms("ALLOWSCOPE_PROGRESS_TICK_MS", 100);
    let delay = ms("ALLOWSCOPE_PROGRESS_DELAY_MS", 1000);
    while start.elapsed() < delay {
        if finished.load(Relaxed) {
            return;
        }
        std::thread::sleep(tick);
    }
    let total = known_size(list);
    let template = match total {
        Some(_) => {
            "{elapsed_precise} [{wide_bar}] {percent:>3}% {bytes}/{total_bytes} {bytes_per_sec} {msg}, {eta} left"
        }
        None => "{spinner} {elapsed_precise} {bytes} read, {bytes_per_sec} {msg}",
    };
    let style = indicatif::ProgressStyle::with_template(template)
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner())
        .progress_chars("=> ");
    let bar =
        indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr())
            .with_style(style)
            .with_elapsed(start.elapsed())
            .with_message(format!("0/{} inputs", list.len()));
    let inputs = list.len();
    while !finished.load(Relaxed) {
        let read = crate::pipeline::BYTES_READ
            .load(Relaxed)
            .saturating_sub(base);
        // A reader counts bytes as it goes: never past the whole while inputs remain.
        bar.set_position(total.map_or(read, |t| read.min(t)));
        bar.set_message(format!("{}/{inputs} inputs", done.load(Relaxed)));
        bar.tick();
        std::thread::sleep(tick);
    }
    bar.finish_and_clear();
}

/// Whether to show progress: stderr is a terminal and the user did not ask for quiet.
pub(super) fn progress_wanted(quiet: bool) -> bool {
    !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// Loads the catalog (a bad one is exit 2 with its error) and reads the inputs (none read at
/// all is exit 2 too: [`ReadInputs::some_read`]).
pub(super) fn catalog_and_inputs(
    opts: &crate::catalog::CatalogOptions,
    inputs: &[PathBuf],
    table: &TableArgs,
    quiet: bool,
) -> Result<(crate::catalog::Catalog, ReadInputs), Error> {
    let catalog = load_catalog(opts)?;
    let read = read_inputs(inputs, table, progress_wanted(quiet));
    read.some_read()?;
    Ok((catalog, read))
}

/// The catalog `opts` name (its error escapes its own wire text already).
pub(super) fn load_catalog(
    opts: &crate::catalog::CatalogOptions,
) -> Result<crate::catalog::Catalog, Error> {
    opts.load().map_err(|e| Error::Message(e.to_string()))
}

#[cfg(test)]
mod tests {
    /// `--threads N` gives the work (reading and the audit after it) a pool of N threads,
    /// whatever the size of the global one.
    #[test]
    fn with_threads_runs_on_a_pool_of_that_size() {
        for n in [1u16, 3, 5] {
            let inner = super::with_threads(Some(n), rayon::current_num_threads);
            assert_eq!(inner, n as usize);
        }
        let global = rayon::current_num_threads();
        assert_eq!(
            super::with_threads(None, rayon::current_num_threads),
            global
        );
    }
}

//! Reading the inputs of a command: in parallel on the `--threads` pool, with progress on a
//! terminal, the catalog loaded first.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use rayon::prelude::*;

use super::{Error, TableArgs};
use crate::capture::expand_inputs;
use crate::pipeline::{analyze_input_with, FileResult};
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
    let per_input = workers_per_input(threads, list.len());
    let run = || -> Vec<FileResult> {
        list.par_iter()
            .map(|i| {
                let r = analyze_input_with(i, cfg, per_input, table.mmap);
                done.fetch_add(1, Relaxed);
                r
            })
            .collect()
    };
    let finished = AtomicBool::new(false);
    // Results come back in input order whatever the number of threads.
    let results = std::thread::scope(|scope| {
        if progress {
            scope.spawn(|| show_progress(&done, list.len(), &finished));
        }
        let r = with_threads(threads, run);
        finished.store(true, Relaxed);
        r
    });
    failed.extend(FailedInput::of(&results));
    ReadInputs {
        results,
        notes,
        failed,
        named: inputs.to_vec(),
        skipped: skipped.len(),
    }
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

/// Progress on stderr (only when it is a terminal): inputs done, bytes read, rate; the line is
/// cleared at the end.
fn show_progress(done: &AtomicUsize, total: usize, finished: &AtomicBool) {
    let start = std::time::Instant::now();
    let base = crate::pipeline::BYTES_READ.load(Relaxed);
    let mut shown = false;
    while !finished.load(Relaxed) {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let secs = start.elapsed().as_secs_f64();
        if secs < 1.0 {
            continue;
        }
        let mb = (crate::pipeline::BYTES_READ.load(Relaxed) - base) as f64 / 1e6;
        eprint!(
            "\r\x1b[K{}/{total} inputs, {mb:.0} MB read, {:.0} MB/s",
            done.load(Relaxed),
            mb / secs
        );
        shown = true;
    }
    if shown {
        eprint!("\r\x1b[K");
    }
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
    // The catalog's error escapes its own wire text already.
    let catalog = opts.load().map_err(|e| Error::Message(e.to_string()))?;
    let read = read_inputs(inputs, table, progress_wanted(quiet));
    read.some_read()?;
    Ok((catalog, read))
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

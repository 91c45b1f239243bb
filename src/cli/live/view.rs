//! The live view of `allowscope live` on a terminal: the audit of the latest snapshot, redrawn
//! with the capture's counters every `--refresh` seconds, cleared before the final report.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::capture::live::Counters;
use crate::catalog::{Catalog, TagRanges};
use crate::pipeline::FileResult;
use crate::report::escape_terminal;

/// The view's title: the interface and its filter.
pub(super) fn title(iface: &str, filter: Option<&str>) -> String {
    format!(
        "allowscope live: {}{}",
        iface,
        filter.map(|f| format!(" ({f})")).unwrap_or_default()
    )
}

/// The body of the view for a snapshot of the capture so far: its counts, then the audit's
/// findings against `cat` ([`crate::report::audit::live_view`]).
pub(super) fn snapshot(mut snap: FileResult, cat: &Catalog, tags: Option<&TagRanges>) -> String {
    crate::cli::name_by_tags(std::slice::from_mut(&mut snap), tags);
    let open = snap.flows.iter().filter(|f| f.close().is_none()).count();
    let (audit, _) = crate::audit::audit(std::slice::from_mut(&mut snap), cat);
    format!(
        "{} flows ({} without FIN or RST so far), {} DNS messages\n{}",
        snap.flows.len(),
        open,
        snap.dns.len(),
        crate::report::audit::live_view(&audit, 15)
    )
}

/// Redraws the live view on stdout every `every` until `done`, then clears it (the final
/// report follows).
pub(super) fn paint(
    title: &str,
    every: Duration,
    counters: &Counters,
    latest: &Mutex<Option<String>>,
    done: &AtomicBool,
) {
    let start = Instant::now();
    let mut next = start;
    let mut out = io::stdout();
    while !done.load(Ordering::SeqCst) {
        if Instant::now() >= next {
            let secs = start.elapsed().as_secs();
            let body = latest
                .lock()
                .ok()
                .and_then(|l| l.clone())
                .unwrap_or_else(|| "waiting for packets...\n".to_string());
            // Home, clear the screen, draw; the text was escaped where it came from the wire.
            let _ = write!(
                out,
                "\x1b[H\x1b[2J{}  {:02}:{:02}:{:02}  {} packets captured, {} dropped\n\n{}\nCtrl-C stops and prints the report.\n",
                escape_terminal(title),
                secs / 3600,
                secs / 60 % 60,
                secs % 60,
                counters.captured(),
                counters.dropped(),
                body
            );
            let _ = out.flush();
            next += every;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = write!(out, "\x1b[H\x1b[2J");
    let _ = out.flush();
}

//! One pass over one input: read frames, decode, reassemble IP fragments, track flows.
//!
//! - [`worker`]: the per-packet pipeline ([`Worker`]), one per input or per worker thread;
//! - [`split`]: one input split among worker threads (`--threads N` with fewer inputs);
//! - [`summary`]: what an input produced ([`FileResult`], [`FileSummary`]) and how the parts
//!   of its workers are put together ([`finish_result`]).

pub mod split;
mod stream;
pub mod summary;
pub mod worker;

pub use split::MAX_WORKERS;
pub use stream::FlowSink;
pub(crate) use summary::finish_result;
pub use summary::{DnsEvent, FileResult, FileSummary, FragmentCounts, SkipCounts};
pub(crate) use worker::{SweepClock, Worker};

use crate::capture::{open_input, CaptureReader, Input, ReadError};
use crate::flow::FlowConfig;

/// Reads one input to the end (or to the first unrecoverable error) and returns its flows.
pub fn analyze_input(input: &Input, cfg: &FlowConfig) -> FileResult {
    analyze_input_with(input, cfg, 1, false)
}

/// Like [`analyze_input`], with the packets split among `workers` threads (see
/// [`split`]); the result is the same for any number. A plain file is memory-mapped
/// when `map` is true, so that no frame is copied from the kernel (it must not be truncated
/// while it is read).
pub fn analyze_input_with(
    input: &Input,
    cfg: &FlowConfig,
    workers: usize,
    map: bool,
) -> FileResult {
    analyze_input_into(input, cfg, workers, map, None)
}

/// Like [`analyze_input_with`], handing the flows to `sink` as they finish (the result then
/// holds none).
pub fn analyze_input_into(
    input: &Input,
    cfg: &FlowConfig,
    workers: usize,
    map: bool,
    sink: Option<&mut dyn FlowSink>,
) -> FileResult {
    let name = input.display();
    let opened = match input {
        Input::File(p) if map => CaptureReader::open_mmap(p),
        _ => open_input(input),
    };
    match opened {
        Ok(reader) => split::analyze_reader_split_into(name, reader, cfg, workers, sink),
        Err(e) => {
            let mut summary = FileSummary::empty(name.clone());
            summary.error = Some(format!("{name}: {e}"));
            FileResult {
                summary,
                flows: Vec::new(),
                dns: Vec::new(),
            }
        }
    }
}

/// Most frames in one epoch of an input: an epoch ends at every sweep of the flow tables
/// (a second of capture time) and after this many frames without one, so that what finished
/// in it (a flood ends a flow per frame) is folded before much of it piles up. Counted by the
/// reader, so the epochs are the same whatever the number of workers.
pub const EPOCH_FRAMES: u64 = 8192;

/// Bytes of capture streams read so far by every reader in this process (for progress
/// displays; updated every few thousand frames, so it costs nothing per packet).
pub static BYTES_READ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Adds what `reader` read since `reported` to [`BYTES_READ`].
pub(crate) fn report_bytes(reader: &CaptureReader, reported: &mut u64) {
    let now = reader.stats().stream_bytes;
    BYTES_READ.fetch_add(
        now.saturating_sub(*reported),
        std::sync::atomic::Ordering::Relaxed,
    );
    *reported = now;
}

/// Reads an opened capture to the end and returns its flows (on this thread).
pub fn analyze_reader(name: String, reader: CaptureReader, cfg: &FlowConfig) -> FileResult {
    read_all(name, reader, cfg, None, None)
}

/// A consumer of snapshots of an input still being read (see [`analyze_reader_viewed`]).
pub type View<'a> = &'a mut dyn FnMut(FileResult);

/// Like [`analyze_reader`], and about every `every` of wall time (checked as frames arrive)
/// hands `view` a snapshot of the input so far: the flows finished so far and copies of the
/// live ones with their facts, named from the DNS seen so far, as the final result would show
/// them if the input ended there. A snapshot copies every flow, so the interval stretches to
/// four times what the last snapshot took: the view never costs more than a fifth of the time.
/// `every` zero takes a snapshot before every frame (for tests).
pub fn analyze_reader_viewed(
    name: String,
    reader: CaptureReader,
    cfg: &FlowConfig,
    every: std::time::Duration,
    view: View<'_>,
) -> FileResult {
    read_all(name, reader, cfg, Some((every, view)), None)
}

fn read_all(
    name: String,
    mut reader: CaptureReader,
    cfg: &FlowConfig,
    mut view: Option<(std::time::Duration, View<'_>)>,
    sink: Option<&mut dyn FlowSink>,
) -> FileResult {
    let mut worker = Worker::new(cfg, 1);
    // Flows go on as they finish, epoch by epoch; a live view's snapshots need every flow in
    // the worker, so there the whole input is one epoch at the end.
    let mut stream = stream::Stream::new(1, sink, cfg);
    let epochs = view.is_none();
    let mut clock = SweepClock::default();
    let mut reported = 0u64;
    let mut seq = 0u64;
    let mut next_view = std::time::Instant::now();
    let error: Option<ReadError> = loop {
        if let Some((every, v)) = view.as_mut() {
            let now = std::time::Instant::now();
            if now >= next_view {
                let part = worker.snapshot();
                v(finish_result(
                    name.clone(),
                    &reader,
                    None,
                    vec![part],
                    SkipCounts::default(),
                    None,
                    stream::Stream::new(1, None, cfg),
                ));
                let cost = now.elapsed();
                if !every.is_zero() {
                    next_view = std::time::Instant::now() + (*every).max(cost * 4);
                }
            }
        }
        if seq % 4096 == 4095 {
            report_bytes(&reader, &mut reported);
        }
        let frame = match reader.next_frame() {
            Ok(Some(f)) => f,
            Ok(None) => break None,
            Err(e) => break Some(e),
        };
        if let Some(now) = clock.tick(frame.ts_ns) {
            worker.sweep(seq, now);
            if epochs {
                stream.push(0, worker.take_epoch());
            }
        } else if epochs && seq % EPOCH_FRAMES == 0 && seq > 0 {
            stream.push(0, worker.take_epoch());
        }
        worker.frame(seq, &frame, i64::MIN);
        seq += 1;
    };
    report_bytes(&reader, &mut reported);
    let part = worker.finish();
    let peak = part.table.peak_live;
    finish_result(
        name,
        &reader,
        error,
        vec![part],
        SkipCounts::default(),
        Some(peak),
        stream,
    )
}

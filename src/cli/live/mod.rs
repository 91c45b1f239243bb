//! `allowscope live`: its arguments, and the command around the capture source
//! ([`crate::capture::live`]): the analysis of the captured stream on its own thread, the live
//! view on a terminal ([`view`]), the final report.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;

use super::audit::{report_audit, ReportOpts};
use super::{Error, Exit, TableArgs};
use crate::capture::live::{interfaces, LiveCapture, LiveOptions};
use crate::capture::CaptureReader;
use crate::catalog::{Catalog, TagRanges};
use crate::pipeline::{analyze_reader, analyze_reader_viewed, FileResult};
use crate::report::escape_terminal;

mod view;

const LIVE_HELP: &str = "\
Captures until --duration or --packets is reached, or Ctrl-C (or SIGTERM), then prints the audit as
`allowscope audit` does (same formats, catalog options and exit codes). While it runs, and when
stdout is a terminal, a live view (packets, flows, the audit's counts and findings so far) is
redrawn every --refresh seconds; --no-view turns it off. Packets the kernel or
the interface dropped are printed to stderr and reported as the input's interface_drops.
Needs CAP_NET_RAW (root); --user drops privileges once the interface is open.

Examples:
  allowscope live --list
  allowscope live -i eth0 --duration 60 --write trace.pcap
  allowscope live -i eth0 -f 'not port 22' --format json --fail-on never > audit.json";

#[derive(Args, Debug)]
#[command(after_help = LIVE_HELP)]
pub struct LiveArgs {
    /// List the interfaces libpcap can capture on and exit
    #[arg(long, conflicts_with_all = ["interface", "filter", "duration", "packets", "write"])]
    pub list: bool,
    /// Interface to capture on
    #[arg(
        short = 'i',
        long,
        value_name = "IFACE",
        required_unless_present = "list"
    )]
    pub interface: Option<String>,
    /// BPF capture filter (tcpdump syntax)
    #[arg(short = 'f', long, value_name = "BPF")]
    pub filter: Option<String>,
    /// Stop after this many seconds
    #[arg(long, value_name = "SECS", conflicts_with = "packets")]
    pub duration: Option<f64>,
    /// Stop after this many packets
    #[arg(long, value_name = "N")]
    pub packets: Option<u64>,
    /// Also write the captured packets to this pcap file (nanosecond timestamps)
    #[arg(short = 'w', long, value_name = "FILE.pcap")]
    pub write: Option<PathBuf>,
    /// Bytes captured per packet
    #[arg(long, default_value_t = 65535, value_name = "BYTES")]
    pub snaplen: i32,
    /// Put the interface into promiscuous mode
    #[arg(long)]
    pub promisc: bool,
    /// After opening the interface (and the --write file), switch to this user and its group
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    #[command(flatten)]
    pub output: super::AuditOutput,
    #[command(flatten)]
    pub catalog: crate::catalog::CatalogOptions,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub tags: super::ServiceTagsArg,
    /// Do not print the summary to stderr
    #[arg(long, short)]
    pub quiet: bool,
    /// Seconds between redraws of the live view
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub refresh: f64,
    /// No live view, even on a terminal
    #[arg(long)]
    pub no_view: bool,
}

/// Runs `allowscope live` and returns the exit code.
pub(super) fn run(args: &LiveArgs, color: super::ColorWhen) -> Result<Exit, Error> {
    if args.list {
        return list();
    }
    let Some(iface) = args.interface.as_deref() else {
        return Err(Error::Message("--interface is required".into()));
    };
    // A duration must also be one a clock can hold (1e300 seconds is not).
    let duration = match args.duration {
        None => None,
        Some(d) => match Duration::try_from_secs_f64(d) {
            Ok(t) if d > 0.0 => Some(t),
            _ => {
                return Err(Error::Message(
                    "--duration must be a positive number of seconds".into(),
                ))
            }
        },
    };
    let refresh =
        match Duration::try_from_secs_f64(args.refresh) {
            Ok(t) if args.refresh >= 0.1 => t,
            _ => return Err(Error::Message(
                "--refresh must be at least 0.1 seconds (and a number of seconds a clock can hold)"
                    .into(),
            )),
        };
    // The catalog's error escapes its own wire text already.
    let catalog = args
        .catalog
        .load()
        .map_err(|e| Error::Message(e.to_string()))?;
    let catalog = Arc::new(catalog);
    let tags = args.tags.load()?.map(Arc::new);
    let view = !args.no_view && io::stdout().is_terminal();
    let opts = LiveOptions {
        interface: iface.to_string(),
        snaplen: args.snaplen,
        promisc: args.promisc,
        filter: args.filter.clone(),
        duration,
        packets: args.packets,
        write: args.write.clone(),
        user: args.user.clone(),
    };
    let (mut result, failed) = capture(
        &opts,
        args,
        refresh,
        view.then(|| catalog.clone()),
        tags.clone(),
    )
    .map_err(|e| {
        Error::Message(format!(
            "{}: {}",
            escape_terminal(iface),
            escape_terminal(&e)
        ))
    })?;
    super::name_by_tags(std::slice::from_mut(&mut result), tags.as_deref());
    let results = std::slice::from_mut(&mut result);
    // The capture failed when libpcap said so (its errors are in the input's summary then).
    let failed = if failed {
        crate::report::audit::FailedInput::of(results)
    } else {
        Vec::new()
    };
    let provenance = super::audit::provenance(
        "live",
        &catalog,
        &args.table,
        &args.catalog,
        args.tags.service_tags.as_deref(),
    );
    // A live capture is not read from files: its summary takes the labels here.
    for r in results.iter_mut() {
        r.summary.labels.clone_from(&provenance.labels);
    }
    report_audit(
        results,
        None,
        &[],
        &failed,
        &catalog,
        &ReportOpts {
            format: args.output.format,
            fail_on: args.output.fail_on,
            quiet: args.quiet,
            per_file: false,
            rules: None,
            show_unexercised: false,
            color,
            html: None,
            provenance: Some(&provenance),
            parquet: None,
        },
    )
}

/// Captures until stopped while a thread analyzes the captured stream, as `audit` reads a
/// file (and, with a catalog to `view` with, audits a snapshot of it about every `refresh`
/// for the live view, which another thread paints); returns the result plus whether something
/// failed. The error is a message without the interface's name.
fn capture(
    opts: &LiveOptions,
    args: &LiveArgs,
    refresh: Duration,
    view: Option<Arc<Catalog>>,
    tags: Option<Arc<TagRanges>>,
) -> Result<(FileResult, bool), String> {
    let (cap, stream) = LiveCapture::open(opts)?;
    let cfg = args.table.config();
    let name = format!("live:{}", opts.interface);
    // The analyzer renders the audit of a snapshot into `latest`; the painter redraws the
    // terminal every `refresh` with it and the capture counters.
    let latest: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let done = Arc::new(AtomicBool::new(false));
    let painter = view.as_ref().map(|_| {
        let (counters, latest, done) = (cap.counters(), latest.clone(), done.clone());
        let title = view::title(&opts.interface, opts.filter.as_deref());
        std::thread::spawn(move || view::paint(&title, refresh, &counters, &latest, &done))
    });
    let analyzer = {
        let latest = latest.clone();
        std::thread::spawn(move || {
            let r = CaptureReader::from_read(Box::new(stream)).map_err(|e| e.to_string())?;
            let mut render = |snap: FileResult| {
                if let Some(cat) = &view {
                    let text = view::snapshot(snap, cat, tags.as_deref());
                    if let Ok(mut l) = latest.lock() {
                        *l = Some(text);
                    }
                }
            };
            Ok::<FileResult, String>(if view.is_some() {
                analyze_reader_viewed(name, r, &cfg, refresh, &mut render)
            } else {
                analyze_reader(name, r, &cfg)
            })
        })
    };

    let end = cap.run();
    let result = analyzer
        .join()
        .map_err(|_| "the analyzer thread panicked".to_string());
    done.store(true, Ordering::SeqCst);
    if let Some(p) = painter {
        let _ = p.join();
    }
    let mut result = result??;
    if let Some(s) = end.stats {
        result.summary.interface_drops = Some(s.drops());
        if !args.quiet {
            eprintln!(
                "live: {} packets captured, {} received by filter, {} dropped by kernel, {} dropped by interface",
                end.packets, s.received, s.dropped, s.if_dropped
            );
        }
    }
    let failed = !end.errors.is_empty();
    if failed {
        let msg = end.errors.join("; ");
        result.summary.error = Some(match result.summary.error.take() {
            Some(e) => format!("{e}; {msg}"),
            None => msg,
        });
    }
    Ok((result, failed))
}

fn list() -> Result<Exit, Error> {
    let devs = interfaces().map_err(|e| Error::Message(format!("listing interfaces: {e}")))?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for d in devs {
        let addrs: Vec<String> = d.addresses.iter().map(|a| a.to_string()).collect();
        super::written(writeln!(
            out,
            "{}\t{}\t{}",
            escape_terminal(&d.name),
            escape_terminal(d.description.as_deref().unwrap_or("")),
            addrs.join(" ")
        ))?;
    }
    super::written(out.flush())?;
    Ok(Exit::Ok)
}

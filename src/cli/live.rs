//! `allowscope live`: its arguments, and the command around the capture (which is
//! [`crate::live`]).

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::audit::{report_audit, ReportOpts};
use super::{Error, TableArgs, EXIT_OK};
use crate::report::escape_terminal;

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
pub(super) fn run(args: &LiveArgs) -> Result<i32, Error> {
    if args.list {
        return list();
    }
    let Some(iface) = args.interface.as_deref() else {
        return Err(Error::Message("--interface is required".into()));
    };
    // A duration must also fit a `Duration` (1e300 seconds would panic in the timer thread).
    let fits = |secs: f64| std::time::Duration::try_from_secs_f64(secs).is_ok();
    if matches!(args.duration, Some(d) if !(d.is_finite() && d > 0.0 && fits(d))) {
        return Err(Error::Message(
            "--duration must be a positive number of seconds".into(),
        ));
    }
    if !(args.refresh.is_finite() && args.refresh >= 0.1 && fits(args.refresh)) {
        return Err(Error::Message(
            "--refresh must be at least 0.1 seconds (and a number of seconds a clock can hold)"
                .into(),
        ));
    }
    // The catalog's error escapes its own wire text already.
    let catalog = args
        .catalog
        .load()
        .map_err(|e| Error::Message(e.to_string()))?;
    let catalog = Arc::new(catalog);
    let tags = args.tags.load()?.map(Arc::new);
    let view = !args.no_view && io::stdout().is_terminal();
    let (mut result, failed) =
        crate::live::capture(iface, args, view.then(|| catalog.clone()), tags.clone()).map_err(
            |e| {
                Error::Message(format!(
                    "{}: {}",
                    escape_terminal(iface),
                    escape_terminal(&e)
                ))
            },
        )?;
    super::name_by_tags(std::slice::from_mut(&mut result), tags.as_deref());
    report_audit(
        std::slice::from_ref(&result),
        &[],
        failed,
        &catalog,
        &ReportOpts {
            format: args.output.format,
            fail_on: args.output.fail_on,
            quiet: args.quiet,
            per_file: false,
        },
    )
}

fn list() -> Result<i32, Error> {
    let devs =
        pcap::Device::list().map_err(|e| Error::Message(format!("listing interfaces: {e}")))?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for d in devs {
        let addrs: Vec<String> = d.addresses.iter().map(|a| a.addr.to_string()).collect();
        super::written(writeln!(
            out,
            "{}\t{}\t{}",
            escape_terminal(&d.name),
            escape_terminal(d.desc.as_deref().unwrap_or("")),
            addrs.join(" ")
        ))?;
    }
    super::written(out.flush())?;
    Ok(EXIT_OK)
}

//! Command-line interface: argument parsing, running the command, exit codes.

use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use rayon::prelude::*;

use crate::capture::expand_inputs;
use crate::flow::FlowConfig;
use crate::pipeline::{analyze_input_with, FileResult};
use crate::report::{escape_terminal, write_flows, FlowsFormat};

/// Exit code: the run worked and found nothing to report.
pub const EXIT_OK: i32 = 0;
/// Exit code: the audit found something at or above `--fail-on`.
pub const EXIT_FINDINGS: i32 = 1;
/// Exit code: an input could not be read to its end, or the arguments were wrong.
pub const EXIT_ERROR: i32 = 2;

const AFTER_HELP: &str = "\
Exit codes:
  0  every input was read to its end
  2  an input could not be opened or was damaged (bad magic, bogus record length, garbage);
     the packets before the damage and all other inputs are still reported

Examples:
  allowscope flows captures/tcp-outcomes.pcap
  allowscope flows --format ndjson captures/ > flows.ndjson
  tcpdump -i eth0 -w - | allowscope flows -
  allowscope flows --format json a.pcapng b.pcap.gz c.pcap.zst";

#[derive(Parser, Debug)]
#[command(
    name = "allowscope",
    version,
    about = "Audit packet captures against the outbound allowlist a service needs",
    long_about = "allowscope reads packet captures (pcap, pcapng, gzip or zstd compressed, stdin, \
                  directories) and reports every flow with evidence from the wire: who spoke, \
                  who answered, how it ended.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Judge every flow and DNS lookup against the catalog: what was blocked, what got through
    /// unexpectedly, what was never exercised
    #[command(after_help = AUDIT_HELP)]
    Audit(AuditArgs),
    /// Merge audit JSON documents of separate runs (shards of a batch, several machines) into
    /// the document one run over all their inputs would have written
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
    /// Websockets to Azure ML compute instances (Jupyter kernels): did one come up, how long
    /// did it live, how did it end, and why
    #[command(after_help = WS_HELP)]
    Ws(WsArgs),
    /// List every flow (bidirectional 5-tuple) with its counters, history, outcome and name
    #[command(after_help = FLOWS_HELP)]
    Flows(FlowsArgs),
    /// List DNS lookups (UDP and TCP): name, type, rcode, answers, CNAME chains, unanswered queries
    #[command(after_help = DNS_HELP)]
    Dns(FlowsArgs),
    /// The catalog of hosts a service needs: list, match a name, export, check a user catalog
    #[command(subcommand)]
    Catalog(crate::catalog::cli::CatalogCommand),
    /// Capture live from an interface and audit what it sees (needs CAP_NET_RAW)
    #[cfg(feature = "live")]
    Live(crate::live::LiveArgs),
}

const AUDIT_HELP: &str = "\
Verdicts: required-blocked, optional-blocked, unexpected-reached (allowed but not in the
catalog), unexpected-blocked, required-reached, optional-reached, inconclusive (a handshake
without data, or a capture that began mid-flow), unattributed (no name). Reached means the far
end spoke at the application level: a SYN-ACK alone proves nothing.

Mechanisms: drop, tcp-reset, icmp-admin-prohibited, icmp-port-unreachable,
icmp-host-unreachable, udp-drop, sni-reset, tls-alert, proxy-denied, http-470, dns-nxdomain,
dns-servfail, dns-refused, dns-nodata, dns-sinkhole, dns-no-answer, local-block (resolved, never
connected: low confidence, fails a run only with --fail-on any).

Exit codes:
  0  nothing at or above --fail-on was found
  1  something was (default: a required host was blocked)
  2  an input could not be read to its end, or a bad argument or catalog

Examples:
  allowscope audit captures/audit-client.pcap
  allowscope audit --region eastus --storage mystorage --format markdown trace.pcapng > report.md
  allowscope audit --fail-on unexpected-reached --format json captures/ > audit.json";

const MERGE_HELP: &str = "\
Exit codes: as for audit (0 nothing at or above --fail-on, 1 findings, 2 unreadable or
mismatched documents).

Examples:
  allowscope audit --format json shard1/ > a.json; allowscope audit --format json shard2/ > b.json
  allowscope merge a.json b.json > all.json";

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Audit JSON documents (`allowscope audit --format json`)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The least severe finding that makes the exit code 1
    #[arg(long, value_enum, default_value = "required-blocked")]
    pub fail_on: crate::audit::FailOn,
}

const WS_HELP: &str = "\
Looks at every TCP flow to a websocket-capable catalog entry (*.instances.azureml.ms,
*.notebooks.azure.net, *.azureml.ms, ...) or carrying `Upgrade: websocket`, and prints per
connection its transport, ALPN, CONNECT and Upgrade answers, a timeline (start, handshake, last
data each way, end), who ended it and how, then a diagnosis per instance with what to change:

  healthy             the far end answered; still open, or closed right after data
  ws-upgrade-failed   an Upgrade answered with something other than 101; says who answered
                      (origin or proxy) and whether a proxy dropped the Upgrade header
  ws-idle-kill        closed after 2 s or more without a byte either way, or the first data
                      after such a silence answered only by a RST or by nothing at all; the
                      timer is named: about 60 s nginx, 4 min Azure Firewall / Load Balancer,
                      5 min envoy, or the measured gap
  never-established   the far end never answered (see `allowscope audit` for how it was blocked)
  never-stays-up      three or more short connections in a row

When a capture holds both sides of a proxy, the two legs of a handshake are tied together by
its Sec-WebSocket-Key or TLS client random.

Exit codes: 0 read to the end, 1 with `--fail-on problem` an instance is not healthy, 2 an
input or the catalog could not be read.

Examples:
  allowscope ws captures/ws-client.pcap
  allowscope ws --fail-on problem --format json captures/ > ws.json
  allowscope ws captures/ws-firewall.pcapng
  allowscope ws --format json --region eastus trace.pcapng";

#[derive(Args, Debug)]
pub struct WsArgs {
    /// Capture files, directories (searched recursively) or `-` for stdin
    #[arg(required = true, value_name = "FILES|DIRS|-")]
    pub inputs: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: FlowsFormat,
    #[command(flatten)]
    pub catalog: crate::catalog::CatalogOptions,
    #[command(flatten)]
    pub table: TableArgs,
    /// Do not print per-file summaries to stderr
    #[arg(long, short)]
    pub quiet: bool,
    /// Exit 1 when an instance has a problem (`problem`), or never (`never`)
    #[arg(long, value_enum, default_value = "never")]
    pub fail_on: WsFailOn,
}

/// When `allowscope ws` exits 1.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsFailOn {
    /// Any instance whose diagnosis is not healthy
    Problem,
    /// Only unreadable input makes the exit code non-zero (2)
    Never,
}

const DNS_HELP: &str = "\
Each line is one lookup: a query joined with its response. `no answer` marks queries that never
got one; flags: nodata (NOERROR without an answer of the asked type), sinkhole (0.0.0.0, :: or
127.0.0.1 answers), privatelink (the CNAME chain passes through a privatelink. name).

Exit codes: 0 all inputs read to the end, 2 an input was unreadable or damaged.

Examples:
  allowscope dns captures/dns-facts.pcap
  allowscope dns --format ndjson captures/ | jq 'select(.rcode != \"NOERROR\")'";

const FLOWS_HELP: &str = "\
Outcomes:
  no-answer           SYNs (TCP) or requests (UDP) with nothing back; `attempts` counts them
  refused             SYN answered by RST
  icmp-unreachable    an ICMP/ICMPv6 error quoting the flow, no answer (type/code kept)
  handshake-only      handshake completed, no payload either way
  reset-after-hello   client sent data, server sent none and closed (FIN or RST)
  request-unanswered  client sent data, server sent none and did not close
  established         the far end sent payload (TCP) or a reply (UDP, ICMP echo)
  midstream           the capture began after the flow did

History letters (Zeek style; upper case client, lower case server):
  S syn  H syn-ack  A pure ack  D data  F fin  R rst  T retransmitted data
  W zero window  I inconsistent flags  ^ roles flipped from the first packet's sender

Exit codes: 0 all inputs read to the end, 2 an input was unreadable or damaged.

Examples:
  allowscope flows captures/tcp-outcomes.pcap
  allowscope flows --format ndjson captures/ | jq 'select(.outcome != \"established\")'
  zcat trace.pcap.gz | allowscope flows -";

#[derive(Args, Debug)]
pub struct FlowsArgs {
    /// Capture files, directories (searched recursively) or `-` for stdin
    #[arg(required = true, value_name = "FILES|DIRS|-")]
    pub inputs: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    pub format: FlowsFormat,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub tags: ServiceTagsArg,
    /// Do not print per-file summaries to stderr
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--service-tags FILE` (`flows`, `audit`, `live`).
#[derive(Args, Debug, Clone, Default)]
pub struct ServiceTagsArg {
    /// The Azure IP Ranges and Service Tags JSON of the cloud (ServiceTags_Public_*.json): a
    /// flow known only by its server's address is named by the service tag whose range holds
    /// it (name source ip-tag), and judged by the catalog's service-tag rules
    #[arg(long, value_name = "FILE")]
    pub service_tags: Option<PathBuf>,
}

impl ServiceTagsArg {
    /// Loads the file, if one was given; a bad one is exit 2 with its error.
    pub fn load(&self) -> Result<Option<crate::catalog::TagRanges>, i32> {
        let Some(p) = &self.service_tags else {
            return Ok(None);
        };
        crate::catalog::TagRanges::load(p).map(Some).map_err(|e| {
            eprintln!("error: --service-tags {}", escape_terminal(&e.to_string()));
            EXIT_ERROR
        })
    }
}

/// Names the flows of `results` known only by address by their service tags (see
/// [`crate::names::name_from_tags`]).
pub fn name_by_tags(results: &mut [FileResult], tags: Option<&crate::catalog::TagRanges>) {
    if let Some(t) = tags {
        for r in results {
            crate::names::name_from_tags(&mut r.flows, t);
        }
    }
}

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Capture files, directories (searched recursively) or `-` for stdin
    #[arg(required = true, value_name = "FILES|DIRS|-")]
    pub inputs: Vec<PathBuf>,
    #[command(flatten)]
    pub output: AuditOutput,
    /// Add a per-file breakdown (and, in Markdown, the coverage matrix entry x file even for
    /// one input)
    #[arg(long)]
    pub per_file: bool,
    #[command(flatten)]
    pub catalog: crate::catalog::CatalogOptions,
    #[command(flatten)]
    pub table: TableArgs,
    #[command(flatten)]
    pub tags: ServiceTagsArg,
    /// Do not print per-file summaries to stderr
    #[arg(long, short)]
    pub quiet: bool,
}

/// How an audit is written and when it fails (`audit` and `live`).
#[derive(Args, Debug, Clone, Copy)]
pub struct AuditOutput {
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    pub format: crate::audit::report::AuditFormat,
    /// The least severe finding that makes the exit code 1
    #[arg(long, value_enum, default_value = "required-blocked")]
    pub fail_on: crate::audit::FailOn,
}

/// Flow-table tunables shared by commands that read captures.
#[derive(Args, Debug, Clone)]
pub struct TableArgs {
    /// Worker threads [default: all cores]: several inputs are read at once, one per thread;
    /// with fewer inputs than threads, each input's packets are split among its share of them
    /// (by flow). The output is the same for any number
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Payload bytes kept from the start of each TCP direction (first flight), 1024 to 16 MiB
    #[arg(long, default_value_t = 16 * 1024, value_name = "BYTES", value_parser = clap::value_parser!(u32).range(1024..=16 << 20))]
    pub reassembly_cap: u32,
    /// Most flows kept in memory at once; the least recently active are finished early beyond it
    /// (an input split among threads gives each its share)
    #[arg(long, default_value_t = 500_000, value_name = "N", value_parser = clap::value_parser!(u64).range(16..))]
    pub max_flows: u64,
    /// Seconds without packets after which an open TCP flow is finished
    #[arg(long, default_value_t = 900, value_name = "SECS")]
    pub tcp_idle: u32,
    /// Seconds without packets after which a UDP or ICMP flow is finished
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub udp_idle: u32,
    /// Map a plain file into memory instead of reading it. Nothing is copied from the kernel,
    /// but on the 2-core bench host the map cost more than the copies (page faults, TLB
    /// misses), and a file truncated while it is mapped ends the process (SIGBUS)
    #[arg(long)]
    pub mmap: bool,
    /// Read the file with read() (the default; kept for scripts written when mapping was)
    #[arg(long, hide = true, conflicts_with = "mmap")]
    pub no_mmap: bool,
}

impl TableArgs {
    pub fn config(&self) -> FlowConfig {
        FlowConfig {
            reassembly_cap: self.reassembly_cap as usize,
            max_flows: self.max_flows as usize,
            tcp_idle_ns: self.tcp_idle as i64 * 1_000_000_000,
            udp_idle_ns: self.udp_idle as i64 * 1_000_000_000,
            ..FlowConfig::default()
        }
    }
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_OK };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Flows(args) => flows(&args, View::Flows),
        Command::Dns(args) => flows(&args, View::Dns),
        Command::Audit(args) => audit(&args),
        Command::Merge(args) => merge(&args),
        Command::Ws(args) => ws(&args),
        Command::Catalog(c) => crate::catalog::cli::run(&c),
        #[cfg(feature = "live")]
        Command::Live(args) => crate::live::run(&args),
    }
}

/// Reads every input (in parallel, one file per worker; with fewer inputs than threads, each
/// input split among its share of them) and returns the results in input order, plus messages
/// about inputs that could not even be listed.
pub fn read_inputs(
    inputs: &[PathBuf],
    table: &TableArgs,
    progress: bool,
) -> (Vec<FileResult>, Vec<String>, bool) {
    let (cfg, threads) = (&table.config(), table.threads);
    let (list, skipped, missing) = expand_inputs(inputs);
    let mut notes = Vec::new();
    for (p, why) in &skipped {
        let p = p.display().to_string();
        notes.push(format!("note: skipped {}: {why}", escape_terminal(&p)));
    }
    let mut failed = false;
    for (p, why) in &missing {
        let p = p.display().to_string();
        notes.push(format!("error: {}: {why}", escape_terminal(&p)));
        failed = true;
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let per_input = workers_per_input(threads, list.len());
    let run = || -> Vec<FileResult> {
        list.par_iter()
            .map(|i| {
                let r = analyze_input_with(i, cfg, per_input, table.mmap);
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                r
            })
            .collect()
    };
    let finished = std::sync::atomic::AtomicBool::new(false);
    // Results come back in input order whatever the number of threads.
    let results = std::thread::scope(|scope| {
        if progress {
            scope.spawn(|| show_progress(&done, list.len(), &finished));
        }
        let r = with_threads(threads, run);
        finished.store(true, std::sync::atomic::Ordering::Relaxed);
        r
    });
    failed |= results.iter().any(|r| r.summary.error.is_some());
    (results, notes, failed)
}

/// Runs `f` on a pool of `threads` threads (`--threads`), or on the current pool when that is
/// its size already or no number was given.
fn with_threads<R: Send>(threads: Option<u16>, f: impl FnOnce() -> R + Send) -> R {
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    Flows,
    Dns,
}

/// Progress on stderr (only when it is a terminal): inputs done, bytes read, rate; the line is
/// cleared at the end.
fn show_progress(
    done: &std::sync::atomic::AtomicUsize,
    total: usize,
    finished: &std::sync::atomic::AtomicBool,
) {
    use std::sync::atomic::Ordering::Relaxed;
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
fn progress_wanted(quiet: bool) -> bool {
    !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr())
}

fn flows(args: &FlowsArgs, view: View) -> i32 {
    let tags = match args.tags.load() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let (mut results, notes, failed) =
        read_inputs(&args.inputs, &args.table, progress_wanted(args.quiet));
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
    let written = match view {
        View::Flows => write_flows(&mut out, &mut sink, &results, args.format),
        View::Dns => {
            crate::report::dns::write_dns(&mut out, &results, args.format).and_then(|_| {
                if args.format != FlowsFormat::Json {
                    crate::report::write_summaries(&mut sink, &results)?;
                }
                Ok(())
            })
        }
    };
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            let _ = writeln!(err, "error: writing output: {e}");
            return EXIT_ERROR;
        }
    }
    // The summaries (which carry the errors) went to stderr unless --quiet or JSON: errors
    // still reach stderr then.
    if args.format == FlowsFormat::Json || args.quiet {
        for e in results.iter().filter_map(|r| r.summary.error.as_ref()) {
            let _ = writeln!(err, "error: {}", escape_terminal(e));
        }
    }
    // The process ends here: freeing every flow one by one would only cost time.
    std::mem::forget(results);
    if failed {
        EXIT_ERROR
    } else {
        EXIT_OK
    }
}

/// Loads the catalog (a bad one is exit 2 with its error) and reads the inputs.
#[allow(clippy::type_complexity)]
fn catalog_and_inputs(
    opts: &crate::catalog::CatalogOptions,
    inputs: &[PathBuf],
    table: &TableArgs,
    quiet: bool,
) -> Result<(crate::catalog::Catalog, Vec<FileResult>, Vec<String>, bool), i32> {
    let catalog = opts.load().map_err(|e| {
        eprintln!("error: {}", escape_terminal(&e.to_string()));
        EXIT_ERROR
    })?;
    let (results, notes, failed) = read_inputs(inputs, table, progress_wanted(quiet));
    Ok((catalog, results, notes, failed))
}

fn audit(args: &AuditArgs) -> i32 {
    // Reading and judging both run on the `--threads` pool.
    with_threads(args.table.threads, || audit_in_pool(args))
}

fn audit_in_pool(args: &AuditArgs) -> i32 {
    let tags = match args.tags.load() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let (catalog, mut results, notes, failed) =
        match catalog_and_inputs(&args.catalog, &args.inputs, &args.table, args.quiet) {
            Ok(x) => x,
            Err(code) => return code,
        };
    name_by_tags(&mut results, tags.as_ref());
    let opts = ReportOpts {
        format: args.output.format,
        fail_on: args.output.fail_on,
        quiet: args.quiet,
        per_file: args.per_file,
    };
    let code = report_audit(&results, &notes, failed, &catalog, &opts);
    // The process ends here: freeing every flow and DNS message one by one would only cost time.
    std::mem::forget(results);
    code
}

/// How `report_audit` writes and judges: the audit-like options of `audit` and `live`.
#[derive(Clone, Copy)]
pub(crate) struct ReportOpts {
    pub format: crate::audit::report::AuditFormat,
    pub fail_on: crate::audit::FailOn,
    pub quiet: bool,
    pub per_file: bool,
}

/// Audits read inputs against the catalog, writes the report to stdout (and notes, summaries
/// and errors to stderr) and returns the exit code. Shared by `audit` and `live`.
pub(crate) fn report_audit(
    results: &[FileResult],
    notes: &[String],
    failed: bool,
    catalog: &crate::catalog::Catalog,
    opts: &ReportOpts,
) -> i32 {
    let ReportOpts {
        format,
        fail_on,
        quiet,
        per_file,
    } = *opts;
    let mut err = io::stderr();
    for n in notes {
        let _ = writeln!(err, "{n}");
    }
    let (report, judged) = crate::audit::audit(results, catalog);
    let stdout = io::stdout();
    let color = format == crate::audit::report::AuditFormat::Text
        && std::io::IsTerminal::is_terminal(&stdout)
        && std::env::var_os("NO_COLOR").is_none();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if let Err(e) = crate::audit::report::write_audit(
        &mut out, &report, &judged, results, format, color, per_file,
    ) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            let _ = writeln!(err, "error: writing output: {e}");
            return EXIT_ERROR;
        }
    }
    if !quiet && format != crate::audit::report::AuditFormat::Json {
        let _ = crate::report::write_summaries(&mut err, results);
    } else {
        for e in results.iter().filter_map(|r| r.summary.error.as_ref()) {
            let _ = writeln!(err, "error: {}", escape_terminal(e));
        }
    }
    if failed {
        return EXIT_ERROR;
    }
    let hit = report
        .findings
        .iter()
        .chain(report.dns_failures.iter())
        .any(|f| {
            let local = f.mechanism == Some(crate::audit::Mechanism::LocalBlock);
            fail_on.hit(f.verdict.name(), local)
        });
    // Both callers end the process after the report: freeing the audit and the judgement of
    // every flow one by one would only cost time.
    std::mem::forget(report);
    std::mem::forget(judged);
    if hit {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn merge(args: &MergeArgs) -> i32 {
    let mut docs = Vec::new();
    for f in &args.files {
        let name = escape_terminal(&f.display().to_string()).into_owned();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {name}: {e}");
                return EXIT_ERROR;
            }
        };
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) => docs.push((name, v)),
            Err(e) => {
                eprintln!("error: {name}: not JSON: {e}");
                return EXIT_ERROR;
            }
        }
    }
    let merged = match crate::audit::merge::merge(&docs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_ERROR;
        }
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if crate::report::pretty::to_writer_pretty(&mut out, &merged).is_err() || writeln!(out).is_err()
    {
        return EXIT_ERROR;
    }
    let _ = out.flush();
    let hit = merged["findings"]
        .as_array()
        .into_iter()
        .chain(merged["dns_failures"].as_array())
        .flatten()
        .any(|f| {
            let local = f["mechanism"].as_str() == Some("local-block");
            args.fail_on.hit(f["verdict"].as_str().unwrap_or(""), local)
        });
    if hit {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}

fn ws(args: &WsArgs) -> i32 {
    with_threads(args.table.threads, || ws_in_pool(args))
}

fn ws_in_pool(args: &WsArgs) -> i32 {
    let (catalog, results, notes, failed) =
        match catalog_and_inputs(&args.catalog, &args.inputs, &args.table, args.quiet) {
            Ok(x) => x,
            Err(code) => return code,
        };
    let mut err = io::stderr();
    for n in &notes {
        let _ = writeln!(err, "{n}");
    }
    let (conns, instances) = crate::ws::websockets(&results, &catalog);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match args.format {
        FlowsFormat::Json => crate::report::pretty::to_writer_pretty(
            &mut out,
            &serde_json::json!({
                "schema_version": crate::report::SCHEMA_VERSION,
                "connections": conns,
                "instances": instances,
            }),
        )
        .map_err(io::Error::from)
        .and_then(|_| writeln!(out)),
        FlowsFormat::Ndjson => conns.iter().try_for_each(|c| {
            serde_json::to_writer(&mut out, c).map_err(io::Error::from)?;
            writeln!(out)
        }),
        FlowsFormat::Table => crate::ws::write_text(&mut out, &conns, &instances),
    };
    let _ = out.flush();
    if let Err(e) = written {
        if e.kind() != io::ErrorKind::BrokenPipe {
            let _ = writeln!(err, "error: writing output: {e}");
            return EXIT_ERROR;
        }
    }
    if !args.quiet {
        let _ = crate::report::write_summaries(&mut err, &results);
    }
    if failed {
        EXIT_ERROR
    } else if args.fail_on == WsFailOn::Problem && instances.iter().any(|i| i.problem != "healthy")
    {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
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

//! The command line: every command's arguments (clap) and help text, with examples.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::Error;
use crate::audit::{Mechanism, Verdict};
use crate::flow::{FlowConfig, Outcome};
use crate::report::{escape_terminal, FlowsFormat};

const AFTER_HELP: &str = "\
Exit codes:
  0  the run worked: every input was read to its end, and
       audit, merge, live: nothing at or above --fail-on was found
       ws: with --fail-on problem, every websocket instance is healthy
       catalog, completions, man: done (also when `catalog match` finds nothing)
  1  audit, merge, live: a finding at or above --fail-on (by default a required host blocked;
       websocket-problem adds unhealthy websockets, unexpected-reached unexpected hosts
       reached, any every blocked or unexpected finding, even a weak one)
     ws: an instance is not healthy, with --fail-on problem
  2  flows, dns, audit, ws: no capture was read at all (no capture file among the inputs,
       an empty directory, or every input unreadable): a message, nothing on stdout
     flows, dns, audit, ws, live: an input could not be read to its end (not found, bad
       magic, bogus record length, garbage): the rest is still reported, and the audit opens
       by saying it is incomplete
     merge: a document is not an audit, or says its audit is incomplete
     catalog check: the catalog has errors
     any command: bad arguments, a bad catalog or service-tags file, output that could not
       be written; live in a build without the live feature

Examples:
  allowscope flows captures/tcp-outcomes.pcap
  allowscope flows --format ndjson captures/ > flows.ndjson
  tcpdump -i eth0 -w - | allowscope flows -
  allowscope flows --format json a.pcapng b.pcap.gz c.pcap.zst
  allowscope completions bash > /etc/bash_completion.d/allowscope";

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
    /// Colour in the text report: `auto` when stdout is a terminal, unless NO_COLOR is set
    /// (and not empty) or TERM is `dumb`; `always` whatever NO_COLOR and TERM say
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorWhen,
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`: when the text report is coloured.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorWhen {
    // (Plain comments: doc comments would turn `--help` into the long listing of values.)
    // When stdout is a terminal, NO_COLOR is unset or empty, and TERM is not `dumb`.
    Auto,
    // Always: NO_COLOR and TERM are not looked at.
    Always,
    Never,
}

impl ColorWhen {
    /// Whether to colour output going to a stream that is (`terminal`) or is not a terminal.
    pub fn wanted(self, terminal: bool) -> bool {
        match self {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => {
                terminal
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
            }
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Judge every flow and DNS lookup against the catalog: what was blocked, what got through
    /// unexpectedly, what was never exercised
    #[command(after_help = audit_help())]
    Audit(AuditArgs),
    /// Merge audit JSON documents of separate runs (shards of a batch, several machines) into
    /// the document one run over all their inputs would have written
    #[command(after_help = MERGE_HELP)]
    Merge(MergeArgs),
    /// Check an allowlist without a capture (an Azure Firewall policy's rules as JSON, a squid
    /// configuration, a list of host names) against the catalog: the entries it does not permit
    /// (and the rules to add), what it lets through beyond them
    #[command(name = "check-allowlist", after_help = super::allowlist::HELP)]
    CheckAllowlist(super::allowlist::CheckAllowlistArgs),
    /// Websockets to Azure ML compute instances (Jupyter kernels): did one come up, how long
    /// did it live, how did it end, and why
    #[command(after_help = WS_HELP)]
    Ws(WsArgs),
    /// List every flow (bidirectional 5-tuple) with its counters, history, outcome and name
    #[command(after_help = flows_help())]
    Flows(FlowsArgs),
    /// List DNS lookups (UDP and TCP): name, type, rcode, answers, CNAME chains, unanswered queries
    #[command(after_help = DNS_HELP)]
    Dns(FlowsArgs),
    /// The catalog of hosts a service needs: list, match a name, export, check a user catalog
    #[command(subcommand)]
    Catalog(super::catalog::CatalogCommand),
    /// Capture live from an interface and audit what it sees (needs CAP_NET_RAW)
    #[cfg(feature = "live")]
    Live(super::live::LiveArgs),
    /// Without the `live` feature: says how to get a build with it
    #[cfg(not(feature = "live"))]
    #[command(hide = true, disable_help_flag = true)]
    Live(NoLiveArgs),
    /// Print a shell completion script, generated from these command definitions
    #[command(after_help = COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print the manual page (roff), or write one per command into a directory
    #[command(after_help = MAN_HELP)]
    Man(ManArgs),
    /// Print the JSON Schema of a JSON document or NDJSON row this build writes, or list them
    #[command(after_help = SCHEMA_HELP)]
    Schema(SchemaArgs),
}

const SCHEMA_HELP: &str = "\
Examples:
  allowscope schema                       # the names, one per line
  allowscope schema audit > audit.schema.json
  allowscope schema audit-row             # a line of audit --format ndjson
The same files are in the repository's docs/schema/.";

#[derive(Args, Debug)]
pub struct SchemaArgs {
    /// The schema to print (without it, the names are listed)
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(crate::report::schema::names()))]
    pub name: Option<String>,
}

const COMPLETIONS_HELP: &str = "\
Examples:
  allowscope completions bash > ~/.local/share/bash-completion/completions/allowscope
  allowscope completions zsh > \"${fpath[1]}/_allowscope\"
  allowscope completions fish > ~/.config/fish/completions/allowscope.fish";

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete in
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

const MAN_HELP: &str = "\
Examples:
  allowscope man | man -l -
  allowscope man --dir /usr/local/share/man/man1";

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write allowscope.1 and a page per command (allowscope-audit.1, ...) into this directory
    /// instead of printing allowscope.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// `allowscope live ...` in a build without the `live` feature: whatever follows is taken,
/// so that the answer is how to get live capture rather than an argument error.
#[cfg(not(feature = "live"))]
#[derive(Args, Debug)]
pub struct NoLiveArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., hide = true)]
    pub rest: Vec<std::ffi::OsString>,
}

/// `head` then `items` joined by ", ", wrapped at 96 columns (the help's width), ending in `tail`.
fn wrapped(head: &str, items: &[&str], tail: &str) -> String {
    let mut out = String::new();
    let mut line = head.to_string();
    let last = items.len().saturating_sub(1);
    for (i, item) in items.iter().enumerate() {
        let word = if i == last {
            format!("{item}{tail}")
        } else {
            format!("{item},")
        };
        if line.len() + 1 + word.len() > 96 {
            out.push_str(&line);
            out.push('\n');
            line = word;
        } else {
            line.push(' ');
            line.push_str(&word);
        }
    }
    out.push_str(&line);
    out
}

/// `audit --help`'s closing text: the verdicts and mechanisms as their enums name them (a new
/// one shows up here by itself), the exit codes and examples.
fn audit_help() -> String {
    format!(
        "{}\n\nReached means the far end spoke at the application level: a SYN-ACK alone proves\n\
         nothing. unexpected-*: a host the catalog does not list; other-port-*: a catalog host on\n\
         a protocol or port its entry does not list; inconclusive: a handshake without data, a\n\
         capture that began mid-flow, or an only attempt watched for less than a second (the\n\
         capture ended, or evicted the flow); unattributed: no name.\n\n{}\n\nlocal-block (resolved, never \
         connected) has low confidence and fails a run only with --fail-on any.\n\n{AUDIT_HELP_END}",
        wrapped("Verdicts:", &Verdict::NAMES, "."),
        wrapped("Mechanisms:", &Mechanism::NAMES, "."),
    )
}

const AUDIT_HELP_END: &str = "\
Exit codes:
  0  every input was read and nothing at or above --fail-on was found
  1  something was (default: a required host was blocked; websocket-problem: also a websocket
     instance that is not healthy; unexpected-reached: also an unexpected host reached)
  2  no capture was read at all (no capture file, or every input unreadable); an input could
     not be read to its end (the report opens by saying the audit is incomplete); a bad
     argument or catalog

Examples:
  allowscope audit captures/audit-client.pcap
  allowscope audit --region eastus --storage mystorage --format markdown trace.pcapng > report.md
  allowscope audit --fail-on unexpected-reached --format json captures/ > audit.json
  allowscope audit --rules azure-firewall --storage mystorage trace.pcapng > add-rules.sh";

const MERGE_HELP: &str = "\
Exit codes: as for audit (0 nothing at or above --fail-on, 1 findings, 2 unreadable or
mismatched documents, or a document whose audit is incomplete: an input of it failed).

Examples:
  allowscope audit --format json shard1/ > a.json; allowscope audit --format json shard2/ > b.json
  allowscope merge a.json b.json > all.json
  allowscope merge --rules squid shards/*.json > allowscope.conf
  allowscope merge --format html shards/*.json > fleet.html";

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Audit JSON documents (`allowscope audit --format json`)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// The least severe finding that makes the exit code 1
    #[arg(long, value_enum, default_value = "required-blocked")]
    pub fail_on: crate::audit::FailOn,
    /// Write the rules to add for all the documents' findings instead of the merged document
    /// (as `audit --rules`)
    #[arg(long, value_enum, value_name = "FIREWALL")]
    pub rules: Option<crate::report::rules::RulesFormat>,
    /// Output format: the merged JSON document (the default), or the report one run would
    /// have written, from the documents (without per-flow detail: no flows behind a finding,
    /// no unattributed kinds)
    #[arg(long, value_enum, default_value = "json")]
    pub format: MergeFormat,
}

/// What `merge` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MergeFormat {
    Json,
    Text,
    Markdown,
    Html,
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
input or the catalog could not be read, or no capture was read at all.

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

Exit codes: 0 all inputs read to the end, 2 an input was unreadable or damaged, or no
capture was read at all (no capture file among the inputs, or every input unreadable).

Examples:
  allowscope dns captures/dns-facts.pcap
  allowscope dns --format ndjson captures/ | jq 'select(.rcode != \"NOERROR\")'";

/// `flows --help`'s closing text: every outcome with what it means (from the enum), the
/// history letters, exit codes and examples.
fn flows_help() -> String {
    let mut out = String::from("Outcomes:\n");
    for o in Outcome::ALL {
        out.push_str(&format!("  {:<19} {}\n", o.name(), o.help()));
    }
    out.push('\n');
    out.push_str(FLOWS_HELP_END);
    out
}

const FLOWS_HELP_END: &str = "\
History letters (Zeek style; upper case client, lower case server):
  S syn  H syn-ack  A pure ack  D data  F fin  R rst  T retransmitted data
  W zero window  I inconsistent flags  ^ roles flipped from the first packet's sender

Exit codes: 0 all inputs read to the end, 2 an input was unreadable or damaged, or no
capture was read at all (no capture file among the inputs, or every input unreadable).

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
    /// Loads the file, if one was given; a bad one is an error (exit 2).
    pub fn load(&self) -> Result<Option<crate::catalog::TagRanges>, Error> {
        let Some(p) = &self.service_tags else {
            return Ok(None);
        };
        crate::catalog::TagRanges::load(p).map(Some).map_err(|e| {
            Error::Message(format!(
                "--service-tags {}",
                escape_terminal(&e.to_string())
            ))
        })
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
    /// Write the rules to add instead of the report: the smallest set of allow rules that lets
    /// every required host the capture saw blocked through, in a firewall's language (the exit
    /// code is the audit's)
    #[arg(long, value_enum, value_name = "FIREWALL")]
    pub rules: Option<crate::report::rules::RulesFormat>,
    /// List the required catalog entries nothing in the capture exercised (the text and
    /// Markdown reports give their count; the JSON always lists them)
    #[arg(long)]
    pub show_unexercised: bool,
    /// Also write the report as one self-contained HTML page to FILE (beside the chosen
    /// format on stdout)
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write the audit as Parquet tables into DIR as well (created if missing): flows/ (one
    /// file per input, written as it is read), findings.parquet, coverage.parquet; every row
    /// with the run's labels, every file with its provenance (README, "Parquet")
    #[arg(long, value_name = "DIR")]
    pub parquet: Option<PathBuf>,
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
    pub format: crate::report::audit::AuditFormat,
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
    /// Seconds without packets after which an open TCP flow is finished (a connect that only
    /// sent SYNs and heard nothing: after at most 180)
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
    /// A label for this run, e.g. host=web-3 (repeatable): written on every input and in the
    /// document's provenance; `merge` keys inputs by their labels and path
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = crate::provenance::parse_label)]
    pub labels: Vec<(String, String)>,
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

#[cfg(test)]
mod tests {
    use super::{audit_help, flows_help};
    use crate::audit::{Mechanism, Verdict};
    use crate::flow::Outcome;

    /// The names a paragraph of help lists after `head` ("Head: a, b (why), c."), or, for a
    /// `head` on a line of its own, the first word of each indented line under it.
    fn listed(help: &str, head: &str) -> Vec<String> {
        let start = help.find(head).map_or("", |i| &help[i + head.len()..]);
        let block = start.split("\n\n").next().unwrap_or("");
        let items: Vec<&str> = if start.starts_with('\n') {
            block.lines().collect()
        } else {
            block.split(',').collect()
        };
        let mut out = Vec::new();
        let mut depth = 0;
        for item in items {
            // Words inside a parenthesis explain the name before it.
            let word: String = item
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                .collect();
            if depth == 0 && !word.is_empty() {
                out.push(word);
            }
            depth += item.matches('(').count();
            depth -= item.matches(')').count().min(depth);
        }
        out
    }

    /// The help names each vocabulary as the enum does and in its order; the names it leaves
    /// out are listed here (the help text is kept as it is until someone rewrites it).
    #[test]
    fn help_lists_the_vocabularies_names() {
        let check = |listed: Vec<String>, all: &[&str], left_out: &[&str]| {
            let want: Vec<&str> = all
                .iter()
                .copied()
                .filter(|n| !left_out.contains(n))
                .collect();
            assert_eq!(listed, want);
        };
        check(listed(&audit_help(), "Verdicts:"), &Verdict::NAMES, &[]);
        check(listed(&audit_help(), "Mechanisms:"), &Mechanism::NAMES, &[]);
        check(listed(&flows_help(), "Outcomes:"), &Outcome::NAMES, &[]);
    }

    /// The README names every verdict, mechanism and outcome (in backticks) where it lists
    /// them.
    #[test]
    fn readme_names_every_vocabulary_name() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        let between = |from: &str, to: &str| -> String {
            let rest = &readme[readme.find(from).expect(from)..];
            rest[..rest.find(to).expect(to)].to_string()
        };
        let lists: [(String, &[&str]); 3] = [
            (
                between("Every flow gets a verdict", "A blocked verdict"),
                &Verdict::NAMES,
            ),
            (
                between("A blocked verdict carries a mechanism", "a\nconfidence"),
                &Mechanism::NAMES,
            ),
            (between("### Outcomes", "A SYN-ACK alone"), &Outcome::NAMES),
        ];
        for (text, names) in lists {
            for n in names {
                assert!(
                    text.contains(&format!("`{n}`")),
                    "README's list lacks `{n}`"
                );
            }
        }
    }
}

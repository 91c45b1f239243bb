//! `allowscope check-allowlist`: reads allowlist files, checks them against the catalog in
//! scope, writes the check (or the rules to add) and returns the exit code.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use clap::Args;

use super::{exit_code, fails, written, AuditOutput, Error, Exit};
use crate::text::escape_terminal;

/// Largest allowlist file read (a policy export of thousands of rules is a few MB).
const MAX_BYTES: u64 = 64 << 20;

pub const HELP: &str = "\
Formats (told from the content; --input-format to say):
  azure-firewall  an Azure Firewall policy's rule collection groups as JSON: an ARM template
                  (resources of type Microsoft.Network/firewallPolicies/ruleCollectionGroups,
                  such as `allowscope audit --rules azure-firewall-arm` writes), or the output of
                  `az network firewall policy rule-collection-group show` or `list`
  squid           squid.conf: `acl NAME dstdomain ...` (a leading dot is the domain and every
                  name under it), `acl NAME port ...`, `acl NAME method ...`, `http_access`
                  lines; HTTPS is a CONNECT to port 443, HTTP a request to port 80
  fqdn-list       one destination per line: a host name, `*.domain`, `.domain`, a URL, an
                  optional `:PORT` or `PROTO/PORT` (tcp/443), `#` comments
Several files are one allowlist: an entry is permitted when any of them lets it through (a
proxy for HTTPS and a firewall for the rest).

Matching: a catalog pattern `*.a.b` is permitted by `*.a.b` or a broader wildcard, never by
one name under it; an unset placeholder (<storage> without --storage) is permitted for the
labels the allowlist names there, and the report says which; protocol and port must agree
(an Https:443 application rule for TCP 443, network rules by TCP/UDP/Any and port ranges);
service tags are checked when the allowlist names any. What cannot be followed (FQDN tags,
IP groups, addresses, squid regular expressions, ACLs read from files) is listed, not guessed.

Exit codes:
  0  nothing at or above --fail-on was found
  1  something was (default: a required catalog entry is not permitted; with
     --fail-on unexpected-reached also a destination broader than needed or allowing nothing
     the catalog expects)
  2  a file could not be read or is not an allowlist, or a bad argument or catalog

Examples:
  allowscope check-allowlist policy.json
  az network firewall policy rule-collection-group list -g RG --policy-name P | allowscope check-allowlist -
  allowscope check-allowlist --storage mystorage --region eastus /etc/squid/squid.conf
  allowscope check-allowlist --rules azure-firewall-arm allowed-hosts.txt > add.json";

#[derive(Args, Debug)]
pub struct CheckAllowlistArgs {
    /// Allowlist files, or `-` for stdin
    #[arg(required = true, value_name = "FILE|-")]
    pub files: Vec<PathBuf>,
    /// The files' format [default: told from the content]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub input_format: Option<crate::allowlist::InputFormat>,
    #[command(flatten)]
    pub output: AuditOutput,
    /// Write the rules to add instead of the report: rules for every required catalog entry
    /// the allowlist does not permit, in a firewall's language (the exit code is the check's)
    #[arg(long, value_enum, value_name = "FIREWALL")]
    pub rules: Option<crate::report::rules::RulesFormat>,
    #[command(flatten)]
    pub catalog: crate::catalog::CatalogOptions,
}

/// Reads one file (or stdin), refusing what is too large to be an allowlist.
fn read_file(path: &PathBuf, shown: &str) -> Result<Vec<u8>, Error> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::Message(format!(
            "{}: {}",
            escape_terminal(shown),
            escape_terminal(&e.to_string())
        ))
    };
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        io::stdin()
            .lock()
            .take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(&e))?;
    } else {
        if path.is_dir() {
            return Err(fail(&"a directory, not an allowlist file"));
        }
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(&e))?;
    }
    if bytes.len() as u64 > MAX_BYTES {
        return Err(fail(&format!(
            "larger than {} MiB: not an allowlist",
            MAX_BYTES >> 20
        )));
    }
    Ok(bytes)
}

pub(super) fn run(args: &CheckAllowlistArgs) -> Result<Exit, Error> {
    if args.rules == Some(crate::report::rules::RulesFormat::Nftables) {
        return Err(Error::Message(
            "--rules nftables writes the addresses a capture saw, and an allowlist has none: \
             use azure-firewall, azure-firewall-arm, squid or fqdn-list"
                .into(),
        ));
    }
    // The catalog's error escapes its own text already.
    let catalog = args
        .catalog
        .load()
        .map_err(|e| Error::Message(e.to_string()))?;
    // A plain list's word is a service tag when it is one the catalog knows (or AzureCloud),
    // written as Azure writes tags: with a capital, or without a dot.
    let mut tags: Vec<String> = catalog
        .data()
        .service_tags
        .iter()
        .map(|t| {
            t.tag
                .strip_suffix(".<region>")
                .unwrap_or(&t.tag)
                .to_ascii_lowercase()
        })
        .collect();
    tags.push("azurecloud".into());
    let is_tag = |w: &str| {
        let l = w.to_ascii_lowercase();
        let known = tags.iter().any(|t| {
            l == *t
                || l.strip_prefix(t.as_str())
                    .and_then(|r| r.strip_prefix('.'))
                    .is_some_and(|r| !r.is_empty() && !r.contains('.'))
        });
        known && (!w.contains('.') || w.bytes().any(|b| b.is_ascii_uppercase()))
    };
    let mut lists = Vec::new();
    for path in &args.files {
        let shown = if path.as_os_str() == "-" {
            "stdin".to_string()
        } else {
            path.display().to_string()
        };
        let bytes = read_file(path, &shown)?;
        let list = crate::allowlist::read(&bytes, &shown, args.input_format, &is_tag)
            .map_err(|e| Error::Message(e.to_string()))?;
        lists.push(list);
    }
    let check = crate::allowlist::check(&lists, &catalog);
    let rules = crate::audit::rules::rules_for_needs(&check.needed());
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    written(match args.rules {
        Some(language) => crate::report::rules::write_rules_for(
            &mut out,
            &rules,
            language,
            crate::report::rules::Subject::Allowlist,
        ),
        None => crate::report::allowlist::write_check(&mut out, &check, &rules, args.output.format),
    })?;
    written(out.flush())?;
    let hit = fails(
        args.output.fail_on,
        check.verdicts().into_iter().map(|v| (v, false)),
        false,
    );
    Ok(exit_code(false, hit))
}

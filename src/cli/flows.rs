//! `allowscope flows` and `allowscope dns`: every flow, or every DNS lookup, of the inputs.

use std::io::{self, Write};

use super::inputs::{name_by_tags, progress_wanted, read_inputs};
use super::{exit_code, written, Error, Exit, FlowsArgs};
use crate::report::{escape_terminal, write_flows, FlowsFormat};

/// Which list `flows` writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum View {
    Flows,
    Dns,
}

pub(super) fn flows(args: &FlowsArgs, view: View) -> Result<Exit, Error> {
    let tags = args.tags.load()?;
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
        View::Flows => write_flows(&mut out, &mut sink, &results, args.format),
        View::Dns => {
            crate::report::dns::write_dns(&mut out, &results, args.format).and_then(|_| {
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

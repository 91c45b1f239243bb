//! `allowscope ws`: websockets to compute instances, per connection and per instance.

use std::io::{self, Write};

use super::inputs::{catalog_and_inputs, with_threads};
use super::{exit_code, written, Error, Exit, WsArgs, WsFailOn};

pub(super) fn ws(args: &WsArgs) -> Result<Exit, Error> {
    with_threads(args.table.threads, || ws_in_pool(args))
}

fn ws_in_pool(args: &WsArgs) -> Result<Exit, Error> {
    let (catalog, read) = catalog_and_inputs(&args.catalog, &args.inputs, &args.table, args.quiet)?;
    let (results, failed) = (&read.results, read.any_failed());
    let mut err = io::stderr();
    for n in &read.notes {
        let _ = writeln!(err, "{n}");
    }
    let (conns, instances) = crate::audit::ws::websockets(results, &catalog);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    written(crate::report::ws::write_ws(
        &mut out,
        args.format,
        &conns,
        &instances,
        &super::audit::provenance("ws", &catalog, &args.table, &args.catalog, None),
    ))?;
    if !args.quiet {
        let _ = crate::report::write_summaries(&mut err, results);
    } else {
        // As `audit` does: quiet leaves out the summaries, never an input's error.
        for e in results.iter().filter_map(|r| r.summary.error.as_ref()) {
            let _ = writeln!(err, "error: {}", crate::report::escape_terminal(e));
        }
    }
    let problem =
        args.fail_on == WsFailOn::Problem && instances.iter().any(|i| i.problem != "healthy");
    Ok(exit_code(failed, problem))
}

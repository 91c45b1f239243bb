//! `allowscope ws`: websockets to compute instances, per connection and per instance.

use std::io::{self, Write};

use super::inputs::{catalog_and_inputs, with_threads};
use super::{exit_code, written, Error, WsArgs, WsFailOn};
use crate::report::FlowsFormat;

pub(super) fn ws(args: &WsArgs) -> Result<i32, Error> {
    with_threads(args.table.threads, || ws_in_pool(args))
}

fn ws_in_pool(args: &WsArgs) -> Result<i32, Error> {
    let (catalog, results, notes, failed) =
        catalog_and_inputs(&args.catalog, &args.inputs, &args.table, args.quiet)?;
    let mut err = io::stderr();
    for n in &notes {
        let _ = writeln!(err, "{n}");
    }
    let (conns, instances) = crate::audit::ws::websockets(&results, &catalog);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let w = match args.format {
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
        FlowsFormat::Table => crate::audit::ws::write_text(&mut out, &conns, &instances),
    };
    written(w.and_then(|()| out.flush()))?;
    if !args.quiet {
        let _ = crate::report::write_summaries(&mut err, &results);
    }
    let problem =
        args.fail_on == WsFailOn::Problem && instances.iter().any(|i| i.problem != "healthy");
    Ok(exit_code(failed, problem))
}

//! `allowscope audit`, and the report it shares with `allowscope live` ([`report_audit`]).

use std::io::{self, Write};

use super::inputs::{load_catalog, progress_wanted, read_inputs_into, with_threads};
use super::{exit_code, fails, written, AuditArgs, ColorWhen, Error, Exit};
use crate::pipeline::FileResult;
use crate::report::audit::FailedInput;
use crate::report::escape_terminal;

pub(super) fn audit(args: &AuditArgs, color: ColorWhen) -> Result<Exit, Error> {
    // Reading and judging both run on the `--threads` pool.
    with_threads(args.table.threads, || audit_in_pool(args, color))
}

/// The judged flows of one input into its Parquet file (`audit --parquet`); the first error
/// is kept in `failed` (the command then ends with it).
struct FlowsToParquet {
    w: Option<crate::report::parquet::FlowParquet>,
    failed: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl FlowsToParquet {
    fn fail(&mut self, e: io::Error) {
        self.w = None;
        let mut f = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        f.get_or_insert_with(|| e.to_string());
    }
}

impl crate::audit::JudgedSink for FlowsToParquet {
    fn rows(&mut self, flows: &[Box<crate::proto::Described>], judged: &[crate::audit::Judged]) {
        if let Some(w) = self.w.as_mut() {
            if let Err(e) = w.flows(flows, judged) {
                self.fail(e);
            }
        }
    }

    fn lookup(&mut self, l: &crate::names::lookups::Lookup<'_>) {
        if let Some(w) = self.w.as_mut() {
            if let Err(e) = w.lookup(l) {
                self.fail(e);
            }
        }
    }

    fn end(mut self: Box<Self>) {
        if let Some(w) = self.w.take() {
            if let Err(e) = w.close() {
                self.fail(e);
            }
        }
    }
}

fn audit_in_pool(args: &AuditArgs, color: ColorWhen) -> Result<Exit, Error> {
    let tags = args.tags.load()?;
    let catalog = load_catalog(&args.catalog)?;
    let provenance = provenance(
        "audit",
        &catalog,
        &args.table,
        &args.catalog,
        args.tags.service_tags.as_deref(),
    );
    let parquet_failed = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    // Each input's flows are judged and folded as they finish; they stay only for NDJSON,
    // which lists every one.
    let keep = args.output.format == crate::report::audit::AuditFormat::Ndjson;
    let (read, folds) = read_inputs_into(
        &args.inputs,
        &args.table,
        progress_wanted(args.quiet),
        false,
        |k, input| {
            let fold =
                crate::audit::InputFold::new(k, input.display(), &catalog, tags.as_ref(), keep);
            Some(match &args.parquet {
                Some(dir) => {
                    let mut sink = FlowsToParquet {
                        w: None,
                        failed: parquet_failed.clone(),
                    };
                    match crate::report::parquet::FlowParquet::create(
                        dir,
                        k,
                        &input.display(),
                        &provenance,
                    ) {
                        Ok(w) => sink.w = Some(w),
                        Err(e) => sink.fail(e),
                    }
                    fold.with_rows(Box::new(sink))
                }
                None => fold,
            })
        },
    );
    read.some_read()?;
    // Each fold finishes at its input's end (the sinks come in the results' order).
    let folds = folds
        .into_iter()
        .zip(&read.results)
        .filter_map(|(f, r)| Some(f?.finish(r.summary.latest_ns)))
        .collect();
    let (mut results, notes, failed) = (read.results, read.notes, read.failed);
    let opts = ReportOpts {
        format: args.output.format,
        fail_on: args.output.fail_on,
        quiet: args.quiet,
        per_file: args.per_file,
        rules: args.rules,
        show_unexercised: args.show_unexercised,
        color,
        html: args.html.as_deref(),
        provenance: Some(&provenance),
        parquet: args.parquet.as_deref(),
    };
    if let Some(e) = parquet_failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        return Err(Error::Message(format!(
            "--parquet: {}",
            escape_terminal(&e)
        )));
    }
    let code = report_audit(&mut results, Some(folds), &notes, &failed, &catalog, &opts);
    // The process ends here: freeing every flow and DNS message one by one would only cost time.
    std::mem::forget(results);
    code
}

/// The provenance of a run of `command` with these options (see [`crate::provenance`]).
pub(super) fn provenance(
    command: &str,
    catalog: &crate::catalog::Catalog,
    table: &super::TableArgs,
    options: &crate::catalog::CatalogOptions,
    service_tags: Option<&std::path::Path>,
) -> crate::provenance::Provenance {
    crate::provenance::Provenance::of_run(
        command,
        Some(catalog),
        crate::provenance::Options::of(&table.config()).with_catalog(options, service_tags),
        &crate::provenance::labels(&table.labels),
    )
}

/// How `report_audit` writes and judges: the audit-like options of `audit` and `live`.
#[derive(Clone, Copy)]
pub(super) struct ReportOpts<'a> {
    pub format: crate::report::audit::AuditFormat,
    pub fail_on: crate::audit::FailOn,
    pub quiet: bool,
    pub per_file: bool,
    /// Write the rules to add in this language instead of the report.
    pub rules: Option<crate::report::rules::RulesFormat>,
    /// List the required entries nothing exercised (else a count).
    pub show_unexercised: bool,
    /// `--color`: whether the text report is coloured.
    pub color: ColorWhen,
    /// `--html FILE`: the HTML page written there too.
    pub html: Option<&'a std::path::Path>,
    /// What produced the audit, for its JSON document.
    pub provenance: Option<&'a crate::provenance::Provenance>,
    /// `--parquet DIR`: the findings and coverage tables written there too.
    pub parquet: Option<&'a std::path::Path>,
}

/// Audits read inputs against the catalog, writes the report to stdout (and notes, summaries
/// and errors to stderr) and returns the exit code. `folds`: the inputs' flows folded as they
/// were read (one per result), else the flows are in `results`. `failed` are the inputs that
/// failed (the report then says the audit is incomplete, and the exit code is 2). Shared by
/// `audit` and `live`.
pub(super) fn report_audit(
    results: &mut [FileResult],
    folds: Option<Vec<crate::audit::InputAudit>>,
    notes: &[String],
    failed: &[FailedInput],
    catalog: &crate::catalog::Catalog,
    opts: &ReportOpts<'_>,
) -> Result<Exit, Error> {
    let ReportOpts {
        format,
        fail_on,
        quiet,
        per_file,
        rules,
        show_unexercised,
        color,
        html,
        provenance,
        parquet,
    } = *opts;
    let mut err = io::stderr();
    for n in notes {
        let _ = writeln!(err, "{n}");
    }
    let (mut report, judged) = match folds {
        Some(folds) => crate::audit::audit_inputs(folds, results, catalog),
        None => crate::audit::audit(results, catalog),
    };
    report.provenance = provenance.cloned();
    if let (Some(dir), Some(p)) = (parquet, provenance) {
        crate::report::parquet::write_tables(dir, &report, p).map_err(|e| {
            Error::Message(format!("--parquet: {}", escape_terminal(&e.to_string())))
        })?;
    }
    let results: &[FileResult] = results;
    let stdout = io::stdout();
    let color = format == crate::report::audit::AuditFormat::Text
        && color.wanted(std::io::IsTerminal::is_terminal(&stdout));
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    written(match rules {
        Some(language) => crate::report::rules::write_rules_of_audit(
            &mut out,
            &report.rules,
            language,
            failed.len(),
        ),
        None => crate::report::audit::write_audit(
            &mut out,
            &report,
            &judged,
            results,
            failed,
            format,
            color,
            per_file,
            show_unexercised,
        ),
    })?;
    if let Some(path) = html {
        write_html(
            path,
            &report,
            &judged,
            results,
            failed,
            per_file,
            show_unexercised,
        )?;
    }
    if !quiet && format != crate::report::audit::AuditFormat::Json {
        let _ = crate::report::write_summaries(&mut err, results);
    } else {
        for e in results.iter().filter_map(|r| r.summary.error.as_ref()) {
            let _ = writeln!(err, "error: {}", escape_terminal(e));
        }
    }
    if !failed.is_empty() {
        return Ok(exit_code(true, false));
    }
    let hit = fails(
        fail_on,
        report
            .findings
            .iter()
            .chain(report.dns_failures.iter())
            .map(|f| {
                let weak =
                    f.mechanism == Some(crate::audit::Mechanism::LocalBlock) || f.name_guessed;
                (f.verdict.name(), weak)
            }),
        report
            .websockets
            .instances
            .iter()
            .any(|i| i.problem != "healthy"),
    );
    // Both callers end the process after the report: freeing the audit and the judgement of
    // every flow one by one would only cost time.
    std::mem::forget(report);
    std::mem::forget(judged);
    Ok(exit_code(false, hit))
}

/// `--html FILE`: the audit's HTML page, written beside the chosen format.
fn write_html(
    path: &std::path::Path,
    report: &crate::audit::Audit,
    judged: &[Vec<crate::audit::Judged>],
    results: &[FileResult],
    failed: &[FailedInput],
    per_file: bool,
    show_unexercised: bool,
) -> Result<(), Error> {
    let fail = |e: io::Error| {
        Error::Message(format!(
            "{}: {e}",
            escape_terminal(&path.display().to_string())
        ))
    };
    let mut file = io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    crate::report::audit::write_audit(
        &mut file,
        report,
        judged,
        results,
        failed,
        crate::report::audit::AuditFormat::Html,
        false,
        per_file,
        show_unexercised,
    )
    .and_then(|()| file.flush())
    .map_err(fail)
}

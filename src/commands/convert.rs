//! `barge convert-schema`: DDL from one dialect to another, plus an
//! assessment report.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::error::{Error, Result};
use crate::model::Dialect;
use crate::commands::output;
use crate::schema::convert::ConvertOptions;
use crate::schema::naming::{IdentCase, NamingOptions};
use crate::schema::report::{ReportFormat, Status};
use crate::schema::report_html::{self, Context, SourceBlock};
use crate::schema::rules::RuleSet;

#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Source dialect: mysql (or mariadb), postgres, sqlite, mssql, oracle
    #[arg(long, value_parser = crate::schema::parse_dialect)]
    pub from: Dialect,
    /// Target dialect: postgres, mysql (or mariadb), sqlite
    #[arg(long, value_parser = parse_target)]
    pub to: Dialect,
    /// DDL script to convert (a dump or a schema script), or - for stdin
    pub input: PathBuf,
    /// Write the converted DDL here instead of stdout
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write the assessment report here; the format follows the extension:
    /// .html (one self-contained page with charts, filterable action items
    /// and the source each item came from), .md (Markdown) or .json
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub schema: SchemaArgs,
    /// Put every object in this target schema (same as --schema-map '*=NAME')
    #[arg(long, value_name = "NAME")]
    pub target_schema: Option<String>,
    /// Write the old→new name mapping as JSON, for later steps
    #[arg(long, value_name = "FILE")]
    pub name_map: Option<PathBuf>,
    /// Exit with code 3 if any object needs manual action
    #[arg(long)]
    pub strict: bool,
    /// Run the output on this target database and undo it (a rolled-back
    /// transaction on PostgreSQL, a scratch database dropped afterwards on
    /// MySQL/MariaDB); what it refuses is reported as manual, with the
    /// server's message. SQLite output is always checked in memory.
    #[arg(long, value_name = "TARGET_URL")]
    pub check: Option<String>,
}

/// How a schema is converted: shared by `convert-schema` and `migrate`.
#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Override a type mapping, e.g. 'tinyint(1)=boolean' or 'orders.status=text' (repeatable)
    #[arg(long = "cast", value_name = "FROM=TO")]
    pub casts: Vec<String>,
    /// Extra type-mapping rules (TOML, same format as dialects/*.toml); they win over the built-in ones
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// How identifiers are spelled on the target
    #[arg(long, value_enum, default_value_t = IdentCase::Lower)]
    pub identifiers: IdentCase,
    /// Map a source schema to a target schema, e.g. 'dbo=app' or 'sales=' for none (repeatable)
    #[arg(long = "schema-map", value_name = "FROM=TO")]
    pub schema_map: Vec<String>,
}

impl SchemaArgs {
    /// Rules and naming for one source/target pair.
    pub fn options(&self, source: Dialect, target: Dialect, into_schema: Option<&str>) -> Result<ConvertOptions> {
        let rules = RuleSet::load(source, target, &self.casts, &self.rules)?;
        let naming = naming_options(self.identifiers, &self.schema_map, into_schema)?;
        Ok(ConvertOptions { source, target, rules, naming })
    }
}

fn parse_target(s: &str) -> std::result::Result<Dialect, String> {
    let d: Dialect = s.parse()?;
    if !d.is_target() {
        return Err(format!("{d} is a source only; targets are postgres, mysql (mariadb) and sqlite"));
    }
    Ok(d)
}

/// The naming options from the command line (shared with `migrate`).
pub fn naming_options(case: IdentCase, schema_map: &[String], target_schema: Option<&str>) -> Result<NamingOptions> {
    let mut map = Vec::new();
    for m in schema_map {
        let (a, b) = m
            .split_once('=')
            .ok_or_else(|| Error::usage(format!("--schema-map `{m}`: expected FROM=TO, e.g. dbo=public")))?;
        map.push((a.trim().to_string(), b.trim().to_string()));
    }
    if let Some(t) = target_schema {
        map.push(("*".into(), t.to_string()));
    }
    Ok(NamingOptions { case, schema_map: map })
}

/// Reads a script as text: UTF-8, or UTF-16 with a byte-order mark (as
/// SSMS saves scripts). Invalid UTF-8 is replaced and reported, not fatal.
pub fn read_script_file(path: &Path) -> Result<(String, String)> {
    let (bytes, label) = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b).map_err(|source| Error::Read { path: path.into(), source })?;
        (b, "<stdin>".to_string())
    } else {
        let b = std::fs::read(path).map_err(|source| Error::Read { path: path.into(), source })?;
        (b, path.display().to_string())
    };
    let text = decode(&bytes, &label);
    Ok((text, label))
}

fn decode(bytes: &[u8], label: &str) -> String {
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| if le { u16::from_le_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], c[1]]) })
            .collect();
        String::from_utf16_lossy(&units)
    };
    if bytes.starts_with(&[0xFF, 0xFE]) {
        return utf16(true);
    }
    if bytes.starts_with(&[0xFE, 0xFF]) {
        return utf16(false);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            output::warn(format!(
                "{label}:{line}: the input is not valid UTF-8; invalid bytes were replaced with U+FFFD. Re-export it as UTF-8 (e.g. mysqldump --default-character-set=utf8mb4) if names or literals look wrong."
            ));
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

pub fn run(args: ConvertArgs) -> Result<ExitCode> {
    let report_format = match &args.report {
        None => None,
        Some(p) => Some(ReportFormat::of(p).ok_or_else(|| {
            Error::usage(format!("--report {}: the extension must be .html (a page), .md (Markdown) or .json", p.display()))
        })?),
    };
    let opts = args.schema.options(args.from, args.to, args.target_schema.as_deref())?;
    let (text, label) = read_script_file(&args.input)?;
    let mut result = crate::schema::convert_script(&text, &label, &opts);
    if result.recognized == 0 {
        let what = if result.statements == 0 {
            "it holds no SQL statement".to_string()
        } else {
            format!("none of its {} statements is {} SQL barge recognises", result.statements, args.from)
        };
        return Err(Error::usage(format!("{label}: {what}, so there is nothing to convert"))
            .with_hint(format!("check that the file is a schema script or dump and that --from {} is its dialect", args.from)));
    }
    if let Some(err) = &result.check_error {
        output::warn(format!("the {} output could not be checked in memory: {err}; the report has not been checked against the target", args.to));
    }
    if let Some(url) = &args.check {
        let refused = result.check_against(url)?;
        output::info(format!("checked on the target: {refused} statements refused (reported as manual, kept as comments in the output)"));
    }
    let report = &result.converted.report;

    if let Some(path) = &args.output {
        write_file(path, result.ddl.as_bytes())?;
    } else if !output::get().json {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(result.ddl.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|source| Error::Write { path: "-".into(), source })?;
    }
    if let (Some(path), Some(fmt)) = (&args.report, report_format) {
        match fmt {
            ReportFormat::Markdown => write_file(path, report.to_markdown().as_bytes())?,
            ReportFormat::Json => {
                let f = std::fs::File::create(path).map_err(|source| Error::Write { path: path.clone(), source })?;
                report.write_json(f).map_err(|source| Error::Write { path: path.clone(), source })?;
            }
            ReportFormat::Html => {
                // Sections without a line (a statement the target refused on
                // --check) are shown as blocks; the rest are lines of the script.
                let sources = result.converted.target.manual.iter().filter(|m| m.line == 0).map(|m| SourceBlock { title: m.title.clone(), text: m.text.clone() }).collect();
                let ctx = Context { title: "Schema conversion assessment", script: Some(&text), sources, ..Default::default() };
                write_file(path, report_html::render(report, &ctx).as_bytes())?;
            }
        }
    }
    if let Some(path) = &args.name_map {
        let body = serde_json::to_string_pretty(&result.converted.names.to_json()).unwrap_or_default();
        write_file(path, body.as_bytes())?;
    }

    let refused_tables = if result.converted.target.refused.is_empty() {
        0
    } else {
        crate::schema::ddl::emitted(&result.converted.target, &result.converted.names)
            .iter()
            .enumerate()
            .filter(|(i, e)| e.table.is_some() && result.converted.target.refused.iter().any(|(r, _)| r == i))
            .count()
    };
    let tables = result.converted.target.tables.len() - refused_tables;
    let manual = report.count(Status::Manual);
    let warnings = report.count(Status::Warning);
    if output::get().json {
        let mut v = serde_json::json!({
            "ok": true,
            "from": args.from,
            "to": args.to,
            "tables": tables,
            "automatic_percent": crate::schema::report::floor1(report.overall_percent()),
            "warnings": warnings,
            "manual": manual,
            "output": args.output,
            "report": args.report,
        });
        if args.output.is_none() {
            v["ddl"] = serde_json::Value::String(result.ddl.clone());
        }
        crate::outln!("{v}");
    } else {
        output::info(format!(
            "converted {tables} tables from {} to {}: {} automatic, {warnings} warnings, {manual} need manual action{}",
            args.from,
            args.to,
            crate::schema::report::percent_text(report.overall_percent()),
            match &args.report {
                Some(p) => format!(" (see {})", p.display()),
                None if manual + warnings > 0 => " (add --report FILE.html or FILE.md for details)".to_string(),
                None => String::new(),
            }
        ));
    }
    let failed = args.strict && manual > 0;
    // The process ends here: freeing a schema of thousands of tables
    // piece by piece would only delay the exit.
    std::mem::forget(result);
    if failed {
        return Err(Error::Mismatch(format!("{manual} objects need manual action (--strict)")));
    }
    Ok(ExitCode::SUCCESS)
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| Error::Write { path: path.into(), source })
}

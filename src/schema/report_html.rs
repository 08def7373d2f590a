//! The assessment report as one self-contained HTML page, for a DBA to
//! read and hand on: the summary, a chart of objects per kind and status,
//! the effort by kind, the action items (filterable), the type mappings
//! and the source each item came from. Rendered from the same [`Report`]
//! as the Markdown and JSON forms.
//!
//! The page loads nothing: its style and its one small script are inline,
//! the chart is inline SVG, and a Content-Security-Policy allows only that
//! style and that script (by hash), so a browser makes no request and runs
//! nothing else even if some text were to slip through unescaped. Every
//! piece of input text (names, messages, SQL) goes through [`escape`];
//! the script reads data only from escaped `data-` attributes.
//! With scripts off, the filters stay hidden and every item shows.

use super::report::percent_text as percent;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::report::{code_by_name, human_minutes, Effort, Item, ObjectKind, Report, Status};

/// Source text of one object, for a report without a script to point
/// into (a migration reads its source from a database): a routine's body,
/// a view's query, a statement the target refused.
#[derive(Debug, Clone)]
pub struct SourceBlock {
    pub title: String,
    pub text: String,
}

/// One kind of object in a migration: how many the source has and how
/// many are on the target.
#[derive(Debug, Clone)]
pub struct TargetCount {
    pub kind: String,
    pub source: usize,
    pub target: usize,
    pub note: String,
}

/// What the page shows besides the [`Report`]: where the items came from.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    /// Page heading, e.g. "Schema conversion assessment".
    pub title: &'a str,
    /// The input script, when the report came from one: items link to
    /// its lines.
    pub script: Option<&'a str>,
    pub sources: Vec<SourceBlock>,
    pub on_target: Vec<TargetCount>,
    /// Items for a person that are not report items (a migration's
    /// extensions, comments the target cannot hold): kind, object, reason.
    pub also: Vec<(String, String, String)>,
}

/// Above this size the script is not embedded whole: only the lines
/// items point at, with a few lines around them (a dump with its data
/// would otherwise make a page no browser opens).
const WHOLE_SCRIPT_BYTES: usize = 4 << 20;
/// Lines shown before and after an item's line in an excerpt.
const CONTEXT_LINES: usize = 4;
/// Longer source lines are cut (a one-line multi-row INSERT).
const MAX_LINE_CHARS: usize = 2000;

const STYLE: &str = r#"
:root{--ok:#2e7d32;--warn:#b26a00;--manual:#c62828;--ink:#1c2430;--mute:#5b6675;--line:#d9dee5;--bg:#f6f8fa}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);margin:0;background:#fff}
header{background:#1f3a5f;color:#fff;padding:20px 32px}
header h1{margin:0 0 4px;font-size:24px}
header p{margin:0;opacity:.85}
main{padding:8px 32px 40px;max-width:1200px}
main>section{content-visibility:auto;contain-intrinsic-size:auto 900px}
h2{font-size:19px;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
nav{margin:12px 0 0;font-size:14px}nav a{color:#cfe0ff;margin-right:14px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 16px;min-width:150px;background:var(--bg)}
.card b{display:block;font-size:26px}
.card.big b{font-size:34px}
.card span{color:var(--mute);font-size:13px}
.ok{color:var(--ok)}.warn{color:var(--warn)}.manual{color:var(--manual)}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:14px}
th,td{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{background:var(--bg);position:sticky;top:0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
td.obj,td.src code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}
td.obj{overflow-wrap:anywhere;min-width:13em}
td.at{white-space:nowrap}
.pill{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;color:#fff;white-space:nowrap}
.pill.s-manual{background:var(--manual)}.pill.s-warning{background:var(--warn)}.pill.s-converted{background:var(--ok)}
.none{color:var(--mute);font-style:italic}
.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:end;margin:8px 0;padding:10px;background:var(--bg);border:1px solid var(--line);border-radius:8px}
.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--mute)}
.filters select,.filters input{font:inherit;padding:3px 6px;min-width:140px}
#shown{margin-left:auto;color:var(--mute);font-size:13px}
svg text{font:13px system-ui,sans-serif}
#kind-chart{max-width:100%;height:auto}
pre.src{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:6px 0;overflow-x:auto;margin:8px 0}
pre.src span{display:block;padding:0 10px 0 0;white-space:pre}
pre.src span.hit{background:#fdf0d5;box-shadow:inset 3px 0 #e09b00}
pre.src span:target{background:#fff3c4;outline:1px solid #e0b400}
pre.src a{display:inline-block;width:5.5em;padding-right:1em;text-align:right;color:var(--mute);text-decoration:none;user-select:none}
pre.src i{display:block;color:var(--mute);padding-left:6.5em}
section.block{margin:14px 0}section.block:target h3{background:#fff3c4}
section.block pre.src{padding:6px 12px;white-space:pre}
section.block h3{font-size:14px;margin:0;font-family:ui-monospace,Menlo,Consolas,monospace}
footer{color:var(--mute);font-size:12px;padding:0 32px 24px}
"#;

/// Shows the filters (hidden so that a page without scripts shows every
/// item and no controls that do nothing), takes initial values from the
/// address's query, and applies them. It reads the
/// rows' escaped `data-` attributes; no input text is part of the script.
const SCRIPT: &str = r#"
(function () {
  var form = document.getElementById('filters');
  var rows = Array.prototype.slice.call(document.querySelectorAll('#items tbody tr'));
  var shown = document.getElementById('shown');
  function apply() {
    var code = form.elements.code.value, kind = form.elements.kind.value, status = form.elements.status.value;
    var text = form.elements.text.value.toLowerCase();
    var n = 0;
    rows.forEach(function (r) {
      var ok = (!code || r.dataset.code === code) && (!kind || r.dataset.kind === kind) &&
        (!status || r.dataset.status === status) && (!text || r.textContent.toLowerCase().indexOf(text) >= 0);
      r.hidden = !ok;
      if (ok) n++;
    });
    shown.textContent = n + ' of ' + rows.length + ' items shown';
  }
  // Filters can come with the address (report.html?code=B170&kind=view),
  // so a filtered view can be linked; a value no option has selects none.
  var query = new URLSearchParams(location.search);
  ['code', 'kind', 'status', 'text'].forEach(function (k) {
    if (query.has(k)) form.elements[k].value = query.get(k);
  });
  form.hidden = false;
  form.addEventListener('input', apply);
  form.addEventListener('change', apply);
  form.addEventListener('submit', function (e) { e.preventDefault(); });
  apply();
})();
"#;

/// Text made safe for HTML element content and for double- or
/// single-quoted attribute values: the five characters that can end a
/// text run or an attribute become entities. Written out rather than
/// taken from a crate: it is this one function, tested below.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    escape_into(&mut out, s);
    out
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

fn csp_hash(text: &str) -> String {
    format!("'sha256-{}'", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(text.as_bytes())))
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Converted => "converted",
        Status::Warning => "warning",
        Status::Manual => "manual",
    }
}

fn effort_label(e: Effort) -> &'static str {
    match e {
        Effort::None => "none",
        Effort::Low => "low",
        Effort::Medium => "medium",
        Effort::High => "high",
    }
}

/// Where an item's source is on the page.
enum Anchor {
    Line(usize),
    Block(usize),
    None,
}

/// The whole page.
pub fn render(report: &Report, ctx: &Context) -> String {
    let summary = report.summary();
    let script_lines: Vec<&str> = ctx.script.map(|s| s.lines().collect()).unwrap_or_default();
    // Manual items first, then warnings, each in source order.
    let mut action: Vec<&Item> = report.items.iter().filter(|i| i.status != Status::Converted).collect();
    action.sort_by_key(|i| (std::cmp::Reverse(i.status), i.line == 0, i.line));
    let anchors: Vec<Anchor> = action.iter().map(|i| anchor_for(i, script_lines.len(), &ctx.sources)).collect();

    let mut h = String::with_capacity(64 * 1024 + report.items.len() * 300 + ctx.script.map_or(0, |s| s.len() * 2));
    let src = report.source.map(|d| d.name()).unwrap_or("?");
    let dst = report.target.map(|d| d.name()).unwrap_or("?");
    let title = format!("{}: {src} → {dst}", if ctx.title.is_empty() { "Schema conversion assessment" } else { ctx.title });
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src {}; script-src {}; img-src data:\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        csp_hash(STYLE),
        csp_hash(SCRIPT),
        escape(&title)
    );
    let _ = write!(h, "<header><h1>{}</h1><p>Source: <code>{}</code></p>", escape(&title), escape(&report.input));
    h.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#chart\">Objects by kind</a><a href=\"#effort\">Effort</a><a href=\"#action-items\">Action items</a><a href=\"#mappings\">Type mappings</a><a href=\"#source\">Source</a></nav></header>\n<main>\n");

    summary_section(&mut h, report, &summary, action.len());
    chart_section(&mut h, &summary);
    if !ctx.on_target.is_empty() {
        on_target_section(&mut h, &ctx.on_target);
    }
    effort_section(&mut h, &action);
    items_section(&mut h, &action, &anchors, &ctx.also);
    mappings_section(&mut h, report);
    skipped_section(&mut h, report);
    source_section(&mut h, report, ctx, &script_lines, &action);

    let _ = write!(h, "</main>\n<footer>Written by barge {}. This page is self-contained: it loads nothing from the network.</footer>\n", env!("CARGO_PKG_VERSION"));
    let _ = write!(h, "<script>{SCRIPT}</script>\n</body></html>\n");
    h
}

fn anchor_for(item: &Item, script_lines: usize, sources: &[SourceBlock]) -> Anchor {
    if item.line > 0 && item.line <= script_lines {
        return Anchor::Line(item.line);
    }
    let o = item.object.as_str();
    if o.is_empty() {
        return Anchor::None;
    }
    // Block titles read "<kind> <name>" or "<kind> <name>: why".
    let names = |t: &str| t == o || t.ends_with(&format!(" {o}")) || t.contains(&format!(" {o}:")) || t.starts_with(&format!("{o}:"));
    match sources.iter().position(|b| names(&b.title)) {
        Some(i) => Anchor::Block(i),
        None => Anchor::None,
    }
}

struct Totals {
    objects: usize,
    converted: usize,
    warning: usize,
    manual: usize,
}

fn totals(summary: &BTreeMap<ObjectKind, super::report::KindSummary>) -> Totals {
    let mut t = Totals { objects: 0, converted: 0, warning: 0, manual: 0 };
    for s in summary.values() {
        t.objects += s.total;
        t.converted += s.converted;
        t.warning += s.warning;
        t.manual += s.manual;
    }
    t
}

fn summary_section(h: &mut String, report: &Report, summary: &BTreeMap<ObjectKind, super::report::KindSummary>, actions: usize) {
    let t = totals(summary);
    h.push_str("<section id=\"summary\"><h2>Summary</h2>\n<div class=\"cards\">");
    let _ = write!(h, "<div class=\"card big\"><b>{}</b><span>converted automatically</span></div>", percent(report.overall_percent()));
    let _ = write!(h, "<div class=\"card\"><b>{}</b><span>objects</span></div>", t.objects);
    let _ = write!(h, "<div class=\"card\"><b class=\"ok\">{}</b><span>converted</span></div>", t.converted);
    let _ = write!(h, "<div class=\"card\"><b class=\"warn\">{}</b><span>converted with warning</span></div>", t.warning);
    let _ = write!(h, "<div class=\"card\"><b class=\"manual\">{}</b><span>need manual action</span></div>", t.manual);
    let _ = write!(h, "<div class=\"card\"><b>{}</b><span>estimated manual effort</span></div>", escape(&human_minutes(report.manual_minutes())));
    h.push_str("</div>\n");
    let _ = writeln!(
        h,
        "<p id=\"summary-text\">{} of {} objects converted automatically: {} converted, {} converted with a warning, {} need manual action. {} action items, about {} of work by hand.</p>",
        percent(report.overall_percent()),
        t.objects,
        t.converted,
        t.warning,
        t.manual,
        actions,
        escape(&human_minutes(report.manual_minutes()))
    );
    h.push_str("<p class=\"none\">Each object counts once, at its worst status; the action items below list every finding.</p></section>\n");
}

/// Stacked horizontal bars, one per kind, each the share of that kind's
/// objects per status (the total is written beside it): kinds of very
/// different sizes stay readable side by side.
fn chart_section(h: &mut String, summary: &BTreeMap<ObjectKind, super::report::KindSummary>) {
    h.push_str("<section id=\"chart\"><h2>Objects by kind and status</h2>\n");
    if summary.is_empty() {
        h.push_str("<p class=\"none\">No objects.</p></section>\n");
        return;
    }
    const LABEL: f64 = 120.0;
    const BAR: f64 = 560.0;
    const ROW: f64 = 30.0;
    let width = LABEL + BAR + 160.0;
    let height = ROW * summary.len() as f64 + 40.0;
    let _ = writeln!(
        h,
        "<svg id=\"kind-chart\" role=\"img\" aria-label=\"objects per kind and status\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (row, (kind, s)) in summary.iter().enumerate() {
        let y = row as f64 * ROW + 4.0;
        let _ = write!(h, "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>", LABEL - 8.0, y + 16.0, escape(kind.label()));
        let mut x = LABEL;
        for (status, n, fill) in [(Status::Converted, s.converted, "#2e7d32"), (Status::Warning, s.warning, "#e09b00"), (Status::Manual, s.manual, "#c62828")] {
            if n == 0 {
                continue;
            }
            let w = BAR * n as f64 / s.total.max(1) as f64;
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"22\" fill=\"{fill}\" data-kind=\"{}\" data-status=\"{}\" data-count=\"{n}\"><title>{}: {n} {}</title></rect>",
                escape(kind.label()),
                status_class(status),
                escape(kind.label()),
                status.label()
            );
            let label = n.to_string();
            if w >= 8.0 * label.len() as f64 + 6.0 {
                let _ = write!(h, "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" fill=\"#fff\">{label}</text>", x + w / 2.0, y + 16.0);
            }
            x += w;
        }
        let _ = writeln!(h, "<text x=\"{}\" y=\"{}\" fill=\"#5b6675\">{} · {} auto</text>", LABEL + BAR + 8.0, y + 16.0, s.total, percent(s.automatic_percent));
    }
    let ly = ROW * summary.len() as f64 + 18.0;
    let mut lx = LABEL;
    for (label, fill) in [("converted", "#2e7d32"), ("converted with warning", "#e09b00"), ("needs manual action", "#c62828")] {
        let _ = write!(h, "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{fill}\"></rect><text x=\"{}\" y=\"{}\">{label}</text>", ly - 10.0, lx + 16.0, ly);
        lx += 16.0 + 8.0 * label.len() as f64 + 16.0;
    }
    h.push_str("</svg>\n");
    h.push_str("<table id=\"kinds\"><thead><tr><th>kind</th><th class=\"n\">objects</th><th class=\"n\">converted</th><th class=\"n\">with warning</th><th class=\"n\">manual</th><th class=\"n\">automatic</th></tr></thead><tbody>\n");
    for (kind, s) in summary {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(kind.label()),
            s.total,
            s.converted,
            s.warning,
            s.manual,
            percent(s.automatic_percent)
        );
    }
    h.push_str("</tbody></table></section>\n");
}

fn on_target_section(h: &mut String, rows: &[TargetCount]) {
    h.push_str("<section id=\"on-target\"><h2>Objects on the target</h2>\n<table><thead><tr><th>kind</th><th class=\"n\">in the source</th><th class=\"n\">on the target</th><th>note</th></tr></thead><tbody>\n");
    for r in rows {
        let _ = writeln!(h, "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>", escape(&r.kind), r.source, r.target, escape(&r.note));
    }
    h.push_str("</tbody></table></section>\n");
}

fn effort_section(h: &mut String, action: &[&Item]) {
    #[derive(Default)]
    struct Row {
        items: usize,
        by_effort: [usize; 4],
        minutes: u32,
    }
    let mut rows: BTreeMap<ObjectKind, Row> = BTreeMap::new();
    for i in action {
        let r = rows.entry(i.kind).or_default();
        r.items += 1;
        r.by_effort[i.effort as usize] += 1;
        r.minutes += i.effort.minutes();
    }
    h.push_str("<section id=\"effort\"><h2>Effort by kind</h2>\n");
    if rows.is_empty() {
        h.push_str("<p>Nothing to do by hand.</p></section>\n");
        return;
    }
    let _ = writeln!(
        h,
        "<p class=\"none\">Rough estimates per item: low {} min (review and accept), medium {} min (rewrite an expression or a view), high {} h (port procedural code).</p>",
        Effort::Low.minutes(),
        Effort::Medium.minutes(),
        Effort::High.minutes() / 60
    );
    h.push_str("<table><thead><tr><th>kind</th><th class=\"n\">action items</th><th class=\"n\">low</th><th class=\"n\">medium</th><th class=\"n\">high</th><th class=\"n\">estimated time</th></tr></thead><tbody>\n");
    let mut total = Row::default();
    for (kind, r) in &rows {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(kind.label()),
            r.items,
            r.by_effort[Effort::Low as usize],
            r.by_effort[Effort::Medium as usize],
            r.by_effort[Effort::High as usize],
            escape(&human_minutes(r.minutes))
        );
        total.items += r.items;
        total.minutes += r.minutes;
        for e in 0..4 {
            total.by_effort[e] += r.by_effort[e];
        }
    }
    let _ = writeln!(
        h,
        "</tbody><tfoot><tr><th>total</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th><th class=\"n\">{}</th></tr></tfoot></table></section>",
        total.items,
        total.by_effort[Effort::Low as usize],
        total.by_effort[Effort::Medium as usize],
        total.by_effort[Effort::High as usize],
        escape(&human_minutes(total.minutes))
    );
}

fn items_section(h: &mut String, action: &[&Item], anchors: &[Anchor], also: &[(String, String, String)]) {
    h.push_str("<section id=\"action-items\"><h2>Action items</h2>\n");
    if action.is_empty() && also.is_empty() {
        h.push_str("<p>None: every object converted without remarks.</p>");
    }
    if !action.is_empty() {
        let codes: std::collections::BTreeSet<&str> = action.iter().map(|i| i.code.as_str()).filter(|c| !c.is_empty()).collect();
        let kinds: std::collections::BTreeSet<ObjectKind> = action.iter().map(|i| i.kind).collect();
        h.push_str("<form id=\"filters\" class=\"filters\" hidden><label>code<select name=\"code\"><option value=\"\">all codes</option>");
        for c in &codes {
            let title = code_by_name(c).map(|c| c.title).unwrap_or("");
            let _ = write!(h, "<option value=\"{0}\">{0} {1}</option>", escape(c), escape(&shorten(title, 48)));
        }
        h.push_str("</select></label><label>kind<select name=\"kind\"><option value=\"\">all kinds</option>");
        for k in &kinds {
            let _ = write!(h, "<option value=\"{0}\">{0}</option>", escape(k.label()));
        }
        h.push_str("</select></label><label>status<select name=\"status\"><option value=\"\">all</option><option value=\"manual\">needs manual action</option><option value=\"warning\">converted with warning</option></select></label>");
        h.push_str("<label>text<input name=\"text\" type=\"search\" placeholder=\"object or detail\"></label><span id=\"shown\"></span></form>\n");
        h.push_str("<table id=\"items\"><thead><tr><th>source</th><th>status</th><th>kind</th><th>object</th><th>code</th><th>effort</th><th>detail</th></tr></thead><tbody>\n");
        for (i, a) in action.iter().zip(anchors) {
            let link = match a {
                Anchor::Line(n) => format!("<a href=\"#L{n}\">line {n}</a>"),
                Anchor::Block(b) => format!("<a href=\"#S{}\">source</a>", b + 1),
                Anchor::None => "<span class=\"none\">no source line</span>".to_string(),
            };
            let code_title = code_by_name(&i.code).map(|c| c.title).unwrap_or("");
            let _ = writeln!(
                h,
                "<tr data-code=\"{code}\" data-kind=\"{kind}\" data-status=\"{st}\"><td class=\"at\">{link}</td><td><span class=\"pill s-{st}\">{stl}</span></td><td>{kind}</td><td class=\"obj\">{obj}</td><td title=\"{ct}\">{code}</td><td>{eff}</td><td>{msg}</td></tr>",
                code = escape(&i.code),
                kind = escape(i.kind.label()),
                st = status_class(i.status),
                stl = if i.status == Status::Manual { "manual" } else { "warning" },
                obj = escape(&i.object),
                ct = escape(code_title),
                eff = effort_label(i.effort),
                msg = escape(&i.message),
            );
        }
        h.push_str("</tbody></table>\n");
    }
    if !also.is_empty() {
        h.push_str("<h3>Also for a person</h3><table id=\"also\"><thead><tr><th>kind</th><th>object</th><th>detail</th></tr></thead><tbody>\n");
        for (k, o, r) in also {
            let _ = writeln!(h, "<tr><td>{}</td><td class=\"obj\">{}</td><td>{}</td></tr>", escape(k), escape(o), escape(r));
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("</section>\n");
}

fn mappings_section(h: &mut String, report: &Report) {
    h.push_str("<section id=\"mappings\"><h2>Type mappings</h2>\n");
    if report.mappings.is_empty() {
        h.push_str("<p class=\"none\">No column types were mapped.</p></section>\n");
        return;
    }
    h.push_str("<table><thead><tr><th>source type</th><th>target type</th><th class=\"n\">columns</th><th>note</th></tr></thead><tbody>\n");
    for ((s, t), m) in &report.mappings {
        let _ = writeln!(h, "<tr><td class=\"obj\">{}</td><td class=\"obj\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>", escape(s), escape(t), m.columns, escape(&m.note));
    }
    h.push_str("</tbody></table></section>\n");
}

fn skipped_section(h: &mut String, report: &Report) {
    if report.skipped.is_empty() {
        return;
    }
    h.push_str("<section id=\"skipped\"><h2>Statements skipped</h2>\n<table><thead><tr><th>code</th><th class=\"n\">count</th><th>meaning</th></tr></thead><tbody>\n");
    for (c, n) in &report.skipped {
        let title = code_by_name(c).map(|c| c.title).unwrap_or("");
        let _ = writeln!(h, "<tr><td>{}</td><td class=\"n\">{n}</td><td>{}</td></tr>", escape(c), escape(title));
    }
    h.push_str("</tbody></table></section>\n");
}

fn source_section(h: &mut String, report: &Report, ctx: &Context, lines: &[&str], action: &[&Item]) {
    h.push_str("<section id=\"source\"><h2>Source</h2>\n");
    if ctx.script.is_none() && ctx.sources.is_empty() {
        h.push_str("<p class=\"none\">No source text: the objects were read from the source database's catalog.</p>");
    }
    if let Some(script) = ctx.script {
        let whole = script.len() <= WHOLE_SCRIPT_BYTES;
        let _ = write!(h, "<p><code>{}</code>: {} lines{}.</p>\n<pre class=\"src\">", escape(&report.input), lines.len(), if whole { "" } else { "; only the lines the items point at are shown, with a few lines around them" });
        // Lines an item points at are marked.
        let hits: std::collections::HashSet<usize> = action.iter().map(|i| i.line).collect();
        let shown = if whole { vec![(1, lines.len())] } else { excerpts(action, lines.len()) };
        let mut next = 1;
        for (from, to) in shown {
            if from > next {
                let _ = write!(h, "<i>⋯ lines {next}–{} not shown</i>", from - 1);
            }
            for n in from..=to {
                let class = if hits.contains(&n) { " class=\"hit\"" } else { "" };
                let _ = write!(h, "<span id=\"L{n}\"{class}><a href=\"#L{n}\">{n}</a>");
                let line = lines[n - 1];
                if line.chars().count() > MAX_LINE_CHARS {
                    escape_into(h, &line.chars().take(MAX_LINE_CHARS).collect::<String>());
                    let _ = write!(h, "<i>⋯ {} more characters</i>", line.chars().count() - MAX_LINE_CHARS);
                } else {
                    escape_into(h, line);
                }
                h.push_str("</span>");
            }
            next = to + 1;
        }
        if next <= lines.len() && !lines.is_empty() {
            let _ = write!(h, "<i>⋯ lines {next}–{} not shown</i>", lines.len());
        }
        h.push_str("</pre>\n");
    }
    if !ctx.sources.is_empty() {
        h.push_str("<h3>Source of the objects to redo by hand</h3>\n");
        for (i, b) in ctx.sources.iter().enumerate() {
            let _ = write!(h, "<section class=\"block\" id=\"S{}\"><h3>{}</h3><pre class=\"src\">", i + 1, escape(&b.title));
            if b.text.trim().is_empty() {
                h.push_str("<i>no source text</i>");
            } else {
                escape_into(h, b.text.trim_end());
            }
            h.push_str("</pre></section>\n");
        }
    }
    h.push_str("</section>\n");
}

/// Line ranges (1-based, inclusive, ascending, not overlapping) around
/// the lines the items point at.
fn excerpts(action: &[&Item], total: usize) -> Vec<(usize, usize)> {
    let mut wanted: Vec<usize> = action.iter().map(|i| i.line).filter(|&l| l > 0 && l <= total).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for l in wanted {
        let (from, to) = (l.saturating_sub(CONTEXT_LINES).max(1), (l + CONTEXT_LINES).min(total));
        match out.last_mut() {
            Some(last) if from <= last.1 + 1 => last.1 = last.1.max(to),
            _ => out.push((from, to)),
        }
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dialect;
    use crate::schema::report::codes;

    const HOSTILE: &str = "</script><img src=x onerror=alert(1)>\"'&";

    fn sample() -> Report {
        let mut r = Report { source: Some(Dialect::Mysql), target: Some(Dialect::Postgres), input: "shop.sql".into(), ..Default::default() };
        r.push(ObjectKind::Table, "orders", Status::Converted, None, 1, "");
        r.push(ObjectKind::Table, "customers", Status::Warning, Some(codes::TABLE_OPTION), 3, "ENGINE=MyISAM dropped");
        r.push(ObjectKind::Column, "customers.flag", Status::Warning, Some(codes::BOOLEAN), 4, "tinyint(1) → boolean");
        r.push(ObjectKind::Routine, "refresh_totals", Status::Manual, Some(codes::ROUTINE), 6, "procedure kept as a comment");
        r.push(ObjectKind::View, "v_late", Status::Manual, Some(codes::VIEW_MANUAL), 0, "view query could not be rewritten");
        r.mapping("tinyint(1)", "boolean", "integer flag");
        r.skip(codes::DATA_SKIPPED);
        r
    }

    const SCRIPT_TEXT: &str = "CREATE TABLE orders (id int);\n\nCREATE TABLE customers (\n  flag tinyint(1)\n) ENGINE=MyISAM;\nCREATE PROCEDURE refresh_totals() BEGIN END;\n";

    #[test]
    fn a_share_short_of_everything_never_reads_100() {
        assert_eq!(percent(99.98), "99.9%");
        assert_eq!(percent(100.0), "100.0%");
        assert_eq!(percent(66.666), "66.6%");
        assert_eq!(percent(0.0), "0.0%");
        assert_eq!(percent(29.0 * 100.0 / 100.0), "29.0%");
        assert_eq!(percent(29.0 / 100.0 * 100.0), "29.0%");
    }

    #[test]
    fn escape_turns_markup_into_text() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(escape("plain — ünïcode"), "plain — ünïcode");
        let e = escape(HOSTILE);
        assert!(!e.contains('<') && !e.contains('>') && !e.contains('"') && !e.contains('\''), "{e}");
    }

    #[test]
    fn hostile_names_messages_and_source_render_as_text() {
        let mut r = sample();
        r.input = HOSTILE.into();
        r.push(ObjectKind::Table, HOSTILE, Status::Manual, Some(codes::TARGET_REFUSED), 2, HOSTILE);
        r.mapping(HOSTILE, HOSTILE, HOSTILE);
        let script = format!("{SCRIPT_TEXT}-- {HOSTILE}\n");
        let ctx = Context { script: Some(&script), sources: vec![SourceBlock { title: HOSTILE.into(), text: HOSTILE.into() }], also: vec![(HOSTILE.into(), HOSTILE.into(), HOSTILE.into())], ..Default::default() };
        let page = render(&r, &ctx);
        // The only script element is barge's own, the only img none.
        assert_eq!(page.matches("<script>").count(), 1, "a script element came from input");
        assert_eq!(page.matches("</script>").count(), 1, "input closed the script element");
        assert!(!page.contains("<img"), "input made an element");
        assert!(!page.contains("onerror=alert(1)>"), "input made an attribute");
        assert!(page.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;"));
        // In an attribute: the row's data-kind/data-code never carry raw quotes.
        for tag in page.split('<').filter(|t| t.starts_with("tr data-")) {
            let attrs = tag.split('>').next().unwrap();
            assert_eq!(attrs.matches('"').count(), 6, "an attribute was broken open: {attrs}");
        }
    }

    #[test]
    fn every_section_is_present() {
        let page = render(&sample(), &Context { script: Some(SCRIPT_TEXT), ..Default::default() });
        for id in ["id=\"summary\"", "id=\"chart\"", "id=\"kind-chart\"", "id=\"effort\"", "id=\"action-items\"", "id=\"filters\"", "id=\"items\"", "id=\"mappings\"", "id=\"skipped\"", "id=\"source\""] {
            assert!(page.contains(id), "missing {id}");
        }
        // Without scripts every item shows and the filters (which would do
        // nothing) stay hidden.
        assert!(page.contains("<form id=\"filters\" class=\"filters\" hidden>"));
        assert!(!page.contains("<tr hidden") && !page.contains("display:none"));
        // Items link to their line; the line is on the page.
        assert!(page.contains("<a href=\"#L6\">line 6</a>") && page.contains("<span id=\"L6\" class=\"hit\">"));
        // An item without a line says so.
        assert!(page.contains("no source line"));
        assert!(page.contains("tinyint(1)") && page.contains("boolean"));
        // Nothing is fetched: no URL but the SVG namespace.
        assert!(!page.contains("src=\"http") && !page.contains("href=\"http") && !page.contains("@import") && !page.contains("url("));
    }

    #[test]
    fn chart_counts_match_the_summary() {
        let r = sample();
        let page = render(&r, &Context::default());
        let chart = &page[page.find("id=\"kind-chart\"").unwrap()..page.find("</svg>").unwrap()];
        let mut counted: BTreeMap<(String, String), usize> = BTreeMap::new();
        for rect in chart.split("<rect ").skip(1).filter(|r| r.contains("data-count")) {
            let attr = |name: &str| rect.split(&format!("{name}=\"")).nth(1).unwrap().split('"').next().unwrap().to_string();
            *counted.entry((attr("data-kind"), attr("data-status"))).or_default() += attr("data-count").parse::<usize>().unwrap();
        }
        let mut expected: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (k, s) in r.summary() {
            for (st, n) in [("converted", s.converted), ("warning", s.warning), ("manual", s.manual)] {
                if n > 0 {
                    expected.insert((k.label().to_string(), st.to_string()), n);
                }
            }
        }
        assert_eq!(counted, expected);
        let t = totals(&r.summary());
        assert!(page.contains(&format!("of {} objects converted automatically: {} converted, {} converted with a warning, {} need manual action", t.objects, t.converted, t.warning, t.manual)));
    }

    #[test]
    fn migration_items_link_to_their_object_source() {
        let mut r = sample();
        r.push(ObjectKind::Routine, "public.audit", Status::Manual, Some(codes::ROUTINE), 0, "trigger function");
        let ctx = Context { sources: vec![SourceBlock { title: "function public.audit".into(), text: "BEGIN RETURN NEW; END".into() }], ..Default::default() };
        let page = render(&r, &ctx);
        assert!(page.contains("<a href=\"#S1\">source</a>") && page.contains("id=\"S1\""));
        assert!(page.contains("no source line"));
    }

    #[test]
    fn a_big_script_is_cut_to_the_lines_items_point_at() {
        let mut r = Report::default();
        r.push(ObjectKind::Routine, "p", Status::Manual, Some(codes::ROUTINE), 200_000, "");
        let script: String = (1..=300_000).map(|n| format!("INSERT INTO t VALUES ({n}, 'some data to fill the line');\n")).collect();
        assert!(script.len() > WHOLE_SCRIPT_BYTES);
        let page = render(&r, &Context { script: Some(&script), ..Default::default() });
        assert!(page.contains("<span id=\"L200000\" class=\"hit\">") && page.contains("<span id=\"L199996\">"));
        assert!(!page.contains("<span id=\"L1\">"));
        assert!(page.contains("lines 1–199995 not shown") && page.contains("lines 200005–300000 not shown"));
        assert!(page.len() < 100_000);
    }
}

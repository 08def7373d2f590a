//! The HTML assessment report in a real browser: convert-schema and
//! migrate write `--report FILE.html`; headless Chromium renders it, its
//! script runs (the filters show and count every item), the page logs no
//! console error, a table named like markup shows as text, and a
//! screenshot is taken. A page with a broken script is caught by the same
//! check, so the check can fail.
//!
//! Chromium is Debian's `chromium` (tests/services.sh installs it). Without
//! it the browser tests say so and pass, except under CI=true, where a
//! missing browser fails them.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

const HOSTILE: &str = "</script><img src=x onerror=alert(1)>";

/// The browser, or None (with a message) where the test may skip.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("chromium"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "chromium is not installed and CI=true: install it (bash tests/services.sh install, or apt-get install chromium)");
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium); the HTML report was not rendered in a browser");
    }
    found
}

/// What the browser made of a page: the DOM after scripts ran (or a
/// screenshot) and the console messages it logged.
struct Rendered {
    dom: String,
    console: Vec<String>,
}

fn render(browser: &Path, page: &Path, screenshot: Option<&Path>) -> Rendered {
    render_url(browser, &format!("file://{}", page.display()), screenshot)
}

fn render_url(browser: &Path, url: &str, screenshot: Option<&Path>) -> Rendered {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(browser);
    cmd.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .args(["--enable-logging=stderr", "--v=0", "--window-size=1280,2000"])
        .arg(format!("--user-data-dir={}", profile.path().display()));
    match screenshot {
        Some(png) => cmd.arg(format!("--screenshot={}", png.display())),
        None => cmd.arg("--dump-dom"),
    };
    let mut child = cmd.arg(url).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start chromium");
    // Read both pipes while it runs, so a big DOM cannot block it.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish rendering {url} in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let dom = reader.join().unwrap();
    let log = err_reader.join().unwrap();
    // Console messages (errors, CSP refusals, uncaught exceptions) come
    // out as `…:CONSOLE:…` or `…:CONSOLE(…)` lines; the page itself logs
    // nothing, so any is a failure.
    let console = log.lines().filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught")).map(str::to_string).collect();
    Rendered { dom, console }
}

/// A realistic MySQL schema (the CRM fixture) plus objects that need a
/// person and a table named like markup.
fn hostile_script(dir: &Path) -> PathBuf {
    let mut sql = std::fs::read_to_string(fixture("ddl/mysql_crm.sql")).unwrap();
    sql.push_str(&format!(
        "\nCREATE TABLE `{HOSTILE}` (\n  id int unsigned NOT NULL PRIMARY KEY,\n  flag tinyint(1) NOT NULL DEFAULT 0,\n  seen datetime DEFAULT '0000-00-00 00:00:00'\n) ENGINE=MyISAM COMMENT='{HOSTILE}';\n\
         DELIMITER ;;\nCREATE PROCEDURE `{HOSTILE}p`() BEGIN SELECT '{HOSTILE}'; END ;;\nDELIMITER ;\n"
    ));
    let path = dir.join("crm.sql");
    std::fs::write(&path, sql).unwrap();
    path
}

fn convert(input: &Path, report: &Path) {
    run_ok(barge().args(["convert-schema", "--from", "mysql", "--to", "postgres"]).arg(input).arg("-o").arg(input.with_extension("out.sql")).arg("--report").arg(report));
}

/// The number in `<span id="shown">N of M items shown</span>`, set by the
/// page's script.
fn shown(dom: &str) -> Option<String> {
    let at = dom.find("id=\"shown\">")? + "id=\"shown\">".len();
    Some(dom[at..].split('<').next()?.to_string())
}

#[test]
fn convert_schema_report_renders_in_chromium_with_its_items_and_no_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = hostile_script(dir.path());
    let (html, json) = (dir.path().join("report.html"), dir.path().join("report.json"));
    convert(&input, &html);
    convert(&input, &json);
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let s = &j["summary"];
    let actions = s["warnings"].as_u64().unwrap() + s["manual"].as_u64().unwrap();
    assert!(s["manual"].as_u64().unwrap() > 0, "the fixture should need a person: {s}");
    let objects: u64 = s["by_kind"].as_object().unwrap().values().map(|k| k["total"].as_u64().unwrap()).sum();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"), "the hostile name is not on the page as text");
    assert_eq!(page.matches("<script>").count(), 1);

    let Some(browser) = chromium() else { return };
    let r = render(&browser, &html, None);
    assert!(r.console.is_empty(), "the page logged console errors:\n{}", r.console.join("\n"));
    // The script ran to its end: the filters show, and count every item.
    assert_eq!(shown(&r.dom).as_deref(), Some(format!("{actions} of {actions} items shown").as_str()), "the filter script did not run");
    assert!(r.dom.contains("<form id=\"filters\" class=\"filters\">"), "the filters are still hidden");
    // The summary, as the JSON report has it.
    // One decimal, rounded down (the page never rounds up to 100%).
    let auto: u64 = s["by_kind"].as_object().unwrap().values().map(|k| k["converted"].as_u64().unwrap() + k["warning"].as_u64().unwrap()).sum();
    let tenths = auto * 1000 / objects;
    let pct = format!("{}.{}%", tenths / 10, tenths % 10);
    assert!(r.dom.contains(&format!("{pct} of {objects} objects converted automatically")), "summary missing ({pct}, {objects} objects)");
    for item in j["items"].as_array().unwrap().iter().filter(|i| i["status"] != "converted") {
        let object = item["object"].as_str().unwrap().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        assert!(r.dom.contains(&object), "item {object} is not on the page");
        let line = item["line"].as_u64().unwrap();
        if line > 0 {
            assert!(r.dom.contains(&format!("href=\"#L{line}\"")) && r.dom.contains(&format!("id=\"L{line}\"")), "item {object} does not link to line {line}");
        }
    }
    // The markup-like name stayed text: no element came of it.
    assert!(r.dom.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"));
    assert!(!r.dom.contains("<img"), "input became an element");
    for section in ["Objects by kind and status", "Effort by kind", "Action items", "Type mappings", "tinyint(1)"] {
        assert!(r.dom.contains(section), "{section} missing");
    }

    // The filters work: by code (from the address), only that code's rows.
    let b170 = j["items"].as_array().unwrap().iter().filter(|i| i["code"] == "B170").count();
    assert!(b170 > 0 && (b170 as u64) < actions);
    let r = render_url(&browser, &format!("file://{}?code=B170", html.display()), None);
    assert!(r.console.is_empty(), "console errors:\n{}", r.console.join("\n"));
    assert_eq!(shown(&r.dom).as_deref(), Some(format!("{b170} of {actions} items shown").as_str()));
    let visible = r.dom.split("<tr data-").skip(1).filter(|row| !row.split('>').next().unwrap().contains("hidden")).count();
    assert_eq!(visible, b170, "rows left visible by the code filter");

    let png = dir.path().join("report.png");
    let shot = render(&browser, &html, Some(&png));
    assert!(shot.console.is_empty(), "console errors while taking the screenshot:\n{}", shot.console.join("\n"));
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000, "screenshot of {} bytes", bytes.len());
}

/// The check above can fail: a script that throws and a script the page's
/// policy does not allow are both caught.
#[test]
fn a_page_whose_script_fails_is_caught() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = hostile_script(dir.path());
    let html = dir.path().join("report.html");
    convert(&input, &html);
    let page = std::fs::read_to_string(&html).unwrap();

    // A script that throws (the policy taken out so that it runs).
    let csp_start = page.find("<meta http-equiv=\"Content-Security-Policy\"").unwrap();
    let csp_end = csp_start + page[csp_start..].find('>').unwrap() + 1;
    let throwing = format!("{}{}", &page[..csp_start], &page[csp_end..]).replace("form.hidden = false;", "form.hidden = false; noSuchFunction();");
    let path = dir.path().join("throws.html");
    std::fs::write(&path, throwing).unwrap();
    let r = render(&browser, &path, None);
    assert!(r.console.iter().any(|l| l.contains("Uncaught")), "an uncaught exception was not seen: {:?}", r.console);
    assert_eq!(shown(&r.dom).as_deref(), Some(""), "the broken script still counted the items");

    // A script changed after the page was written: the policy refuses it.
    let changed = page.replace("form.hidden = false;", "form.hidden = false; ");
    let path = dir.path().join("changed.html");
    std::fs::write(&path, changed).unwrap();
    let r = render(&browser, &path, None);
    assert!(r.console.iter().any(|l| l.contains("Content Security Policy")), "a script outside the policy ran: {:?}", r.console);
}

#[test]
fn report_format_follows_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let input = hostile_script(dir.path());
    let out = run(barge().args(["convert-schema", "--from", "mysql", "--to", "postgres"]).arg(&input).arg("--report").arg(dir.path().join("r.txt")));
    assert!(!out.status.success());
    assert!(stderr(&out).contains(".html") && stderr(&out).contains("r.txt"), "{}", text(&out));
    let md = dir.path().join("r.md");
    convert(&input, &md);
    assert!(std::fs::read_to_string(&md).unwrap().starts_with("# Schema conversion assessment"));
}

/// migrate writes the page into its state directory and, with --report,
/// where asked; a routine's item links to its source text, items without
/// one say so, and the page renders cleanly.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_report_links_items_to_their_source() {
    let src = TestDb::new(Engine::Postgres, "rh_src").await;
    exec(
        &src,
        &format!(
            "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, born date);
             CREATE TABLE \"{HOSTILE}\" (id int PRIMARY KEY, note text, seen timestamptz, price numeric(40,2));
             CREATE FUNCTION touch_name() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.name := upper(NEW.name); RETURN NEW; END $$;
             CREATE TRIGGER customers_touch BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION touch_name();
             INSERT INTO customers (name) VALUES ('ada'), ('grace');"
        ),
    )
    .await;
    let dst = TestDb::new(Engine::Sqlite, "rh_dst").await;
    let dir = tempfile::tempdir().unwrap();
    let (state, html) = (dir.path().join("state"), dir.path().join("migration.html"));
    let out = run(barge().args(["migrate", &src.url, &dst.url, "--state-dir"]).arg(&state).arg("--report").arg(&html));
    assert_ok(&out, "migrate");
    let page = std::fs::read_to_string(&html).expect("--report written");
    assert_eq!(page, std::fs::read_to_string(state.join("assessment.html")).unwrap(), "--report is the state directory's page");
    assert!(page.contains("Migration report") && page.contains("id=\"on-target\""));
    assert!(page.contains("BEGIN NEW.name := upper(NEW.name)"), "the routine's source is not on the page");
    let routine_row = page.lines().find(|l| l.starts_with("<tr data-") && l.contains("touch_name")).expect("an item for the routine");
    assert!(routine_row.contains("href=\"#S"), "the routine does not link to its source: {routine_row}");
    assert!(page.contains("&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;") && !page.contains("<img"));

    // A wrong extension is refused before anything runs.
    let bad = run(barge().args(["migrate", &src.url, &dst.url, "--state-dir"]).arg(&state).arg("--report").arg(dir.path().join("r.pdf")));
    assert!(!bad.status.success() && stderr(&bad).contains("r.pdf"), "{}", text(&bad));

    if let Some(browser) = chromium() {
        let r = render(&browser, &html, None);
        assert!(r.console.is_empty(), "console errors:\n{}", r.console.join("\n"));
        assert!(shown(&r.dom).is_some_and(|s| s.ends_with("items shown") && !s.starts_with("0 of")), "the filter script did not run: {:?}", shown(&r.dom));
    }
    src.drop_db().await;
}

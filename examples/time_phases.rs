//! Debug aid: time the phases of convert-schema on a big dump.
//! `cargo run --release --example time_phases -- /tmp/dump5k.sql`
use std::time::Instant;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    use barge::model::Dialect;
    let t = Instant::now();
    let stmts = barge::schema::script::split(&text, Dialect::Mysql);
    println!("split      {:?} ({} statements)", t.elapsed(), stmts.len());
    let t = Instant::now();
    let read = barge::schema::reader::read_script(&text, Dialect::Mysql);
    println!("read       {:?}", t.elapsed());
    let opts = barge::schema::convert::ConvertOptions { source: Dialect::Mysql, target: Dialect::Postgres, rules: barge::schema::rules::RuleSet::load(Dialect::Mysql, Dialect::Postgres, &[], &[]).unwrap(), naming: Default::default() };
    let t = Instant::now();
    let conv = barge::schema::convert::convert(&read.schema, &read.leftovers, read.report, &opts);
    println!("convert    {:?}", t.elapsed());
    let t = Instant::now();
    let ddl = barge::schema::ddl::render(&conv.target, &conv.names, "x");
    println!("render     {:?} ({} bytes)", t.elapsed(), ddl.len());
    let t = Instant::now();
    let j = serde_json::to_string_pretty(&conv.report.to_json()).unwrap();
    println!("report     {:?} ({} bytes)", t.elapsed(), j.len());
    std::mem::forget((read.schema, conv, ddl, j));
}

//! Debug aid: read a DDL script and print what barge understood.
//! `cargo run --example read_ddl -- mysql fixtures/ddl/mysql.sql`
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dialect: barge::model::Dialect = args[1].parse().unwrap();
    let text = std::fs::read_to_string(&args[2]).unwrap();
    let out = barge::schema::reader::read_script(&text, dialect);
    for l in &out.leftovers {
        println!("LEFTOVER line {}: {} :: {}", l.line, l.reason, l.text.chars().take(150).collect::<String>().replace('\n', " "));
    }
    for t in &out.schema.tables {
        println!("TABLE {} cols={} pk={:?} uniq={} fks={} checks={} idx={}", t.name, t.columns.len(), t.primary_key.as_ref().map(|k| &k.columns), t.uniques.len(), t.foreign_keys.len(), t.checks.len(), t.indexes.len());
        if args.len() > 3 { for c in &t.columns { println!("   {} {:?} src={} null={} def={:?} id={:?} gen={:?}", c.name, c.ty, c.source_type, c.nullable, c.default, c.identity, c.generated); } }
    }
    println!("views={} routines={} seqs={} enums={} domains={} ns={:?} skipped={:?}", out.schema.views.len(), out.schema.routines.len(), out.schema.sequences.len(), out.schema.enums.len(), out.schema.domains.len(), out.schema.namespaces, out.report.skipped);
}

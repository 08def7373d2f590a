//! Validation: are the source and target tables equal? Row counts, then a
//! checksum per key range. Between two PostgreSQL or two MySQL servers the
//! checksum is computed by each server (an order-independent sum of row
//! hashes), so rows never leave them; between different engines, rows are
//! read through barge's decoders and hashed in a canonical form that
//! ignores representation (1 = true, "1.50" = "1.5", a timestamp and its
//! UTC instant). A range that differs is split until the differing keys
//! are found; the first ones are printed.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::mapping::Mapping;
use super::state::KeyRange;
use crate::db::Db;
use crate::endpoint::{Endpoint, Role};
use crate::error::{Error, Result};
use crate::model::{ColumnType, Dialect, QualifiedName, Schema, Table, Value};
use crate::schema::naming::{NamePlan, NamingOptions};
use crate::transfer::{self, Batch, ReadSpec};

/// Ranges narrower than this many rows are diffed row by row.
const LEAF_ROWS: u64 = 2_000;
/// Keys shown per table.
const SHOW_KEYS: usize = 10;

#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCheck {
    pub source: String,
    pub target: String,
    pub source_rows: u64,
    pub target_rows: u64,
    /// `server` or `client`: where checksums were computed.
    pub method: String,
    pub equal: bool,
    pub missing_on_target: Vec<String>,
    pub extra_on_target: Vec<String>,
    pub different: Vec<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ValidationReport {
    pub tables: Vec<TableCheck>,
}

impl ValidationReport {
    pub fn ok(&self) -> bool {
        self.tables.iter().all(|t| t.equal)
    }
    pub fn failed_tables(&self) -> usize {
        self.tables.iter().filter(|t| !t.equal).count()
    }
    pub fn print(&self) {
        println!("{:<32} {:>12} {:>12}  {:<7} result", "table", "source rows", "target rows", "method");
        for t in &self.tables {
            let result = if t.equal { "equal".to_string() } else { "DIFFERENT".to_string() };
            println!("{:<32} {:>12} {:>12}  {:<7} {result}", t.source, t.source_rows, t.target_rows, t.method);
            for (label, keys) in [("missing on target", &t.missing_on_target), ("extra on target", &t.extra_on_target), ("changed", &t.different)] {
                if !keys.is_empty() {
                    println!("    {label}: {}", keys.join("; "));
                }
            }
            if let Some(n) = &t.note {
                println!("    {n}");
            }
        }
    }
}

struct Pair {
    source: Table,
    target: Table,
    /// Source column names and the target columns they land in, in order.
    columns: Vec<(String, String, ColumnType, ColumnType)>,
    key: Vec<(String, String)>,
    int_key: Option<(String, String)>,
    filter: Option<String>,
}

pub async fn run(src: &Endpoint, dst: &Endpoint, mapping: &Mapping) -> Result<ValidationReport> {
    let mut s = Db::connect(src, Role::Source).await?;
    let mut d = Db::connect(dst, Role::Target).await?;
    let mut source_schema = mapping.select_some(&s.introspect().await?, src)?;
    super::shape::for_validation(&mut source_schema, d.dialect());
    let target_schema = d.introspect().await?;
    let pairs = pair_tables(&source_schema, &target_schema, d.dialect(), mapping)?;
    let mut out = Vec::new();
    for p in pairs {
        out.push(check_table(&mut s, &mut d, &p).await?);
    }
    Ok(ValidationReport { tables: out })
}

fn pair_tables(source: &Schema, target: &Schema, target_dialect: Dialect, mapping: &Mapping) -> Result<Vec<Pair>> {
    let mut plan = NamePlan::build(source, target_dialect, &NamingOptions::default());
    mapping.apply_names(source, &mut plan);
    let mut pairs = Vec::new();
    for t in &source.tables {
        let parts = plan.relation(&t.name);
        let want = QualifiedName { schema: if parts.len() > 1 { Some(parts[0].clone()) } else { None }, name: parts.last().cloned().unwrap_or_default() };
        let Some(tt) = target.tables.iter().find(|x| x.name.name.eq_ignore_ascii_case(&want.name) && (want.schema.is_none() || x.name.schema.as_deref().is_none_or(|s| want.schema.as_deref().is_some_and(|w| w.eq_ignore_ascii_case(s))))) else {
            return Err(Error::Endpoint {
                endpoint: "target".into(),
                message: format!("table {} (from {}) is not on the target", want, t.name),
                hint: Some("migrate it first, or leave it out with --tables".into()),
            });
        };
        let mut columns = Vec::new();
        for c in &t.columns {
            let tn = plan.column(&t.name, &c.name);
            if let Some(tc) = tt.column(&tn) {
                if tc.generated.is_some() || c.generated.is_some() {
                    continue;
                }
                columns.push((c.name.clone(), tc.name.clone(), c.ty.clone(), tc.ty.clone()));
            }
        }
        let key: Vec<(String, String)> = t
            .identity_columns()
            .into_iter()
            .filter_map(|k| columns.iter().find(|(s, ..)| s.eq_ignore_ascii_case(&k)).map(|(s, t, ..)| (s.clone(), t.clone())))
            .collect();
        let int_key = t
            .primary_key
            .as_ref()
            .and_then(|k| k.columns.first())
            .and_then(|c| t.column(c))
            .filter(|c| c.ty.is_integer())
            .and_then(|c| columns.iter().find(|(s, ..)| s == &c.name))
            .map(|(s, t, ..)| (s.clone(), t.clone()));
        pairs.push(Pair { source: t.clone(), target: tt.clone(), columns, key, int_key, filter: mapping.filter_sql(t, source.dialect.unwrap_or(Dialect::Postgres))? });
    }
    Ok(pairs)
}

fn quote(d: Dialect, n: &str) -> String {
    match d {
        Dialect::Mysql => format!("`{}`", n.replace('`', "``")),
        _ => format!("\"{}\"", n.replace('"', "\"\"")),
    }
}

fn table_sql(d: Dialect, t: &Table) -> String {
    match (&t.name.schema, d) {
        (Some(s), Dialect::Postgres) => format!("{}.{}", quote(d, s), quote(d, &t.name.name)),
        _ => quote(d, &t.name.name),
    }
}

/// A side of the comparison: one engine, one table, its columns.
struct Side<'a> {
    db: &'a mut Db,
    table: String,
    columns: Vec<String>,
    types: Vec<ColumnType>,
    /// Decimals compare at the target column's scale, the precision the
    /// target holds.
    scales: Vec<Option<u32>>,
    /// The target's type per column, on the source side: values are seen
    /// as the target holds them.
    coerce: Vec<Option<ColumnType>>,
    /// Columns that are CHAR(n) on either side.
    fixed: Vec<bool>,
    key: Option<String>,
    filter: Option<String>,
}

impl Side<'_> {
    fn where_sql(&self, range: KeyRange) -> String {
        let mut conds = Vec::new();
        if let (Some(k), Some(p)) = (&self.key, self.key.as_ref().and_then(|k| range.predicate(k))) {
            let _ = k;
            conds.push(p);
        }
        if let Some(f) = &self.filter {
            conds.push(f.clone());
        }
        if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        }
    }

    /// (rows, checksum) of a range, computed by the server.
    async fn server_sum(&mut self, range: KeyRange) -> Result<(u64, String)> {
        let w = self.where_sql(range);
        match &mut *self.db {
            Db::Postgres(c) => {
                let row_expr = format!("ROW({})::text", self.columns.join(", "));
                let sql = format!("SELECT count(*), COALESCE(sum(('x' || substr(md5({row_expr}), 1, 15))::bit(60)::bigint), 0)::text FROM {}{w}", self.table);
                let r = c.client.query_one(sql.as_str(), &[]).await.map_err(|e| crate::db::postgres::query_error(&c.display, &sql, e))?;
                Ok((r.get::<_, i64>(0) as u64, r.get(1)))
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let parts: Vec<String> = self
                    .columns
                    .iter()
                    .zip(&self.types)
                    .map(|(col, ty)| match ty {
                        ColumnType::Binary { .. } | ColumnType::Varbinary { .. } | ColumnType::Blob { .. } | ColumnType::Bit { .. } => format!("IFNULL(CONCAT('v', HEX({col})), 'n')"),
                        _ => format!("IFNULL(CONCAT('v', CAST({col} AS CHAR)), 'n')"),
                    })
                    .collect();
                let row_expr = format!("CONCAT_WS('|', {})", parts.join(", "));
                let sql = format!("SELECT COUNT(*), CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(MD5({row_expr}), 1, 15), 16, 10) AS UNSIGNED)), 0) AS CHAR) FROM {}{w}", self.table);
                let r: Option<(u64, String)> = c.conn.query_first(sql.as_str()).await.map_err(|e| Error::Endpoint { endpoint: c.display.clone(), message: format!("{e}\n  statement: {}", crate::db::excerpt(&sql)), hint: None })?;
                Ok(r.unwrap_or((0, "0".into())))
            }
            Db::Sqlite(_) => Err(Error::other("SQLite cannot hash rows itself")),
        }
    }

    /// Canonical rows of a range by key, read through barge. Rows with
    /// the same key (tables without one) are kept side by side.
    async fn client_rows(&mut self, range: KeyRange, key_cols: &[usize]) -> Result<BTreeMap<String, Vec<Vec<String>>>> {
        let select = format!("SELECT {} FROM {}{}", self.columns.join(", "), self.table, self.where_sql(range));
        let spec = ReadSpec { select, types: self.types.clone() };
        let (tx, mut rx) = mpsc::channel::<Batch>(4);
        let name = self.table.clone();
        let db = &mut *self.db;
        let reader = async move {
            match db {
                Db::Postgres(c) => {
                    c.client.batch_execute(transfer::postgres::READ_SESSION).await.map_err(|e| crate::db::postgres::query_error(&c.display, "SET", e))?;
                    transfer::postgres::read(&c.client, &c.display, &name, &spec, tx).await
                }
                Db::Mysql(c) => transfer::mysql::read(&mut c.conn, &c.display, &name, &spec, tx).await,
                Db::Sqlite(c) => transfer::sqlite::read(&mut c.conn, &c.display, &name, &spec, tx).await,
            }
        };
        let scales = self.scales.clone();
        let coerce = self.coerce.clone();
        let fixed = self.fixed.clone();
        let collect = async {
            let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
            while let Some(b) = rx.recv().await {
                for row in b.rows {
                    let key = key_cols.iter().map(|&i| canonical(&row[i])).collect::<Vec<_>>().join(",");
                    let canon = row
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| {
                            let v = match coerce.get(i).and_then(Option::as_ref) {
                                Some(t) => as_target(v, t),
                                None => v,
                            };
                            let v = if fixed.get(i).copied().unwrap_or(false) { trim_fixed(v, &ColumnType::Char { length: None, text: Default::default() }) } else { v };
                            match (&v, scales.get(i).copied().flatten()) {
                                (Value::Decimal(d), Some(s)) => canonical(&Value::Decimal(crate::model::value::round_decimal(d, s))),
                                _ => canonical(&v),
                            }
                        })
                        .collect();
                    out.entry(key).or_default().push(canon);
                }
            }
            out
        };
        let (r, rows) = tokio::join!(reader, collect);
        r?;
        Ok(rows)
    }

    async fn client_sum(&mut self, range: KeyRange, key_cols: &[usize]) -> Result<(u64, String)> {
        let rows = self.client_rows(range, key_cols).await?;
        let mut n = 0u64;
        let mut sum = 0u64;
        for r in rows.values().flatten() {
            n += 1;
            sum = sum.wrapping_add(row_hash(r));
        }
        Ok((n, sum.to_string()))
    }
}

fn row_hash(row: &[String]) -> u64 {
    let mut h = Sha256::new();
    for v in row {
        h.update(v.as_bytes());
        h.update([0x1f]);
    }
    let d = h.finalize();
    u64::from_be_bytes(d[..8].try_into().expect("8 bytes"))
}

fn comparison_type(source: &ColumnType, target: &ColumnType) -> ColumnType {
    let weak = target.is_textual() || matches!(target, ColumnType::Other { .. });
    if weak && !source.is_textual() && !matches!(source, ColumnType::Other { .. } | ColumnType::Enum { .. }) {
        source.clone()
    } else if matches!((source, target), (ColumnType::Float32, ColumnType::Float64)) {
        // A single-precision value widened on the target compares as single.
        ColumnType::Float32
    } else {
        target.clone()
    }
}

/// A source value as the target column can hold it, where the conversion
/// is the announced one (the report says so): a time's zone dropped where
/// the target has none, fixed-width padding.
fn as_target(v: Value, target: &ColumnType) -> Value {
    match (v, target) {
        (Value::TimeTz(t, _), ColumnType::Time { tz: false, .. }) => Value::Time(t),
        (Value::Float64(f), ColumnType::Float32) => Value::Float32(f as f32),
        (v, _) => v,
    }
}

fn trim_fixed(v: Value, ty: &ColumnType) -> Value {
    match (v, ty) {
        // CHAR(n) pads with spaces (PostgreSQL shows them, MySQL strips them).
        (Value::Text(t), ColumnType::Char { .. }) => Value::Text(t.trim_end_matches(' ').to_string()),
        (v, _) => v,
    }
}

/// A representation of a value that is the same whichever engine it was
/// read from, after barge's own conversions.
pub fn canonical(v: &Value) -> String {
    use Value as V;
    match v {
        V::Null | V::ZeroDate => "\u{0}".into(),
        V::Bool(b) => if *b { "1" } else { "0" }.into(),
        V::Int(i) => i.to_string(),
        V::UInt(u) => u.to_string(),
        V::Year(y) => y.to_string(),
        V::Decimal(d) => canonical_decimal(d),
        V::Float32(f) => canonical_float(*f as f64, true),
        V::Float64(f) => canonical_float(*f, false),
        V::Text(t) | V::Enum(t) => {
            if let Ok(u) = uuid::Uuid::parse_str(t) {
                if t.len() == 36 {
                    return u.hyphenated().to_string();
                }
            }
            t.clone()
        }
        V::Json(j) => match serde_json::from_str::<serde_json::Value>(j) {
            Ok(parsed) => parsed.to_string(),
            Err(_) => j.clone(),
        },
        V::Bytes(b) => format!("\\x{}", hex::encode(b)),
        V::Uuid(u) => uuid::Uuid::from_bytes(*u).hyphenated().to_string(),
        V::Date(d) => d.to_string(),
        V::Time(t) => t.format("%H:%M:%S%.f").to_string(),
        V::TimeTz(t, off) => format!("{}{off:+}", t.format("%H:%M:%S%.f")),
        V::Timestamp(t) => t.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        V::TimestampTz(t) => t.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string(),
        V::Infinity { negative } => if *negative { "-infinity" } else { "infinity" }.into(),
        V::Interval(i) => i.to_iso8601(),
        V::Set(items) => serde_json::Value::Array(items.iter().map(|s| serde_json::Value::String(s.clone())).collect()).to_string(),
        // Arrays compare as JSON arrays: targets without arrays store them so.
        V::Array(items) => serde_json::Value::Array(items.iter().map(json_of).collect()).to_string(),
        V::Bits(bits) => {
            let mut n: u128 = 0;
            for b in bits.iter().take(128) {
                n = (n << 1) | (*b as u128);
            }
            n.to_string()
        }
    }
}

/// A value as JSON, for comparing arrays with their JSON form.
fn json_of(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Decimal(d) => serde_json::from_str::<J>(&canonical_decimal(d)).unwrap_or_else(|_| J::String(d.clone())),
        Value::Float32(f) => serde_json::Number::from_f64(*f as f64).map(J::Number).unwrap_or(J::Null),
        Value::Float64(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
        Value::Json(j) => serde_json::from_str(j).unwrap_or_else(|_| J::String(j.clone())),
        Value::Array(items) => J::Array(items.iter().map(json_of).collect()),
        other => J::String(canonical(other)),
    }
}

fn canonical_decimal(d: &str) -> String {
    let n = crate::model::value::normalize_decimal(d).unwrap_or_else(|| d.to_string());
    if n.contains('.') {
        let t = n.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" { "0".into() } else { t.to_string() }
    } else {
        n
    }
}

fn canonical_float(f: f64, single: bool) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // Compare at the precision both sides can hold.
    if single {
        format!("{}", f as f32)
    } else {
        format!("{f}")
    }
}

async fn check_table(s: &mut Db, d: &mut Db, p: &Pair) -> Result<TableCheck> {
    let (sd, dd) = (s.dialect(), d.dialect());
    let same_engine_server = sd == dd && sd != Dialect::Sqlite;
    let scales: Vec<Option<u32>> = p.columns.iter().map(|(_, _, _, t)| match t {
        ColumnType::Decimal { scale, .. } => *scale,
        _ => None,
    }).collect();
    let fixed: Vec<bool> = p.columns.iter().map(|(_, _, s, t)| matches!(s, ColumnType::Char { .. }) || matches!(t, ColumnType::Char { .. })).collect();
    let mut src = Side {
        coerce: p.columns.iter().map(|(_, _, _, t)| Some(t.clone())).collect(),
        fixed: fixed.clone(),
        scales: scales.clone(),
        table: table_sql(sd, &p.source),
        columns: p.columns.iter().map(|(c, _, t, _)| super::fullload::read_expr(sd, &quote(sd, c), t).0).collect(),
        types: p.columns.iter().map(|(c, _, t, _)| super::fullload::read_expr(sd, &quote(sd, c), t).1).collect(),
        key: p.int_key.as_ref().map(|(k, _)| quote(sd, k)),
        filter: p.filter.clone(),
        db: s,
    };
    let mut dst = Side {
        coerce: vec![None; p.columns.len()],
        fixed,
        scales,
        table: table_sql(dd, &p.target),
        columns: p.columns.iter().map(|(_, c, _, t)| super::fullload::read_expr(dd, &quote(dd, c), t).0).collect(),
        // Read the target with the source's type where the target only
        // has text (SQLite's affinities, a type mapped to text): "1.50" in
        // a TEXT column is still the decimal 1.50.
        types: p
            .columns
            .iter()
            .map(|(sc, c, s, t)| comparison_type(&super::fullload::read_expr(sd, &quote(sd, sc), s).1, &super::fullload::read_expr(dd, &quote(dd, c), t).1))
            .collect(),
        key: p.int_key.as_ref().map(|(_, k)| quote(dd, k)),
        filter: None,
        db: d,
    };
    // The filter is in the source's SQL; the target holds only filtered rows.
    let key_cols: Vec<usize> = p.key.iter().filter_map(|(k, _)| p.columns.iter().position(|(c, ..)| c == k)).collect();
    let mut check = TableCheck {
        source: p.source.name.to_string(),
        target: p.target.name.to_string(),
        source_rows: 0,
        target_rows: 0,
        method: if same_engine_server { "server".into() } else { "client".into() },
        equal: true,
        missing_on_target: vec![],
        extra_on_target: vec![],
        different: vec![],
        note: None,
    };
    // Work list of ranges to compare; differing ranges are split.
    let mut todo = vec![KeyRange::ALL];
    let mut first = true;
    let mut leaves_done = 0;
    while let Some(range) = todo.pop() {
        let (a, b) = if same_engine_server {
            (src.server_sum(range).await?, dst.server_sum(range).await?)
        } else {
            (src.client_sum(range, &key_cols).await?, dst.client_sum(range, &key_cols).await?)
        };
        if first {
            check.source_rows = a.0;
            check.target_rows = b.0;
            first = false;
        }
        if a == b {
            continue;
        }
        check.equal = false;
        let splittable = src.key.is_some() && a.0.max(b.0) > LEAF_ROWS;
        if splittable {
            if let Some((lo, hi)) = bounds(&mut src, &mut dst, range).await? {
                if hi > lo {
                    let mid = lo + (hi - lo) / 2 + 1;
                    todo.push(KeyRange { lo: Some(mid), hi: range.hi });
                    todo.push(KeyRange { lo: range.lo, hi: Some(mid) });
                    continue;
                }
            }
        }
        // A leaf: diff row by row.
        if key_cols.is_empty() {
            check.note = Some("the table has no key: counts or checksums differ, rows cannot be named".into());
            continue;
        }
        let left = src.client_rows(range, &key_cols).await?;
        let right = dst.client_rows(range, &key_cols).await?;
        let names: Vec<&str> = p.columns.iter().map(|(c, ..)| c.as_str()).collect();
        for (k, rows) in &left {
            match right.get(k) {
                None => push_limited(&mut check.missing_on_target, k),
                Some(other) if other.len() < rows.len() => push_limited(&mut check.missing_on_target, &format!("{k} ({} of {} copies)", other.len(), rows.len())),
                Some(other) if other.len() > rows.len() => push_limited(&mut check.extra_on_target, &format!("{k} ({} copies, source has {})", other.len(), rows.len())),
                Some(other) => {
                    let mut a: Vec<&Vec<String>> = rows.iter().collect();
                    let mut b: Vec<&Vec<String>> = other.iter().collect();
                    a.sort();
                    b.sort();
                    if a != b {
                        let cols: Vec<String> = a[0]
                            .iter()
                            .zip(b[0].iter())
                            .enumerate()
                            .filter(|(_, (x, y))| x != y)
                            .map(|(i, (x, y))| format!("{}: {} ≠ {}", names.get(i).copied().unwrap_or("?"), shown(x), shown(y)))
                            .collect();
                        push_limited(&mut check.different, &format!("{k} ({})", cols.join(", ")));
                    }
                }
            }
        }
        for k in right.keys() {
            if !left.contains_key(k) {
                push_limited(&mut check.extra_on_target, k);
            }
        }
        leaves_done += 1;
        if leaves_done > 50 || (check.missing_on_target.len() + check.extra_on_target.len() + check.different.len()) >= SHOW_KEYS * 3 {
            check.note = Some("stopped after the first differences".into());
            break;
        }
    }
    let key_names: Vec<&str> = p.key.iter().map(|(k, _)| k.as_str()).collect();
    if !key_names.is_empty() && !check.equal && check.note.is_none() {
        check.note = Some(format!("keys shown are ({})", key_names.join(", ")));
    }
    Ok(check)
}

fn shown(v: &str) -> String {
    if v == "\u{0}" {
        return "NULL".into();
    }
    if v.chars().count() > 40 {
        format!("{}…", v.chars().take(40).collect::<String>())
    } else {
        v.to_string()
    }
}

fn push_limited(v: &mut Vec<String>, k: &str) {
    if v.len() < SHOW_KEYS {
        v.push(k.to_string());
    }
}

/// The smallest and largest key present in a range on either side.
async fn bounds(src: &mut Side<'_>, dst: &mut Side<'_>, range: KeyRange) -> Result<Option<(i64, i64)>> {
    let mut lo = i64::MAX;
    let mut hi = i64::MIN;
    for (a, b) in [side_bounds(src, range).await?, side_bounds(dst, range).await?] {
        match (a, b) {
            (Some(a), Some(b)) => {
                lo = lo.min(a);
                hi = hi.max(b);
            }
            (None, None) => {}
            _ => return Ok(None),
        }
    }
    Ok((lo <= hi).then_some((lo, hi)))
}

async fn side_bounds(side: &mut Side<'_>, range: KeyRange) -> Result<(Option<i64>, Option<i64>)> {
    {
        let Some(k) = side.key.clone() else { return Ok((None, None)) };
        let sql = format!("SELECT MIN({k}), MAX({k}) FROM {}{}", side.table, side.where_sql(range));
        let pg_sql = format!("SELECT MIN({k})::bigint, MAX({k})::bigint FROM {}{}", side.table, side.where_sql(range));
        let (a, b): (Option<i64>, Option<i64>) = match &mut *side.db {
            Db::Postgres(c) => {
                let r = c.client.query_one(pg_sql.as_str(), &[]).await.map_err(|e| crate::db::postgres::query_error(&c.display, &sql, e))?;
                (r.get(0), r.get(1))
            }
            Db::Mysql(c) => {
                use mysql_async::prelude::Queryable;
                let r: Option<(Option<i64>, Option<i64>)> = c.conn.query_first(sql.as_str()).await.map_err(|e| Error::Endpoint { endpoint: c.display.clone(), message: e.to_string(), hint: None })?;
                r.unwrap_or((None, None))
            }
            Db::Sqlite(c) => {
                use sqlx::Row;
                let r = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_one(&mut c.conn).await.map_err(|e| crate::db::sqlite::sqlx_error(&c.display, &sql, e))?;
                (r.try_get(0).unwrap_or(None), r.try_get(1).unwrap_or(None))
            }
        };
        Ok((a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_agree_across_engines() {
        assert_eq!(canonical(&Value::Bool(true)), canonical(&Value::Int(1)));
        assert_eq!(canonical(&Value::Decimal("1.50".into())), canonical(&Value::Decimal("1.5".into())));
        assert_eq!(canonical(&Value::Decimal("5".into())), canonical(&Value::UInt(5)));
        assert_eq!(canonical(&Value::Json("{\"a\": 1}".into())), canonical(&Value::Json("{\"a\":1}".into())));
        assert_eq!(canonical(&Value::ZeroDate), canonical(&Value::Null));
        assert_eq!(canonical(&Value::Set(vec!["a".into(), "b".into()])), canonical(&Value::Array(vec![Value::Text("a".into()), Value::Text("b".into())])));
        let u = [0x12u8; 16];
        assert_eq!(canonical(&Value::Uuid(u)), canonical(&Value::Text(uuid::Uuid::from_bytes(u).hyphenated().to_string().to_uppercase())));
        assert_ne!(canonical(&Value::Decimal("1.51".into())), canonical(&Value::Decimal("1.5".into())));
    }
}

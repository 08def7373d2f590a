//! Type names as text: `tinyint(1) unsigned`, `[nvarchar](max)`,
//! `TIMESTAMP(6) WITH TIME ZONE`, `NUMBER(*,0)`, `VARCHAR2(17 BYTE)`,
//! `text[]`. One parser serves DDL scripts, catalog introspection
//! (`information_schema`, `format_type`) and the targets of mapping rules,
//! so all three agree on what a type is.

use crate::model::{ColumnType, Dialect, LobSize, TextAttrs};

/// A type name split into its parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeSpec {
    /// Lower-case, single-spaced base name without arguments, with any zone
    /// or interval qualifier folded in: `timestamp with time zone`,
    /// `character varying`, `interval day to second`, `public.mood`.
    pub name: String,
    /// Arguments in order: numbers as written, `max`, `*`; enum/set labels
    /// unquoted.
    pub args: Vec<String>,
    pub unsigned: bool,
    pub zerofill: bool,
    /// `[]` suffixes (or `ARRAY`).
    pub array_dims: u8,
    /// Oracle length semantics written in the parentheses (`BYTE`/`CHAR`).
    pub length_unit: Option<String>,
    pub charset: Option<String>,
    pub collation: Option<String>,
}

impl TypeSpec {
    pub fn arg_u32(&self, i: usize) -> Option<u32> {
        self.args.get(i).and_then(|a| a.parse().ok())
    }
    pub fn has_max(&self) -> bool {
        self.args.first().is_some_and(|a| a.eq_ignore_ascii_case("max"))
    }
    /// `name(args)` in lower case, e.g. `tinyint(1)`, for messages and rule
    /// matching.
    pub fn short(&self) -> String {
        let mut s = self.name.clone();
        if !self.args.is_empty() {
            s.push('(');
            s.push_str(&self.args.join(","));
            s.push(')');
        }
        if self.unsigned {
            s.push_str(" unsigned");
        }
        for _ in 0..self.array_dims {
            s.push_str("[]");
        }
        s
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Num(String),
    Str(String),
    Open,
    Close,
    Comma,
    Star,
    Brackets,
    Dot,
}

fn tokenize(text: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1
            }
            ')' => {
                out.push(Tok::Close);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '*' => {
                out.push(Tok::Star);
                i += 1
            }
            '.' => {
                out.push(Tok::Dot);
                i += 1
            }
            '[' if chars.get(i + 1) == Some(&']') => {
                out.push(Tok::Brackets);
                i += 2
            }
            '[' | '"' | '`' => {
                // Quoted identifier: the type name itself, e.g. [nvarchar].
                let close = match c {
                    '[' => ']',
                    q => q,
                };
                let mut w = String::new();
                i += 1;
                while i < chars.len() && chars[i] != close {
                    w.push(chars[i]);
                    i += 1;
                }
                i += 1;
                out.push(Tok::Word(w));
            }
            '\'' => {
                let mut s = String::new();
                i += 1;
                while i < chars.len() {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        s.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    if chars[i] == '\'' {
                        if chars.get(i + 1) == Some(&'\'') {
                            s.push('\'');
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    s.push(chars[i]);
                    i += 1;
                }
                i += 1;
                out.push(Tok::Str(s));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let mut n = String::from(c);
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    n.push(chars[i]);
                    i += 1;
                }
                out.push(Tok::Num(n));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let mut w = String::new();
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$') {
                    w.push(chars[i]);
                    i += 1;
                }
                out.push(Tok::Word(w));
            }
            _ => i += 1,
        }
    }
    out
}

/// Parses a type name. Never fails: unknown shapes keep their words.
pub fn parse(text: &str) -> TypeSpec {
    let toks = tokenize(text);
    let mut spec = TypeSpec::default();
    let mut name_words: Vec<String> = Vec::new();
    let mut i = 0;
    let mut seen_args = false;
    while i < toks.len() {
        match &toks[i] {
            Tok::Word(w) => {
                let lw = w.to_ascii_lowercase();
                match lw.as_str() {
                    "unsigned" => spec.unsigned = true,
                    "signed" => {}
                    "zerofill" => spec.zerofill = true,
                    "array" => spec.array_dims += 1,
                    "character" | "char" if !name_words.is_empty() && next_word_is(&toks, i, "set") => {
                        // `... CHARACTER SET x`: the column's charset.
                        if let Some(Tok::Word(cs)) = toks.get(i + 2) {
                            spec.charset = Some(cs.to_ascii_lowercase());
                        }
                        i += 2;
                    }
                    "charset" if !name_words.is_empty() => {
                        if let Some(Tok::Word(cs)) = toks.get(i + 1) {
                            spec.charset = Some(cs.to_ascii_lowercase());
                        }
                        i += 1;
                    }
                    "collate" => {
                        if let Some(Tok::Word(c)) = toks.get(i + 1) {
                            spec.collation = Some(c.clone());
                            i += 1;
                        }
                    }
                    "binary" if !name_words.is_empty() => {
                        // `varchar(40) binary`: MySQL's binary collation.
                        spec.collation.get_or_insert_with(|| "binary".into());
                    }
                    _ => name_words.push(lw),
                }
                i += 1;
            }
            Tok::Dot => {
                // schema-qualified type: join with the next word.
                if let (Some(last), Some(Tok::Word(next))) = (name_words.last_mut(), toks.get(i + 1)) {
                    last.push('.');
                    last.push_str(&next.to_ascii_lowercase());
                    i += 2;
                } else {
                    i += 1;
                }
            }
            Tok::Open => {
                let (args, unit, end) = parse_args(&toks, i);
                if !seen_args {
                    spec.args = args;
                } else {
                    // `interval day(2) to second(6)`: later args append.
                    spec.args.extend(args);
                }
                if unit.is_some() {
                    spec.length_unit = unit;
                }
                seen_args = true;
                i = end;
            }
            Tok::Brackets => {
                spec.array_dims += 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    spec.name = name_words.join(" ");
    spec
}

fn next_word_is(toks: &[Tok], i: usize, w: &str) -> bool {
    matches!(toks.get(i + 1), Some(Tok::Word(x)) if x.eq_ignore_ascii_case(w))
}

/// Parses `( ... )` starting at `toks[open]`; returns the args, a length
/// unit if one was written, and the index after the `)`.
fn parse_args(toks: &[Tok], open: usize) -> (Vec<String>, Option<String>, usize) {
    let mut args = Vec::new();
    let mut unit = None;
    let mut cur = String::new();
    let mut depth = 0;
    let mut i = open;
    while i < toks.len() {
        match &toks[i] {
            Tok::Open => {
                depth += 1;
                if depth > 1 {
                    cur.push('(');
                }
            }
            Tok::Close => {
                depth -= 1;
                if depth == 0 {
                    if !cur.is_empty() {
                        args.push(std::mem::take(&mut cur));
                    }
                    return (args, unit, i + 1);
                }
                cur.push(')');
            }
            Tok::Comma if depth == 1 => args.push(std::mem::take(&mut cur)),
            Tok::Num(n) => cur.push_str(n),
            Tok::Str(s) => cur.push_str(s),
            Tok::Star => cur.push('*'),
            Tok::Word(w) => {
                let lw = w.to_ascii_lowercase();
                if (lw == "byte" || lw == "char") && !cur.is_empty() {
                    unit = Some(lw);
                } else {
                    cur.push_str(&lw);
                }
            }
            Tok::Comma => cur.push(','),
            Tok::Dot => cur.push('.'),
            Tok::Brackets => cur.push_str("[]"),
        }
        i += 1;
    }
    if !cur.is_empty() {
        args.push(cur);
    }
    (args, unit, i)
}

/// What a type means in a dialect, as a [`ColumnType`]. Types the dialect
/// does not define come back as [`ColumnType::Other`] with their text.
pub fn recognize(dialect: Dialect, spec: &TypeSpec) -> ColumnType {
    let base = recognize_scalar(dialect, spec);
    let mut ty = base;
    for _ in 0..spec.array_dims {
        ty = ColumnType::Array { element: Box::new(ty) };
    }
    ty
}

fn text_attrs(spec: &TypeSpec, national: bool) -> TextAttrs {
    TextAttrs { charset: spec.charset.clone(), collation: spec.collation.clone(), national }
}

fn precision_arg(spec: &TypeSpec, i: usize) -> Option<u8> {
    spec.arg_u32(i).map(|p| p.min(u8::MAX as u32) as u8)
}

fn recognize_scalar(d: Dialect, s: &TypeSpec) -> ColumnType {
    use ColumnType as T;
    let name = s.name.as_str();
    let n0 = s.arg_u32(0);
    let unsigned = s.unsigned;
    let int = |bits: u8| T::Int { bits, unsigned };
    let decimal = |default_p: Option<u32>, default_s: Option<u32>| {
        if s.args.is_empty() {
            return T::Decimal { precision: default_p, scale: default_s };
        }
        let p = if s.args[0] == "*" { Some(38) } else { s.arg_u32(0).or(default_p) };
        let sc = s.arg_u32(1).or(if s.args.len() == 1 { Some(0) } else { default_s });
        T::Decimal { precision: p, scale: sc }
    };
    // Names every dialect spells the same way.
    match (d, name) {
        (_, "boolean" | "bool") => return T::Bool,
        (_, "smallint" | "int2") => return int(16),
        (_, "int" | "integer" | "int4") if d != Dialect::Sqlite => return int(32),
        (_, "bigint" | "int8") if d != Dialect::Sqlite => return int(64),
        (_, "date") if d != Dialect::Oracle => return T::Date,
        (_, "json") => return T::Json,
        (_, "xml" | "xmltype" | "sys.xmltype") => return T::Xml,
        (_, "uuid" | "uniqueidentifier") => return T::Uuid,
        _ => {}
    }
    match d {
        Dialect::Mysql => match name {
            "tinyint" => int(8),
            "mediumint" | "middleint" => int(32),
            "int1" => int(8),
            "int3" => int(32),
            "serial" => T::Int { bits: 64, unsigned: true },
            "decimal" | "numeric" | "dec" | "fixed" => decimal(Some(10), Some(0)),
            "float" => match n0 {
                Some(p) if s.args.len() == 1 && p > 24 => T::Float64,
                _ => T::Float32,
            },
            "double" | "double precision" | "real" | "float8" => T::Float64,
            "float4" => T::Float32,
            "bit" => T::Bit { length: Some(n0.unwrap_or(1)), varying: false },
            "char" | "character" => T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, false) },
            "nchar" | "national char" | "national character" => {
                T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, true) }
            }
            "varchar" | "character varying" | "char varying" => {
                T::Varchar { length: n0, text: text_attrs(s, false) }
            }
            "nvarchar" | "national varchar" | "national character varying" => {
                T::Varchar { length: n0, text: text_attrs(s, true) }
            }
            "tinytext" => T::Text { size: LobSize::Tiny, text: text_attrs(s, false) },
            "text" => T::Text { size: LobSize::Regular, text: text_attrs(s, false) },
            "mediumtext" | "long" | "long varchar" => T::Text { size: LobSize::Medium, text: text_attrs(s, false) },
            "longtext" => T::Text { size: LobSize::Long, text: text_attrs(s, false) },
            "binary" => T::Binary { length: Some(n0.unwrap_or(1)) },
            "varbinary" => T::Varbinary { length: n0 },
            "tinyblob" => T::Blob { size: LobSize::Tiny },
            "blob" => T::Blob { size: LobSize::Regular },
            "mediumblob" | "long varbinary" => T::Blob { size: LobSize::Medium },
            "longblob" => T::Blob { size: LobSize::Long },
            "time" => T::Time { precision: precision_arg(s, 0), tz: false },
            "datetime" => T::Timestamp { precision: precision_arg(s, 0), tz: false },
            // MySQL TIMESTAMP is an instant (stored as UTC, shown in the
            // session zone), so it is "with zone" in the model.
            "timestamp" => T::Timestamp { precision: precision_arg(s, 0), tz: true },
            "year" => T::Year,
            "enum" => T::Enum { name: None, values: s.args.clone() },
            "set" => T::Set { values: s.args.clone() },
            _ => T::Other { name: s.short() },
        },
        Dialect::Postgres => match name {
            "serial" | "serial4" => int(32),
            "bigserial" | "serial8" => int(64),
            "smallserial" | "serial2" => int(16),
            "numeric" | "decimal" => decimal(None, None),
            "real" | "float4" => T::Float32,
            "double precision" | "float8" => T::Float64,
            "float" => match n0 {
                Some(p) if p <= 24 => T::Float32,
                _ => T::Float64,
            },
            "char" | "character" | "bpchar" => T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, false) },
            "varchar" | "character varying" => T::Varchar { length: n0, text: text_attrs(s, false) },
            "text" | "citext" | "name" => T::Text { size: LobSize::Long, text: text_attrs(s, false) },
            "bytea" => T::Blob { size: LobSize::Long },
            "time" | "time without time zone" => T::Time { precision: precision_arg(s, 0), tz: false },
            "timetz" | "time with time zone" => T::Time { precision: precision_arg(s, 0), tz: true },
            "timestamp" | "timestamp without time zone" => {
                T::Timestamp { precision: precision_arg(s, 0), tz: false }
            }
            "timestamptz" | "timestamp with time zone" => T::Timestamp { precision: precision_arg(s, 0), tz: true },
            n if n.starts_with("interval") => {
                let fields = n.strip_prefix("interval").map(str::trim).filter(|f| !f.is_empty());
                T::Interval { fields: fields.map(str::to_string), precision: precision_arg(s, s.args.len().saturating_sub(1)) }
            }
            "jsonb" => T::Jsonb,
            "bit" => T::Bit { length: Some(n0.unwrap_or(1)), varying: false },
            "bit varying" | "varbit" => T::Bit { length: n0, varying: true },
            _ => T::Other { name: s.short() },
        },
        Dialect::Sqlite => recognize_sqlite(s),
        Dialect::Mssql => match name {
            "bit" => T::Bool,
            // SQL Server tinyint is 0..255.
            "tinyint" => T::Int { bits: 8, unsigned: true },
            "decimal" | "numeric" | "dec" => decimal(Some(18), Some(0)),
            "money" => T::Decimal { precision: Some(19), scale: Some(4) },
            "smallmoney" => T::Decimal { precision: Some(10), scale: Some(4) },
            "float" => match n0 {
                Some(p) if p <= 24 => T::Float32,
                _ => T::Float64,
            },
            "real" => T::Float32,
            "char" | "character" => T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, false) },
            "nchar" | "national char" | "national character" => {
                T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, true) }
            }
            "varchar" | "character varying" if s.has_max() => T::Text { size: LobSize::Long, text: text_attrs(s, false) },
            "varchar" | "character varying" => T::Varchar { length: Some(n0.unwrap_or(1)), text: text_attrs(s, false) },
            "nvarchar" | "national character varying" if s.has_max() => {
                T::Text { size: LobSize::Long, text: text_attrs(s, true) }
            }
            "nvarchar" | "national character varying" => {
                T::Varchar { length: Some(n0.unwrap_or(1)), text: text_attrs(s, true) }
            }
            "text" => T::Text { size: LobSize::Long, text: text_attrs(s, false) },
            "ntext" => T::Text { size: LobSize::Long, text: text_attrs(s, true) },
            "binary" => T::Binary { length: Some(n0.unwrap_or(1)) },
            "varbinary" if s.has_max() => T::Blob { size: LobSize::Long },
            "varbinary" => T::Varbinary { length: Some(n0.unwrap_or(1)) },
            "image" => T::Blob { size: LobSize::Long },
            "time" => T::Time { precision: Some(precision_arg(s, 0).unwrap_or(7)), tz: false },
            // datetime is accurate to 1/300 s: three decimals hold it.
            "datetime" => T::Timestamp { precision: Some(3), tz: false },
            "datetime2" => T::Timestamp { precision: Some(precision_arg(s, 0).unwrap_or(7)), tz: false },
            "smalldatetime" => T::Timestamp { precision: Some(0), tz: false },
            "datetimeoffset" => T::Timestamp { precision: Some(precision_arg(s, 0).unwrap_or(7)), tz: true },
            // rowversion is an 8-byte counter, not a time.
            "rowversion" | "timestamp" => T::Binary { length: Some(8) },
            _ => T::Other { name: s.short() },
        },
        Dialect::Oracle => match name {
            "number" => decimal(None, None),
            "float" => T::Float64,
            "binary_float" => T::Float32,
            "binary_double" => T::Float64,
            "char" | "character" => T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, false) },
            "nchar" => T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, true) },
            "varchar2" | "varchar" => T::Varchar { length: n0, text: text_attrs(s, false) },
            "nvarchar2" => T::Varchar { length: n0, text: text_attrs(s, true) },
            "clob" | "long" => T::Text { size: LobSize::Long, text: text_attrs(s, false) },
            "nclob" => T::Text { size: LobSize::Long, text: text_attrs(s, true) },
            "blob" | "long raw" | "bfile" => T::Blob { size: LobSize::Long },
            "raw" => T::Varbinary { length: n0 },
            // Oracle DATE carries a time of day, to the second.
            "date" => T::Timestamp { precision: Some(0), tz: false },
            "timestamp" => T::Timestamp { precision: Some(precision_arg(s, 0).unwrap_or(6)), tz: false },
            "timestamp with time zone" | "timestamp with local time zone" => {
                T::Timestamp { precision: Some(precision_arg(s, 0).unwrap_or(6)), tz: true }
            }
            n if n.starts_with("interval") => {
                let fields = n.strip_prefix("interval").map(str::trim).filter(|f| !f.is_empty());
                T::Interval { fields: fields.map(str::to_string), precision: None }
            }
            "integer" | "int" | "smallint" => T::Decimal { precision: Some(38), scale: Some(0) },
            // ANSI types Oracle accepts and stores as NUMBER or FLOAT.
            "decimal" | "numeric" | "dec" => decimal(Some(38), Some(0)),
            "real" | "double precision" => T::Float64,
            "character varying" | "char varying" => T::Varchar { length: n0, text: text_attrs(s, false) },
            "national character varying" | "national char varying" | "nchar varying" => T::Varchar { length: n0, text: text_attrs(s, true) },
            "national character" | "national char" => T::Char { length: Some(n0.unwrap_or(1)), text: text_attrs(s, true) },
            _ => T::Other { name: s.short() },
        },
    }
}

/// SQLite has type affinity, not types; names are free text. This reads
/// the names people (and barge) write, then falls back to the affinity
/// rules of <https://sqlite.org/datatype3.html>.
fn recognize_sqlite(s: &TypeSpec) -> ColumnType {
    use ColumnType as T;
    let name = s.name.as_str();
    let n0 = s.arg_u32(0);
    match name {
        "" => return T::Other { name: String::new() },
        "tinyint" => return T::Int { bits: 8, unsigned: s.unsigned },
        "smallint" | "int2" => return T::Int { bits: 16, unsigned: s.unsigned },
        "mediumint" | "int" => return T::Int { bits: 32, unsigned: s.unsigned },
        "integer" | "bigint" | "int8" => return T::Int { bits: 64, unsigned: s.unsigned },
        "real" | "float" | "double" | "double precision" => return T::Float64,
        "numeric" | "decimal" => {
            return T::Decimal { precision: n0, scale: s.arg_u32(1).or(n0.map(|_| 0)) };
        }
        "varchar" | "character varying" | "nvarchar" | "varying character" | "native character" => {
            return T::Varchar { length: n0, text: text_attrs(s, false) }
        }
        "char" | "character" | "nchar" => return T::Char { length: n0, text: text_attrs(s, false) },
        "text" | "clob" => return T::Text { size: LobSize::Long, text: text_attrs(s, false) },
        "blob" => return T::Blob { size: LobSize::Long },
        "datetime" | "timestamp" => return T::Timestamp { precision: None, tz: false },
        "timestamptz" => return T::Timestamp { precision: None, tz: true },
        "time" => return T::Time { precision: None, tz: false },
        "timetz" => return T::Time { precision: None, tz: true },
        "jsonb" => return T::Jsonb,
        _ => {}
    }
    // SQLite's own affinity rules, in its order (datatype3.html, 3.1).
    let upper = name.to_ascii_uppercase();
    if upper.contains("INT") {
        T::Int { bits: 64, unsigned: false }
    } else if upper.contains("CHAR") || upper.contains("CLOB") || upper.contains("TEXT") {
        T::Text { size: LobSize::Long, text: text_attrs(s, false) }
    } else if upper.contains("BLOB") {
        T::Blob { size: LobSize::Long }
    } else if upper.contains("REAL") || upper.contains("FLOA") || upper.contains("DOUB") {
        T::Float64
    } else if upper.starts_with("BOOL") {
        T::Bool
    } else if upper.contains("DATE") || upper.contains("TIME") {
        // NUMERIC affinity, but these hold dates and times (DATETIME2,
        // SMALLDATETIME): the type their values mean.
        if upper == "DATE" { T::Date } else { T::Timestamp { precision: None, tz: upper.contains("OFFSET") || upper.contains("TZ") } }
    } else if ["GEOMETRY", "POINT", "LINESTRING", "POLYGON", "MULTIPOINT", "MULTILINESTRING", "MULTIPOLYGON", "GEOMETRYCOLLECTION"].contains(&upper.as_str()) {
        // SpatiaLite keeps geometries as blobs.
        T::Blob { size: LobSize::Long }
    } else {
        // Everything else has NUMERIC affinity.
        T::Decimal { precision: n0, scale: s.arg_u32(1).or(n0.map(|_| 0)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType as T;

    fn r(d: Dialect, t: &str) -> ColumnType {
        recognize(d, &parse(t))
    }

    #[test]
    fn parses_shapes() {
        let s = parse("tinyint(1) unsigned zerofill");
        assert_eq!((s.name.as_str(), s.args.clone(), s.unsigned, s.zerofill), ("tinyint", vec!["1".to_string()], true, true));
        let s = parse("[nvarchar](max)");
        assert_eq!((s.name.as_str(), s.args[0].as_str()), ("nvarchar", "max"));
        let s = parse("TIMESTAMP(6) WITH TIME ZONE");
        assert_eq!((s.name.as_str(), s.args[0].as_str()), ("timestamp with time zone", "6"));
        let s = parse("NUMBER(*,0)");
        assert_eq!(s.args, vec!["*", "0"]);
        let s = parse("VARCHAR2(17 BYTE)");
        assert_eq!((s.args[0].as_str(), s.length_unit.as_deref()), ("17", Some("byte")));
        let s = parse("ENUM('a','it''s', 'c,d')");
        assert_eq!(s.args, vec!["a", "it's", "c,d"]);
        let s = parse("integer[][]");
        assert_eq!((s.name.as_str(), s.array_dims), ("integer", 2));
        let s = parse("varchar(10) CHARACTER SET latin1 COLLATE latin1_bin");
        assert_eq!((s.name.as_str(), s.charset.as_deref(), s.collation.as_deref()), ("varchar", Some("latin1"), Some("latin1_bin")));
        let s = parse("\"public\".\"mood\"");
        assert_eq!(s.name, "public.mood");
        let s = parse("INTERVAL DAY(2) TO SECOND(6)");
        assert_eq!((s.name.as_str(), s.args.clone()), ("interval day to second", vec!["2".to_string(), "6".to_string()]));
        let s = parse("character varying(20)");
        assert_eq!(s.name, "character varying");
        let s = parse("varchar(40) binary");
        assert_eq!((s.name.as_str(), s.collation.as_deref()), ("varchar", Some("binary")));
    }

    #[test]
    fn recognizes_per_dialect() {
        assert_eq!(r(Dialect::Mysql, "bigint(20) unsigned"), T::Int { bits: 64, unsigned: true });
        assert_eq!(r(Dialect::Mysql, "decimal(20,6)"), T::Decimal { precision: Some(20), scale: Some(6) });
        assert_eq!(r(Dialect::Mysql, "timestamp(3)"), T::Timestamp { precision: Some(3), tz: true });
        assert_eq!(r(Dialect::Postgres, "numeric"), T::Decimal { precision: None, scale: None });
        assert_eq!(r(Dialect::Postgres, "text[]"), T::Array { element: Box::new(T::text()) });
        assert_eq!(r(Dialect::Mssql, "tinyint"), T::Int { bits: 8, unsigned: true });
        assert_eq!(r(Dialect::Mssql, "datetimeoffset(7)"), T::Timestamp { precision: Some(7), tz: true });
        assert_eq!(r(Dialect::Oracle, "NUMBER(*,0)"), T::Decimal { precision: Some(38), scale: Some(0) });
        assert_eq!(r(Dialect::Oracle, "NUMBER(10)"), T::Decimal { precision: Some(10), scale: Some(0) });
        assert_eq!(r(Dialect::Oracle, "DATE"), T::Timestamp { precision: Some(0), tz: false });
        assert_eq!(r(Dialect::Oracle, "DECIMAL(12,2)"), T::Decimal { precision: Some(12), scale: Some(2) });
        assert_eq!(r(Dialect::Oracle, "NUMERIC(5)"), T::Decimal { precision: Some(5), scale: Some(0) });
        assert_eq!(r(Dialect::Oracle, "DEC"), T::Decimal { precision: Some(38), scale: Some(0) });
        assert_eq!(r(Dialect::Oracle, "DOUBLE PRECISION"), T::Float64);
        assert_eq!(r(Dialect::Oracle, "FLOAT(24)"), T::Float64);
        assert_eq!(r(Dialect::Sqlite, "VARCHAR(255)"), T::varchar(255));
        assert_eq!(r(Dialect::Sqlite, "UNSIGNED BIG INT"), T::Int { bits: 64, unsigned: false });
        assert_eq!(r(Dialect::Sqlite, "VARYING CHARACTER(255)"), T::varchar(255));
        assert_eq!(r(Dialect::Sqlite, "NATIVE CHARACTER(70)"), T::varchar(70));
        assert_eq!(r(Dialect::Sqlite, "LONG VARCHAR"), T::text());
        assert_eq!(r(Dialect::Sqlite, "BLOB SUB_TYPE TEXT"), T::text());
        assert_eq!(r(Dialect::Sqlite, "DATETIME2"), T::Timestamp { precision: None, tz: false });
        assert_eq!(r(Dialect::Sqlite, "MONEY"), T::Decimal { precision: None, scale: None });
        assert_eq!(r(Dialect::Sqlite, "CURRENCY(10,2)"), T::Decimal { precision: Some(10), scale: Some(2) });
    }

    #[test]
    fn hostile_type_text_does_not_panic() {
        for t in ["(((", ")", "'", "[", "enum('", "a.b.", "x(-1)", "numeric(99999999999999999999)", "\u{0}"] {
            for d in Dialect::ALL {
                let _ = recognize(d, &parse(t));
            }
        }
    }
}

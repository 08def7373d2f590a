//! Column types: a closed enum, wide enough to describe every engine barge
//! reads without losing what matters for a faithful copy. Anything else is
//! kept as its original text in [`ColumnType::Other`].

use serde::{Deserialize, Serialize};

use super::schema::QualifiedName;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnType {
    Bool,
    /// Integers of 8, 16, 32 or 64 bits.
    Int { bits: u8, unsigned: bool },
    /// Exact numeric. `precision: None` means unbounded (PostgreSQL `numeric`,
    /// Oracle bare `NUMBER`); there is deliberately no upper limit.
    Decimal { precision: Option<u32>, scale: Option<u32> },
    Float32,
    Float64,
    Char { length: Option<u32>, #[serde(default)] text: TextAttrs },
    Varchar { length: Option<u32>, #[serde(default)] text: TextAttrs },
    Text { size: LobSize, #[serde(default)] text: TextAttrs },
    Binary { length: Option<u32> },
    Varbinary { length: Option<u32> },
    Blob { size: LobSize },
    Date,
    Time { precision: Option<u8>, tz: bool },
    Timestamp { precision: Option<u8>, tz: bool },
    Interval { fields: Option<String>, precision: Option<u8> },
    Json,
    Jsonb,
    Uuid,
    /// `name` is set for a named type (PostgreSQL `CREATE TYPE`), unset for
    /// an inline MySQL `enum(...)`.
    Enum { name: Option<QualifiedName>, values: Vec<String> },
    Set { values: Vec<String> },
    Bit { length: Option<u32>, varying: bool },
    Year,
    Array { element: Box<ColumnType> },
    Xml,
    /// A type barge does not model, kept as written.
    Other { name: String },
}

/// Character set and collation, as declared on a text column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TextAttrs {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub charset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub collation: Option<String>,
    /// NCHAR / NVARCHAR: national (Unicode) character set.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub national: bool,
}

/// Size class of a large object; MySQL distinguishes tiny/regular/medium/long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LobSize {
    Tiny,
    Regular,
    Medium,
    #[default]
    Long,
}

impl ColumnType {
    pub fn int(bits: u8) -> Self {
        ColumnType::Int { bits, unsigned: false }
    }
    pub fn text() -> Self {
        ColumnType::Text { size: LobSize::Long, text: TextAttrs::default() }
    }
    pub fn varchar(n: u32) -> Self {
        ColumnType::Varchar { length: Some(n), text: TextAttrs::default() }
    }

    pub fn is_integer(&self) -> bool {
        matches!(self, ColumnType::Int { .. })
    }

    pub fn is_textual(&self) -> bool {
        matches!(self, ColumnType::Char { .. } | ColumnType::Varchar { .. } | ColumnType::Text { .. })
    }

    pub fn is_temporal(&self) -> bool {
        matches!(
            self,
            ColumnType::Date | ColumnType::Time { .. } | ColumnType::Timestamp { .. } | ColumnType::Year
        )
    }

    pub fn text_attrs(&self) -> Option<&TextAttrs> {
        match self {
            ColumnType::Char { text, .. } | ColumnType::Varchar { text, .. } | ColumnType::Text { text, .. } => {
                Some(text)
            }
            _ => None,
        }
    }

    pub fn text_attrs_mut(&mut self) -> Option<&mut TextAttrs> {
        match self {
            ColumnType::Char { text, .. } | ColumnType::Varchar { text, .. } | ColumnType::Text { text, .. } => {
                Some(text)
            }
            _ => None,
        }
    }

    /// A short dialect-neutral name, for reports.
    pub fn describe(&self) -> String {
        match self {
            ColumnType::Bool => "bool".into(),
            ColumnType::Int { bits, unsigned } => {
                format!("{}int{bits}", if *unsigned { "u" } else { "" })
            }
            ColumnType::Decimal { precision: Some(p), scale } => format!("decimal({p},{})", scale.unwrap_or(0)),
            ColumnType::Decimal { precision: None, .. } => "decimal".into(),
            ColumnType::Float32 => "float32".into(),
            ColumnType::Float64 => "float64".into(),
            ColumnType::Char { length, .. } => with_len("char", *length),
            ColumnType::Varchar { length, .. } => with_len("varchar", *length),
            ColumnType::Text { .. } => "text".into(),
            ColumnType::Binary { length } => with_len("binary", *length),
            ColumnType::Varbinary { length } => with_len("varbinary", *length),
            ColumnType::Blob { .. } => "blob".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Time { precision, tz } => {
                format!("time{}{}", prec(*precision), if *tz { " with zone" } else { "" })
            }
            ColumnType::Timestamp { precision, tz } => {
                format!("timestamp{}{}", prec(*precision), if *tz { " with zone" } else { "" })
            }
            ColumnType::Interval { .. } => "interval".into(),
            ColumnType::Json => "json".into(),
            ColumnType::Jsonb => "jsonb".into(),
            ColumnType::Uuid => "uuid".into(),
            ColumnType::Enum { values, .. } => format!("enum({} values)", values.len()),
            ColumnType::Set { values } => format!("set({} values)", values.len()),
            ColumnType::Bit { length, varying } => {
                with_len(if *varying { "varbit" } else { "bit" }, *length)
            }
            ColumnType::Year => "year".into(),
            ColumnType::Array { element } => format!("{}[]", element.describe()),
            ColumnType::Xml => "xml".into(),
            ColumnType::Other { name } => name.clone(),
        }
    }
}

fn with_len(name: &str, len: Option<u32>) -> String {
    match len {
        Some(n) => format!("{name}({n})"),
        None => name.to_string(),
    }
}

fn prec(p: Option<u8>) -> String {
    p.map(|p| format!("({p})")).unwrap_or_default()
}

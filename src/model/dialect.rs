//! SQL dialects barge reads and writes, with their capabilities as methods,
//! so code asks "does the target have X" instead of comparing names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Mysql,
    Postgres,
    Sqlite,
    Mssql,
    Oracle,
}

impl Dialect {
    pub const ALL: [Dialect; 5] = [Dialect::Mysql, Dialect::Postgres, Dialect::Sqlite, Dialect::Mssql, Dialect::Oracle];
    pub const TARGETS: [Dialect; 3] = [Dialect::Postgres, Dialect::Mysql, Dialect::Sqlite];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Mysql => "mysql",
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
            Dialect::Mssql => "mssql",
            Dialect::Oracle => "oracle",
        }
    }

    pub fn is_target(self) -> bool {
        Self::TARGETS.contains(&self)
    }

    /// Longest identifier the engine accepts, in bytes (`None`: no practical limit).
    pub fn max_identifier_len(self) -> Option<usize> {
        match self {
            Dialect::Postgres => Some(63),
            Dialect::Mysql => Some(64),
            Dialect::Mssql => Some(128),
            Dialect::Oracle => Some(128),
            Dialect::Sqlite => None,
        }
    }

    /// Index names share one namespace per schema (PostgreSQL, SQLite) rather
    /// than per table (MySQL).
    pub fn index_names_per_schema(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::Sqlite | Dialect::Oracle)
    }

    pub fn supports_unsigned(self) -> bool {
        matches!(self, Dialect::Mysql)
    }
    pub fn supports_named_enum_types(self) -> bool {
        matches!(self, Dialect::Postgres)
    }
    pub fn supports_inline_enum(self) -> bool {
        matches!(self, Dialect::Mysql)
    }
    pub fn supports_arrays(self) -> bool {
        matches!(self, Dialect::Postgres)
    }
    pub fn supports_partial_indexes(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::Sqlite)
    }
    pub fn supports_expression_indexes(self) -> bool {
        // MySQL 8.0.13+ and MariaDB (via virtual columns) differ; treat as no
        // and emit a generated column instead.
        matches!(self, Dialect::Postgres | Dialect::Sqlite | Dialect::Oracle)
    }
    pub fn supports_index_prefix_length(self) -> bool {
        matches!(self, Dialect::Mysql)
    }
    pub fn supports_schemas(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::Mssql | Dialect::Oracle)
    }
    pub fn supports_alter_add_foreign_key(self) -> bool {
        !matches!(self, Dialect::Sqlite)
    }
    pub fn supports_comments(self) -> bool {
        !matches!(self, Dialect::Sqlite)
    }
    pub fn supports_sequences(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::Oracle | Dialect::Mssql)
    }
    pub fn supports_transactional_ddl(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::Sqlite | Dialect::Mssql)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "mysql" | "mariadb" => Ok(Dialect::Mysql),
            "postgres" | "postgresql" | "pg" => Ok(Dialect::Postgres),
            "sqlite" | "sqlite3" => Ok(Dialect::Sqlite),
            "mssql" | "sqlserver" | "tsql" => Ok(Dialect::Mssql),
            "oracle" => Ok(Dialect::Oracle),
            other => Err(format!(
                "unknown dialect `{other}`; known: mysql (mariadb), postgres, sqlite, mssql, oracle"
            )),
        }
    }
}

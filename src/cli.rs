//! The command-line definition. One clap definition drives `--help`, the man
//! pages in `man/` and shell completions, so they can never disagree.

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::commands;

/// Move databases and bulk data between systems: convert schemas between SQL
/// dialects, copy a live database with full load plus change data capture,
/// and ship terabytes on encrypted disks.
#[derive(Debug, Parser)]
#[command(name = "barge", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Print a machine-readable JSON result on stdout instead of tables and progress bars
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (repeat for more)
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to use colors and progress bars
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert DDL from one SQL dialect to another and write an assessment report
    #[command(name = "convert-schema")]
    ConvertSchema(commands::convert::ConvertArgs),
    /// Copy a database to another database, S3 or a stream: full load, then change data capture
    Migrate(Box<commands::migrate::MigrateArgs>),
    /// Compare a source and a target: row counts and per-range checksums
    Validate(commands::migrate::ValidateArgs),
    /// Write a directory tree or a database onto attached disks as an encrypted, checksummed image
    Pack(commands::pack::PackArgs),
    /// Restore a packed image to a directory, object storage or a database
    Unpack(commands::pack::UnpackArgs),
    /// Check a packed image: sizes and checksums without the key, or every byte with --deep
    Verify(commands::pack::VerifyArgs),
    /// Estimate whether to send data over the network or ship it on disks
    Advise(commands::advise::AdviseArgs),
    /// Join a migration or a validation shared through a coordinator database (`migrate` or `validate` with `--coordinator URL --task NAME`) as one more worker
    Worker(commands::worker::WorkerArgs),
    /// Show a migration's progress: tables loaded, changes applied, lag
    Status(commands::cdc::StatusArgs),
    /// Remove what change capture installed on a source (PostgreSQL slot and publication, SQLite triggers)
    Cleanup(commands::cdc::CleanupArgs),
    /// Generate man pages or shell completions from this command-line definition
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    pub what: GenerateWhat,
}

#[derive(Debug, Subcommand)]
pub enum GenerateWhat {
    /// Write one man page per command into DIR
    Man { dir: std::path::PathBuf },
    /// Print a completion script for SHELL on stdout
    Completions { shell: clap_complete::Shell },
}

pub fn parse() -> Cli {
    Cli::parse()
}

/// The clap command tree, for generators and tests.
pub fn command() -> clap::Command {
    Cli::command()
}

/// clap's view of the library's option enums: their flag spellings and help
/// live here, so the library stays free of clap. The `match` is exhaustive,
/// so a variant added in the library fails to compile until it is named here.
macro_rules! value_enum {
    ($ty:path { $($variant:ident => $name:literal $(: $help:literal)?),+ $(,)? }) => {
        impl ValueEnum for $ty {
            fn value_variants<'a>() -> &'a [Self] {
                use $ty as E;
                &[$(E::$variant),+]
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                use $ty as E;
                Some(match self {
                    $(E::$variant => clap::builder::PossibleValue::new($name)$(.help($help))?,)+
                })
            }
        }
    };
}

/// `--record-format`: every variant but `Fields`, which files sources
/// make for themselves (no flag value; the match stays exhaustive).
impl ValueEnum for crate::source::records::shape::RecordFormat {
    fn value_variants<'a>() -> &'a [Self] {
        use crate::source::records::shape::RecordFormat as F;
        &[F::Text, F::Bytes, F::Json, F::Csv, F::Parquet, F::Dms, F::Debezium]
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use crate::source::records::shape::RecordFormat as F;
        use clap::builder::PossibleValue as V;
        match self {
            F::Text => Some(V::new("text").help("UTF-8 text, one record per message or line")),
            F::Bytes => Some(V::new("bytes").help("Any bytes (the default layout's `data` is binary)")),
            F::Json => Some(V::new("json").help("A JSON object per record (JSON lines for files)")),
            F::Csv => Some(V::new("csv").help("A CSV line per record, fields in the order of --schema's columns")),
            F::Parquet => Some(V::new("parquet").help("Parquet files (file:// and s3:// sources), columns by name")),
            F::Dms => Some(V::new("dms").help("A change in DMS's envelope (barge's Kinesis and Kafka default): applied to the --schema table it names, by key")),
            F::Debezium => Some(V::new("debezium").help("A change in Debezium's envelope (before, after, op, source): applied to the --schema table it names, by key")),
            F::Fields => None,
        }
    }
}

value_enum!(crate::sink::FileFormat {
    Csv => "csv": "RFC 4180 CSV with a header line",
    Jsonl => "jsonl": "One JSON object per line",
    Parquet => "parquet": "Apache Parquet (typed columns: exact decimals, timestamps with unit and zone)",
});

value_enum!(crate::sink::Compression {
    None => "none",
    Gzip => "gzip",
    Zstd => "zstd",
    Snappy => "snappy": "Snappy (the framing format for CSV and JSON lines, as Firehose writes it)",
});

value_enum!(crate::sink::PartitionKey {
    PrimaryKey => "primary-key": "The row's primary key: rows spread over shards, each row's changes in order",
    SchemaTable => "schema-table": "schema.table: one table's changes all in order, on one shard",
});

value_enum!(crate::sink::EnvelopeKind {
    Dms => "dms": "DMS's: {\"data\": {...}, \"metadata\": {...}}",
    Debezium => "debezium": "Debezium's: {\"before\", \"after\", \"op\", \"ts_ms\", \"source\"}",
    Raw => "raw": "A record source's records as they came: the payload as the message, the record's key as its key (the default from a stream into a stream)",
});

value_enum!(crate::transfer::OnError {
    Stop => "stop": "Stop the whole run at the first bad row (nothing half-loaded is kept for that chunk)",
    SkipTable => "skip-table": "Give up on the table, keep loading the others",
    Log => "log": "Write the row to the rejects file with the reason, and go on",
});

value_enum!(crate::transfer::ZeroDates {
    Null => "null": "Load them as NULL and count them",
    Reject => "reject": "Treat them as bad rows (see --on-error)",
});

value_enum!(crate::schema::naming::IdentCase {
    Lower => "lower": "lower-case every identifier (pgloader's and ora2pg's default)",
    Preserve => "preserve": "keep names exactly as written (quoted where the target needs it)",
    Snake => "snake": "CamelCase and UPPER names become snake_case",
});

value_enum!(crate::task::target_schema::SchemaMode {
    Create => "create": "Create the tables; refuse if one already exists",
    Truncate => "truncate": "Empty existing tables, then load",
    Append => "append": "Load into existing tables as they are",
    Skip => "skip": "Leave tables that already exist alone; create and load the others",
});

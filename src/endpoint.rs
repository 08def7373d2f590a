//! Endpoint URLs, parsed in one place: a registry keyed by URL scheme.
//!
//! Secrets never come from argv (they would show in `ps` and shell history),
//! so a URL with an inline password is refused; passwords come from the
//! environment or a file instead (see [`Secret`] and [`password_for`]).
//! Every `Display` of an endpoint is redacted.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use url::Url;

use crate::error::{Error, Result};

/// Which side of a move an endpoint is on; it picks the password variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Source,
    Target,
}

impl Role {
    pub fn password_var(self) -> &'static str {
        match self {
            Role::Source => "BARGE_SOURCE_PASSWORD",
            Role::Target => "BARGE_TARGET_PASSWORD",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Postgres,
    Mysql,
    Sqlite,
    S3,
    Dir,
    Kinesis,
    Kafka,
}

impl EngineKind {
    pub fn is_database(self) -> bool {
        matches!(self, EngineKind::Postgres | EngineKind::Mysql | EngineKind::Sqlite)
    }
}

/// A parsed endpoint. Fields hold no secrets.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Postgres(DbEndpoint),
    Mysql(DbEndpoint),
    Sqlite(SqliteEndpoint),
    S3(ObjectEndpoint),
    Dir(DirEndpoint),
    Kinesis(StreamEndpoint),
    Kafka(KafkaEndpoint),
}

/// A network database (PostgreSQL or MySQL/MariaDB).
#[derive(Debug, Clone, PartialEq)]
pub struct DbEndpoint {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub database: Option<String>,
    /// Query options as given (`sslmode`, `ssl-mode`, `schema`, ...).
    pub options: BTreeMap<String, String>,
    /// The URL as given, redacted; used for display only.
    pub display: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SqliteEndpoint {
    /// `None` for `sqlite::memory:`.
    pub path: Option<PathBuf>,
    pub options: BTreeMap<String, String>,
    pub display: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEndpoint {
    pub bucket: String,
    /// Key prefix without leading or trailing slash; may be empty.
    pub prefix: String,
    pub options: BTreeMap<String, String>,
    pub display: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DirEndpoint {
    pub path: PathBuf,
    pub options: BTreeMap<String, String>,
    pub display: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StreamEndpoint {
    pub stream: String,
    pub options: BTreeMap<String, String>,
    pub display: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KafkaEndpoint {
    pub brokers: Vec<String>,
    pub topic: String,
    pub options: BTreeMap<String, String>,
    pub display: String,
}

type ParseFn = fn(&str) -> Result<Endpoint>;

/// One entry per endpoint kind: the schemes that select it and its parser.
pub struct Scheme {
    pub names: &'static [&'static str],
    pub kind: EngineKind,
    pub example: &'static str,
    parse: ParseFn,
}

pub static REGISTRY: &[Scheme] = &[
    Scheme {
        names: &["postgres", "postgresql"],
        kind: EngineKind::Postgres,
        example: "postgres://user@host:5432/db?sslmode=verify-full",
        parse: parse_postgres,
    },
    Scheme {
        names: &["mysql", "mariadb"],
        kind: EngineKind::Mysql,
        example: "mysql://user@host:3306/db?ssl-mode=VERIFY_IDENTITY",
        parse: parse_mysql,
    },
    Scheme {
        names: &["sqlite"],
        kind: EngineKind::Sqlite,
        example: "sqlite:path/to/file.db or sqlite::memory:",
        parse: parse_sqlite,
    },
    Scheme { names: &["s3"], kind: EngineKind::S3, example: "s3://bucket/prefix", parse: parse_s3 },
    Scheme { names: &["file"], kind: EngineKind::Dir, example: "file:///dir", parse: parse_dir },
    Scheme {
        names: &["kinesis"],
        kind: EngineKind::Kinesis,
        example: "kinesis://stream?region=us-east-1",
        parse: parse_kinesis,
    },
    Scheme {
        names: &["kafka"],
        kind: EngineKind::Kafka,
        example: "kafka://host:9092/topic",
        parse: parse_kafka,
    },
];

/// The scheme names barge knows, for error messages and docs.
pub fn known_schemes() -> Vec<&'static str> {
    REGISTRY.iter().flat_map(|s| s.names.iter().copied()).collect()
}

impl Endpoint {
    /// Parses an endpoint URL given on the command line.
    pub fn parse(input: &str) -> Result<Endpoint> {
        let scheme = input.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
        let Some(scheme) = scheme.filter(|s| !s.is_empty()) else {
            return Err(url_error(input, "it has no scheme").with_hint(format!(
                "start it with one of: {}",
                known_schemes().iter().map(|s| format!("{s}:")).collect::<Vec<_>>().join(", ")
            )));
        };
        let entry = REGISTRY.iter().find(|s| s.names.contains(&scheme.as_str()));
        match entry {
            Some(entry) => (entry.parse)(input),
            None => Err(url_error(input, &format!("unknown scheme `{scheme}`")).with_hint(format!(
                "known schemes: {}",
                known_schemes().iter().map(|s| format!("{s}:")).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            Endpoint::Postgres(_) => EngineKind::Postgres,
            Endpoint::Mysql(_) => EngineKind::Mysql,
            Endpoint::Sqlite(_) => EngineKind::Sqlite,
            Endpoint::S3(_) => EngineKind::S3,
            Endpoint::Dir(_) => EngineKind::Dir,
            Endpoint::Kinesis(_) => EngineKind::Kinesis,
            Endpoint::Kafka(_) => EngineKind::Kafka,
        }
    }

    pub fn options(&self) -> &BTreeMap<String, String> {
        match self {
            Endpoint::Postgres(e) | Endpoint::Mysql(e) => &e.options,
            Endpoint::Sqlite(e) => &e.options,
            Endpoint::S3(e) => &e.options,
            Endpoint::Dir(e) => &e.options,
            Endpoint::Kinesis(e) => &e.options,
            Endpoint::Kafka(e) => &e.options,
        }
    }

    fn display_str(&self) -> &str {
        match self {
            Endpoint::Postgres(e) | Endpoint::Mysql(e) => &e.display,
            Endpoint::Sqlite(e) => &e.display,
            Endpoint::S3(e) => &e.display,
            Endpoint::Dir(e) => &e.display,
            Endpoint::Kinesis(e) => &e.display,
            Endpoint::Kafka(e) => &e.display,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_str())
    }
}

impl std::str::FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Endpoint::parse(s)
    }
}

/// A secret that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Finds the password for a database endpoint, in this order:
/// `BARGE_SOURCE_PASSWORD` / `BARGE_TARGET_PASSWORD`, the URL option
/// `password_file=PATH`, then the engine's own variable (`PGPASSWORD`,
/// `MYSQL_PWD`). `None` means connect without one.
pub fn password_for(endpoint: &DbEndpoint, role: Role, engine_var: &str) -> Result<Option<Secret>> {
    if let Ok(p) = std::env::var(role.password_var()) {
        return Ok(Some(Secret(p)));
    }
    if let Some(path) = endpoint.options.get("password_file") {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::Read { path: path.into(), source })?;
        let line = text.lines().next().unwrap_or("").to_string();
        return Ok(Some(Secret(line)));
    }
    Ok(std::env::var(engine_var).ok().map(Secret))
}

/// Redacts any password or secret-looking option in a URL-ish string, for
/// logs and messages. Works on strings that fail to parse as URLs too.
pub fn redact(input: &str) -> String {
    let mut out = input.to_string();
    // user:password@ in the authority part.
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?', '#'])
            .map(|i| rest_start + i)
            .unwrap_or(out.len());
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let at = rest_start + at;
            if let Some(colon) = out[rest_start..at].find(':') {
                let colon = rest_start + colon;
                out.replace_range(colon + 1..at, "***");
            }
        }
    }
    // Secret-looking query options.
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let redacted: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if is_secret_option(k) => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    ["password", "passwd", "pwd", "secret", "token", "secret_access_key", "session_token", "sslpassword"]
        .iter()
        .any(|s| k == *s || k.ends_with(&format!("_{s}")))
}

fn url_error(input: &str, reason: &str) -> Error {
    Error::Url { url: redact(input), reason: reason.to_string(), hint: None }
}

fn query_options(url: &Url, input: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (k, v) in url.query_pairs() {
        if is_secret_option(&k) {
            return Err(inline_secret_error(input, role_neutral_hint()));
        }
        map.insert(k.into_owned(), v.into_owned());
    }
    Ok(map)
}

fn role_neutral_hint() -> &'static str {
    "passwords are not accepted on the command line, where `ps` and shell history would show them; \
     set BARGE_SOURCE_PASSWORD / BARGE_TARGET_PASSWORD, or add ?password_file=PATH to the URL"
}

fn inline_secret_error(input: &str, hint: &str) -> Error {
    url_error(input, "it contains a password").with_hint(hint)
}

fn parse_network_db(input: &str, default_port: u16) -> Result<DbEndpoint> {
    let url = Url::parse(input).map_err(|e| url_error(input, &e.to_string()))?;
    if url.password().is_some() {
        return Err(inline_secret_error(input, role_neutral_hint()));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| url_error(input, "it has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let database = url.path().trim_start_matches('/');
    let database = percent_decode(database);
    let user = (!url.username().is_empty()).then(|| percent_decode(url.username()));
    let options = query_options(&url, input)?;
    let _ = default_port;
    Ok(DbEndpoint {
        host,
        port: url.port(),
        user,
        database: (!database.is_empty()).then_some(database),
        options,
        display: redact(input),
    })
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn parse_postgres(input: &str) -> Result<Endpoint> {
    let e = parse_network_db(input, 5432)?;
    if let Some(mode) = e.options.get("sslmode") {
        const MODES: &[&str] = &["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];
        if !MODES.contains(&mode.as_str()) {
            return Err(url_error(input, &format!("unknown sslmode `{mode}`"))
                .with_hint(format!("use one of: {}", MODES.join(", "))));
        }
    }
    Ok(Endpoint::Postgres(e))
}

fn parse_mysql(input: &str) -> Result<Endpoint> {
    let e = parse_network_db(input, 3306)?;
    // One rule for every spelling (ssl-mode, ssl_mode, sslmode; MySQL or libpq names).
    crate::db::mysql::SslMode::from_options(&e.options).map_err(|bad| {
        url_error(input, &format!("unknown ssl-mode `{bad}`")).with_hint(format!("use one of: {}", crate::db::mysql::SslMode::NAMES.join(", ")))
    })?;
    Ok(Endpoint::Mysql(e))
}

fn split_query(rest: &str) -> (&str, BTreeMap<String, String>) {
    match rest.split_once('?') {
        Some((path, q)) => (
            path,
            url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        ),
        None => (rest, BTreeMap::new()),
    }
}

fn parse_sqlite(input: &str) -> Result<Endpoint> {
    // Accept `sqlite:path`, `sqlite://path` (relative) and `sqlite:///abs`.
    let rest = &input["sqlite:".len()..];
    let (path, options) = split_query(rest);
    if path == ":memory:" || path == "//:memory:" {
        return Ok(Endpoint::Sqlite(SqliteEndpoint { path: None, options, display: input.into() }));
    }
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err(url_error(input, "it names no file")
            .with_hint("write sqlite:path/to/file.db or sqlite::memory:"));
    }
    Ok(Endpoint::Sqlite(SqliteEndpoint { path: Some(PathBuf::from(path)), options, display: redact(input) }))
}

fn parse_s3(input: &str) -> Result<Endpoint> {
    let url = Url::parse(input).map_err(|e| url_error(input, &e.to_string()))?;
    if url.password().is_some() || !url.username().is_empty() {
        return Err(inline_secret_error(
            input,
            "credentials are read from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not the URL",
        ));
    }
    let bucket = url.host_str().unwrap_or("").to_string();
    if bucket.is_empty() {
        return Err(url_error(input, "it names no bucket").with_hint("write s3://bucket/prefix"));
    }
    let prefix = url.path().trim_matches('/').to_string();
    Ok(Endpoint::S3(ObjectEndpoint { bucket, prefix, options: query_options(&url, input)?, display: redact(input) }))
}

fn parse_dir(input: &str) -> Result<Endpoint> {
    let url = Url::parse(input).map_err(|e| url_error(input, &e.to_string()))?;
    let path = url
        .to_file_path()
        .map_err(|_| url_error(input, "it is not an absolute local path").with_hint("write file:///absolute/dir"))?;
    Ok(Endpoint::Dir(DirEndpoint { path, options: query_options(&url, input)?, display: redact(input) }))
}

fn parse_kinesis(input: &str) -> Result<Endpoint> {
    let url = Url::parse(input).map_err(|e| url_error(input, &e.to_string()))?;
    let stream = url.host_str().unwrap_or("").to_string();
    if stream.is_empty() {
        return Err(url_error(input, "it names no stream").with_hint("write kinesis://stream-name?region=..."));
    }
    Ok(Endpoint::Kinesis(StreamEndpoint { stream, options: query_options(&url, input)?, display: redact(input) }))
}

fn parse_kafka(input: &str) -> Result<Endpoint> {
    let url = Url::parse(input).map_err(|e| url_error(input, &e.to_string()))?;
    if url.password().is_some() {
        return Err(inline_secret_error(input, "set BARGE_KAFKA_PASSWORD instead"));
    }
    let host = url.host_str().unwrap_or("");
    if host.is_empty() {
        return Err(url_error(input, "it names no broker").with_hint("write kafka://host:9092/topic"));
    }
    let mut brokers = vec![format!("{host}:{}", url.port().unwrap_or(9092))];
    let options = query_options(&url, input)?;
    if let Some(more) = options.get("brokers") {
        brokers.extend(more.split(',').map(str::to_string));
    }
    let topic = url.path().trim_matches('/').to_string();
    if topic.is_empty() {
        return Err(url_error(input, "it names no topic").with_hint("write kafka://host:9092/topic"));
    }
    Ok(Endpoint::Kafka(KafkaEndpoint { brokers, topic, options, display: redact(input) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scheme_parses() {
        for (url, kind) in [
            ("postgres://u@h:5432/db", EngineKind::Postgres),
            ("postgresql://h/db", EngineKind::Postgres),
            ("mysql://u@127.0.0.1:3306/shop", EngineKind::Mysql),
            ("mariadb://h/db", EngineKind::Mysql),
            ("sqlite:fixtures/x.db", EngineKind::Sqlite),
            ("sqlite::memory:", EngineKind::Sqlite),
            ("s3://bucket/a/b", EngineKind::S3),
            ("file:///tmp/out", EngineKind::Dir),
            ("kinesis://stream?region=eu-west-1", EngineKind::Kinesis),
            ("kafka://127.0.0.1:9092/topic", EngineKind::Kafka),
        ] {
            assert_eq!(Endpoint::parse(url).unwrap().kind(), kind, "{url}");
        }
    }

    #[test]
    fn unknown_scheme_lists_known_ones() {
        let err = Endpoint::parse("oracle://h/db").unwrap_err();
        assert!(err.to_string().contains("unknown scheme `oracle`"));
        let hint = err.hint().unwrap();
        for s in ["postgres:", "mysql:", "sqlite:", "s3:", "file:", "kinesis:", "kafka:"] {
            assert!(hint.contains(s), "{hint}");
        }
    }

    #[test]
    fn inline_password_is_refused_and_never_echoed() {
        let err = Endpoint::parse("postgres://u:hunter2@h/db").unwrap_err();
        let text = format!("{err} {:?} {}", err, err.hint().unwrap());
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("BARGE_SOURCE_PASSWORD"));
        let err = Endpoint::parse("mysql://u@h/db?password=hunter2").unwrap_err();
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn redact_hides_passwords_and_secret_options() {
        assert_eq!(redact("postgres://u:pw@h:1/db?sslmode=require"), "postgres://u:***@h:1/db?sslmode=require");
        assert_eq!(redact("s3://b/p?aws_secret_access_key=abc&region=x"), "s3://b/p?aws_secret_access_key=***&region=x");
        assert_eq!(redact("mysql://u@h/db"), "mysql://u@h/db");
        assert_eq!(redact("not a url:pw@x"), "not a url:pw@x");
    }

    #[test]
    fn sqlite_paths() {
        let Endpoint::Sqlite(e) = Endpoint::parse("sqlite:///abs/x.db").unwrap() else { panic!() };
        assert_eq!(e.path.unwrap(), PathBuf::from("/abs/x.db"));
        let Endpoint::Sqlite(e) = Endpoint::parse("sqlite:rel/x.db?mode=ro").unwrap() else { panic!() };
        assert_eq!(e.path.unwrap(), PathBuf::from("rel/x.db"));
        assert_eq!(e.options.get("mode").unwrap(), "ro");
        assert!(Endpoint::parse("sqlite:").is_err());
    }

    #[test]
    fn bad_sslmode_is_named() {
        let err = Endpoint::parse("postgres://h/db?sslmode=maybe").unwrap_err();
        assert!(err.to_string().contains("maybe"));
    }
}

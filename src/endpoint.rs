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
    /// The PostgreSQL database that coordinates workers (`--coordinator`).
    Coordinator,
}

impl Role {
    pub fn password_var(self) -> &'static str {
        match self {
            Role::Source => "BARGE_SOURCE_PASSWORD",
            Role::Target => "BARGE_TARGET_PASSWORD",
            Role::Coordinator => "BARGE_COORDINATOR_PASSWORD",
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
    /// Another destination from the sink registry ([`crate::sink::REGISTRY`]).
    Sink,
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
    /// A destination the sink registry adds that needs no fields of its
    /// own beyond where it points (`null://`).
    Sink(SinkEndpoint),
}

/// A registry destination's URL: its scheme, and what follows `scheme://`.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkEndpoint {
    pub scheme: &'static str,
    pub location: String,
    pub options: BTreeMap<String, String>,
    pub display: String,
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

/// One entry per endpoint kind: the schemes that select it, the URL
/// options it reads, and its parser.
pub struct Scheme {
    pub names: &'static [&'static str],
    pub kind: EngineKind,
    pub example: &'static str,
    /// Every `?option=` this kind reads; any other is refused, so a typo
    /// (`?sslmod=verify-full`) fails instead of being ignored.
    pub options: &'static [&'static str],
    pub parse: ParseFn,
}

const PG_OPTIONS: &[&str] = &["sslmode", "sslrootcert", "host", "schema", "connect_timeout", "password_file"];
const MYSQL_OPTIONS: &[&str] =
    &["ssl-mode", "ssl_mode", "sslmode", "ssl-ca", "ssl_ca", "sslrootcert", "connect_timeout", "connect-timeout", "password_file"];

/// The databases; destinations that are not are listed with how to open
/// them in [`crate::sink::REGISTRY`], and parsed through it.
pub static REGISTRY: &[Scheme] = &[
    Scheme {
        names: &["postgres", "postgresql"],
        kind: EngineKind::Postgres,
        example: "postgres://user@host:5432/db?sslmode=verify-full",
        options: PG_OPTIONS,
        parse: parse_postgres,
    },
    Scheme {
        names: &["mysql", "mariadb"],
        kind: EngineKind::Mysql,
        example: "mysql://user@host:3306/db?ssl-mode=VERIFY_IDENTITY",
        options: MYSQL_OPTIONS,
        parse: parse_mysql,
    },
    Scheme {
        names: &["sqlite"],
        kind: EngineKind::Sqlite,
        example: "sqlite:path/to/file.db or sqlite::memory:",
        options: &[],
        parse: parse_sqlite,
    },
];

/// The scheme names barge knows, for error messages and docs.
pub fn known_schemes() -> Vec<&'static str> {
    schemes().flat_map(|s| s.names.iter().copied()).collect()
}

/// Every scheme: the databases', the sink registry's, then the record
/// sources' own.
fn schemes() -> impl Iterator<Item = &'static Scheme> {
    REGISTRY.iter().chain(crate::sink::REGISTRY.iter().map(|c| &c.scheme)).chain(crate::source::records::SCHEMES.iter())
}

/// Parses `scheme://location?options` for a registry destination that
/// needs nothing more (`null://`).
pub fn parse_plain(input: &str, scheme: &'static str, known: &[&str]) -> Result<Endpoint> {
    let rest = &input[input.find(':').map(|i| i + 1).unwrap_or(input.len())..];
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (location, query) = match rest.split_once('?') {
        Some((l, q)) => (l, Some(q)),
        None => (rest, None),
    };
    let options = query_options(query, input, known)?;
    let location = percent_decode(location, input, "the location")?;
    Ok(Endpoint::Sink(SinkEndpoint { scheme, location, options, display: redact(input) }))
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
        let entry = schemes().find(|s| s.names.contains(&scheme.as_str()));
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
            Endpoint::Sink(_) => EngineKind::Sink,
        }
    }

    /// The scheme that names this kind of endpoint (its first name).
    pub fn scheme(&self) -> &'static str {
        match self {
            Endpoint::Sink(e) => e.scheme,
            other => {
                let kind = other.kind();
                schemes().find(|s| s.kind == kind).map(|s| s.names[0]).unwrap_or("")
            }
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
            Endpoint::Sink(e) => &e.options,
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
            Endpoint::Sink(e) => &e.display,
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

/// Where the userinfo of `scheme://userinfo@host…` lies: from `://` to the
/// last `@`. A password may hold `/`, `#`, `?` or `@`, which a URL parser
/// takes for the end of the authority (and then prints the rest as a port,
/// a path or a query), so this split comes before any parsing. An `@` in an
/// option value is taken for the end of the userinfo too: that errs on the
/// side of hiding.
fn userinfo_span(input: &str) -> Option<(usize, usize)> {
    let start = input.find("://")? + 3;
    let at = start + input[start..].rfind('@')?;
    Some((start, at))
}

/// Whether a userinfo candidate is really one: text before an `@` that
/// holds a `/`, `?` or `#` but no `:` (so no password) is a path or query
/// with an `@` in it.
fn is_userinfo(info: &str) -> bool {
    info.contains(':') || !info.contains(['/', '?', '#'])
}

/// Redacts a URL-ish string for logs and messages: the password (everything
/// between the user name's `:` and the last `@`), and the value of every
/// query option that looks secret or that the scheme does not know (a
/// misspelt `?pasword=` must not print either). Works on strings that fail
/// to parse as URLs too.
pub fn redact(input: &str) -> String {
    let (head, rest) = match userinfo_span(input) {
        Some((start, at)) if is_userinfo(&input[start..at]) => {
            let info = &input[start..at];
            let shown = match info.find(':') {
                Some(colon) => format!("{}:***", &info[..colon]),
                None => info.to_string(),
            };
            (format!("{}{shown}", &input[..start]), &input[at..])
        }
        _ => (String::new(), input),
    };
    let known = scheme_of(input).map(|s| s.options);
    match rest.split_once('?') {
        Some((path, query)) => format!("{head}{path}?{}", redact_query(query, known)),
        None => format!("{head}{rest}"),
    }
}

fn redact_query(query: &str, known: Option<&[&str]>) -> String {
    let shown = |k: &str| !is_secret_option(k) && known.is_some_and(|known| known.contains(&k));
    query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if !shown(k) => format!("{k}=***"),
            None if !kv.is_empty() && !shown(kv) => "***".to_string(),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn scheme_of(input: &str) -> Option<&'static Scheme> {
    let (scheme, _) = input.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    schemes().find(|s| s.names.contains(&scheme.as_str()))
}

/// Option names that carry a secret (`password`, `pass`, `pwd`, `secret`,
/// `token`, any `*_password`, ...). `password_file` names a file, which is
/// the supported way to give one.
fn is_secret_option(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace('-', "_");
    if k == "password_file" {
        return false;
    }
    ["pass", "pwd", "secret", "token", "credential"].iter().any(|s| k.contains(s)) || k == "key" || k.ends_with("_key")
}

fn url_error(input: &str, reason: &str) -> Error {
    Error::Url { url: redact(input), reason: reason.to_string(), hint: None }
}

/// The query options, percent-decoded (a `+` stays a `+`, as in libpq),
/// each checked against what the scheme reads: a secret is refused, an
/// unknown name is an error that lists the known ones.
fn query_options(query: Option<&str>, input: &str, known: &[&str]) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for kv in query.unwrap_or("").split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let k = percent_decode(k, input, "an option name")?;
        if is_secret_option(&k) {
            return Err(inline_secret_error(input, role_neutral_hint()));
        }
        if !known.contains(&k.as_str()) {
            let listed = if known.is_empty() { "this kind of endpoint takes no options".to_string() } else { format!("known options: {}", known.join(", ")) };
            return Err(url_error(input, &format!("unknown option `{k}`")).with_hint(listed));
        }
        map.insert(k, percent_decode(v, input, "an option value")?);
    }
    Ok(map)
}

fn role_neutral_hint() -> &'static str {
    "passwords are not accepted on the command line, where `ps` and shell history would show them; \
     set BARGE_SOURCE_PASSWORD / BARGE_TARGET_PASSWORD (or PGPASSWORD / MYSQL_PWD), or add ?password_file=PATH to the URL \
     (an `@` that belongs to an option value is written %40)"
}

fn inline_secret_error(input: &str, hint: &str) -> Error {
    url_error(input, "it contains a password").with_hint(hint)
}

/// Takes the userinfo off `scheme://userinfo@rest` before the URL is
/// parsed: a password in it is refused, whatever characters it holds.
/// Returns the percent-decoded user name and the URL without the userinfo.
fn take_userinfo(input: &str, secret_hint: &str) -> Result<(Option<String>, String)> {
    let Some((start, at)) = userinfo_span(input) else { return Ok((None, input.to_string())) };
    let info = &input[start..at];
    if !is_userinfo(info) {
        return Ok((None, input.to_string()));
    }
    if info.contains(':') {
        return Err(inline_secret_error(input, secret_hint));
    }
    let user = percent_decode(info, input, "the user name")?;
    Ok(((!user.is_empty()).then_some(user), format!("{}{}", &input[..start], &input[at + 1..])))
}

/// Percent-decoding as URLs define it (RFC 3986): `%2B` is `+`, and `+`
/// stays `+` (form encoding's `+` for a space does not apply to URLs).
fn percent_decode(s: &str, input: &str, what: &str) -> Result<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| url_error(input, &format!("{what} is not UTF-8 once percent-decoded")))
}

/// The connect timeout a database URL asks for (`connect_timeout=SECONDS`,
/// also spelled `connect-timeout`), or the default.
fn connect_timeout_option(options: &BTreeMap<String, String>, input: &str) -> Result<std::time::Duration> {
    let Some(raw) = options.get("connect_timeout").or(options.get("connect-timeout")) else {
        return Ok(DEFAULT_CONNECT_TIMEOUT);
    };
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0 && *v <= 86_400.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| url_error(input, &format!("connect_timeout `{raw}` is not a number of seconds")).with_hint("write e.g. ?connect_timeout=10 (seconds, more than 0)"))
}

/// How long a database connection may take to open (TCP, TLS and login)
/// unless the URL says otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl DbEndpoint {
    /// The URL's `connect_timeout` (checked when the URL was parsed), or 30 s.
    pub fn connect_timeout(&self) -> std::time::Duration {
        connect_timeout_option(&self.options, &self.display).unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }
}

fn parse_network_db(input: &str, known: &[&str]) -> Result<DbEndpoint> {
    let (user, rest) = take_userinfo(input, role_neutral_hint())?;
    let url = Url::parse(&rest).map_err(|e| url_error(input, &e.to_string()))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| url_error(input, "it has no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let host = percent_decode(&host, input, "the host")?;
    let database = percent_decode(url.path().trim_start_matches('/'), input, "the database name")?;
    let options = query_options(url.query(), input, known)?;
    connect_timeout_option(&options, input)?;
    Ok(DbEndpoint {
        host,
        port: url.port(),
        user,
        database: (!database.is_empty()).then_some(database),
        options,
        display: redact(input),
    })
}

fn parse_postgres(input: &str) -> Result<Endpoint> {
    let e = parse_network_db(input, PG_OPTIONS)?;
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
    let e = parse_network_db(input, MYSQL_OPTIONS)?;
    // One rule for every spelling (ssl-mode, ssl_mode, sslmode; MySQL or libpq names).
    crate::db::mysql::SslMode::from_options(&e.options).map_err(|bad| {
        url_error(input, &format!("unknown ssl-mode `{bad}`")).with_hint(format!("use one of: {}", crate::db::mysql::SslMode::NAMES.join(", ")))
    })?;
    Ok(Endpoint::Mysql(e))
}

fn parse_sqlite(input: &str) -> Result<Endpoint> {
    // Accept `sqlite:path`, `sqlite://path` (relative) and `sqlite:///abs`.
    let rest = &input["sqlite:".len()..];
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let options = query_options(query, input, &[])?;
    if path == ":memory:" || path == "//:memory:" {
        return Ok(Endpoint::Sqlite(SqliteEndpoint { path: None, options, display: redact(input) }));
    }
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() {
        return Err(url_error(input, "it names no file")
            .with_hint("write sqlite:path/to/file.db or sqlite::memory:"));
    }
    Ok(Endpoint::Sqlite(SqliteEndpoint { path: Some(PathBuf::from(path)), options, display: redact(input) }))
}

pub(crate) fn parse_s3(input: &str) -> Result<Endpoint> {
    const CREDENTIALS: &str = "credentials are read from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not the URL";
    let (user, rest) = take_userinfo(input, CREDENTIALS)?;
    if user.is_some() {
        return Err(inline_secret_error(input, CREDENTIALS));
    }
    let url = Url::parse(&rest).map_err(|e| url_error(input, &e.to_string()))?;
    let bucket = url.host_str().unwrap_or("").to_string();
    if bucket.is_empty() {
        return Err(url_error(input, "it names no bucket").with_hint("write s3://bucket/prefix"));
    }
    let prefix = url.path().trim_matches('/').to_string();
    let options = query_options(url.query(), input, &["region", "endpoint"])?;
    Ok(Endpoint::S3(ObjectEndpoint { bucket, prefix, options, display: redact(input) }))
}

pub(crate) fn parse_dir(input: &str) -> Result<Endpoint> {
    let url = Url::parse(input).map_err(|e| url_error(input, &e.to_string()))?;
    let path = url
        .to_file_path()
        .map_err(|_| url_error(input, "it is not an absolute local path").with_hint("write file:///absolute/dir"))?;
    let options = query_options(url.query(), input, &[])?;
    Ok(Endpoint::Dir(DirEndpoint { path, options, display: redact(input) }))
}

pub(crate) fn parse_kinesis(input: &str) -> Result<Endpoint> {
    const CREDENTIALS: &str = "credentials are read from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, not the URL";
    let (_, rest) = take_userinfo(input, CREDENTIALS)?;
    let url = Url::parse(&rest).map_err(|e| url_error(input, &e.to_string()))?;
    let stream = url.host_str().unwrap_or("").to_string();
    if stream.is_empty() {
        return Err(url_error(input, "it names no stream").with_hint("write kinesis://stream-name?region=..."));
    }
    let options = query_options(url.query(), input, &["region", "endpoint", "deaggregate"])?;
    Ok(Endpoint::Kinesis(StreamEndpoint { stream, options, display: redact(input) }))
}

pub(crate) fn parse_kafka(input: &str) -> Result<Endpoint> {
    let (user, rest) = take_userinfo(input, "set BARGE_KAFKA_PASSWORD instead; the user name goes in ?user=")?;
    if user.is_some() {
        return Err(url_error(input, "the SASL user goes in ?user=NAME, not before the host")
            .with_hint("write kafka://host:9092/topic?sasl=scram-sha-256&user=NAME and set BARGE_KAFKA_PASSWORD"));
    }
    let url = Url::parse(&rest).map_err(|e| url_error(input, &e.to_string()))?;
    let host = url.host_str().unwrap_or("");
    if host.is_empty() {
        return Err(url_error(input, "it names no broker").with_hint("write kafka://host:9092/topic"));
    }
    let mut brokers = vec![format!("{host}:{}", url.port().unwrap_or(9092))];
    let options = query_options(url.query(), input, &["brokers", "tls", "sasl", "user", "topics"])?;
    if let Some(more) = options.get("brokers") {
        brokers.extend(more.split(',').map(str::to_string));
    }
    let topic = url.path().trim_matches('/').to_string();
    // A record source may name its topics in ?topics=a,b instead.
    if topic.is_empty() && !options.contains_key("topics") {
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
        // Delimiters inside the password: the userinfo ends at the last `@`.
        assert_eq!(redact("postgres://app:Secret/Slash99@h:5432/db"), "postgres://app:***@h:5432/db");
        assert_eq!(redact("postgres://app:a#b?c@d@h/db?sslmode=disable"), "postgres://app:***@h/db?sslmode=disable");
        // Unknown options may be a misspelt secret: their values are hidden.
        assert_eq!(redact("postgres://u@h/db?pass=hunter2&sslmode=disable"), "postgres://u@h/db?pass=***&sslmode=disable");
        assert_eq!(redact("postgres://u@h/db?sslmod=verify-full"), "postgres://u@h/db?sslmod=***");
        // An `@` in an option value, with no password before it.
        assert_eq!(redact("postgres://h/db?password_file=/run/a@b"), "postgres://h/db?password_file=/run/a@b");
    }

    #[test]
    fn passwords_with_url_delimiters_are_refused_before_parsing() {
        for url in [
            "postgres://app:Secret/Slash99@db.internal:5432/app",
            "postgres://app:123/456@db.internal/app",
            "mysql://app:pa#ss@db/shop",
            "mysql://app:pa?ss=1@db/shop",
            "postgres://app:p@ss@db/app",
            "kafka://u:Secret/Slash99@b:9092/t",
            "s3://AKIA:Secret/Slash99@bucket/prefix",
        ] {
            let err = Endpoint::parse(url).unwrap_err();
            let text = format!("{err} {err:?} {}", err.hint().unwrap_or_default());
            for leak in ["Secret", "Slash99", "456", "pa#ss", "pa?ss", "p@ss"] {
                assert!(!text.contains(leak), "{url}: {text}");
            }
            assert!(err.to_string().contains("contains a password"), "{url}: {err}");
        }
        let hint = Endpoint::parse("postgres://app:x/y@h/db").unwrap_err().hint().unwrap();
        assert!(hint.contains("BARGE_SOURCE_PASSWORD") && hint.contains("password_file"), "{hint}");
    }

    #[test]
    fn unknown_options_are_refused_and_listed() {
        let err = Endpoint::parse("postgres://u@h/db?sslmod=verify-full").unwrap_err();
        assert!(err.to_string().contains("unknown option `sslmod`"), "{err}");
        assert!(err.hint().unwrap().contains("sslmode"), "{:?}", err.hint());
        let err = Endpoint::parse("mysql://u@h/db?ssl_mod=REQUIRED").unwrap_err();
        assert!(err.hint().unwrap().contains("ssl-mode"));
        for url in ["postgres://u@h/db?pass=hunter2", "mysql://u@h/db?passwd=hunter2", "postgres://u@h/db?PASSWORD=hunter2", "kinesis://s?secret=hunter2"] {
            let err = Endpoint::parse(url).unwrap_err();
            let text = format!("{err} {err:?} {}", err.hint().unwrap_or_default());
            assert!(!text.contains("hunter2"), "{text}");
            assert!(err.to_string().contains("contains a password"), "{err}");
        }
        assert!(Endpoint::parse("s3://b/p?regoin=eu").unwrap_err().hint().unwrap().contains("region"));
        assert!(Endpoint::parse("file:///tmp/x?format=csv").is_err());
    }

    #[test]
    fn names_are_percent_decoded_not_form_decoded() {
        let Endpoint::Postgres(e) = Endpoint::parse("postgres://a+b%40corp@h/my+db%2Fx?password_file=/run/a+b").unwrap() else { panic!() };
        assert_eq!(e.user.as_deref(), Some("a+b@corp"));
        assert_eq!(e.database.as_deref(), Some("my+db/x"));
        assert_eq!(e.options["password_file"], "/run/a+b");
    }

    #[test]
    fn connect_timeout_is_checked() {
        let Endpoint::Postgres(e) = Endpoint::parse("postgres://h/db").unwrap() else { panic!() };
        assert_eq!(e.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
        let Endpoint::Postgres(e) = Endpoint::parse("postgres://h/db?connect_timeout=2.5").unwrap() else { panic!() };
        assert_eq!(e.connect_timeout(), std::time::Duration::from_millis(2500));
        for bad in ["0", "-1", "soon", "nan"] {
            let err = Endpoint::parse(&format!("mysql://h/db?connect_timeout={bad}")).unwrap_err();
            assert!(err.to_string().contains("connect_timeout"), "{err}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Password characters, weighted towards the ones URLs give meaning to.
        fn password() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    3 => proptest::char::range('a', 'z'),
                    2 => proptest::char::range('0', '9'),
                    3 => proptest::sample::select(vec!['/', '#', '?', '@', ':', '%', '+', '&', '=', ' ', '[', ']', '\\', '\'', '"', 'é']),
                ],
                6..24,
            )
            .prop_map(|cs| cs.into_iter().collect())
        }

        fn url_with(pw: &str) -> impl Strategy<Value = String> {
            let pw = pw.to_string();
            (
                proptest::sample::select(vec!["postgres", "postgresql", "mysql", "mariadb", "kafka", "s3", "kinesis"]),
                "[a-z][a-z0-9_]{0,8}",
                proptest::sample::select(vec!["db.internal", "127.0.0.1", "[::1]", "h"]),
                proptest::option::of(1u16..65535),
                "[a-z0-9_]{0,8}",
                proptest::sample::select(vec!["", "?sslmode=require", "?connect_timeout=5", "?region=x&endpoint=http://e", "?sslmod=x"]),
            )
                .prop_map(move |(scheme, user, host, port, db, query)| {
                    let port = port.map(|p| format!(":{p}")).unwrap_or_default();
                    format!("{scheme}://{user}:{pw}@{host}{port}/{db}{query}")
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

            /// No error text, hint, debug form or JSON error object, for any
            /// URL, holds the password; neither does the redacted URL.
            #[test]
            fn no_output_holds_the_password((pw, url) in password().prop_flat_map(|pw| (Just(pw.clone()), url_with(&pw)))) {
                let without = url.replacen(&pw, "", 1);
                prop_assume!(!without.contains(&pw));
                let shown = redact(&url);
                prop_assert!(!shown.contains(&pw), "redact: {}", shown);
                let err = Endpoint::parse(&url).expect_err("a URL with a password is refused");
                let json = serde_json::json!({"error": {"kind": err.kind(), "message": err.to_string(), "hint": err.hint()}}).to_string();
                for text in [err.to_string(), format!("{err:?}"), err.hint().unwrap_or_default(), json] {
                    prop_assert!(!text.contains(&pw), "{}", text);
                }
            }

            /// Redaction never panics and never grows a secret, on any text.
            #[test]
            fn redact_takes_any_text(s in "\\PC{0,80}") {
                let _ = redact(&s);
                let _ = Endpoint::parse(&s);
            }
        }
    }

    #[test]
    fn sqlite_paths() {
        let Endpoint::Sqlite(e) = Endpoint::parse("sqlite:///abs/x.db").unwrap() else { panic!() };
        assert_eq!(e.path.unwrap(), PathBuf::from("/abs/x.db"));
        let Endpoint::Sqlite(e) = Endpoint::parse("sqlite:rel/x.db").unwrap() else { panic!() };
        assert_eq!(e.path.unwrap(), PathBuf::from("rel/x.db"));
        assert!(Endpoint::parse("sqlite:rel/x.db?mode=ro").unwrap_err().to_string().contains("unknown option `mode`"));
        assert!(Endpoint::parse("sqlite:").is_err());
    }

    #[test]
    fn bad_sslmode_is_named() {
        let err = Endpoint::parse("postgres://h/db?sslmode=maybe").unwrap_err();
        assert!(err.to_string().contains("maybe"));
    }
}

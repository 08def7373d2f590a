//! `mqtt://host:1883/topic-filter` and `mqtts://host:8883/topic-filter`:
//! what the URL says. Parsed in every build (the scheme is known even
//! where the `mqtt` feature is off, so the error can say so).

use crate::endpoint::{Endpoint, SinkEndpoint};
use crate::error::{Error, Result};

/// Every `?option=` the MQTT source reads. A key's file is `key_file`, not
/// `key`: barge refuses options named like secrets, and a file name is not one.
pub const OPTIONS: &[&str] = &["client_id", "ca", "cert", "key_file", "user", "password_file"];

pub const EXAMPLE: &str = "mqtt://host:1883/sensors/# or mqtts://host:8883/sensors/+/temp?cert=FILE&key_file=FILE";

/// The connection and subscription a URL asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The topic filter subscribed to (`+` and `#` wildcards allowed).
    pub filter: String,
    pub client_id: Option<String>,
    /// PEM file of the CA certificates the server is checked against (else the system's).
    pub ca: Option<String>,
    /// PEM files of the client certificate (chain) and its private key.
    pub cert: Option<String>,
    pub key_file: Option<String>,
    pub user: Option<String>,
    pub password_file: Option<String>,
}

fn bad(input: &str, reason: &str, hint: &str) -> Error {
    Error::Url { url: crate::endpoint::redact(input), reason: reason.into(), hint: Some(hint.into()) }
}

/// The registry's parser for both schemes.
pub fn parse(input: &str) -> Result<Endpoint> {
    let scheme = if input.get(..6).is_some_and(|s| s.eq_ignore_ascii_case("mqtts:")) { "mqtts" } else { "mqtt" };
    let query = input.split_once('?').map(|(_, q)| q).unwrap_or("");
    // Checked before the generic parser, whose answer ("it contains a
    // password") would puzzle someone who wrote mosquitto's `--key`.
    if query.split('&').any(|kv| kv.split('=').next().is_some_and(|k| k.eq_ignore_ascii_case("key"))) {
        return Err(bad(input, "option `key` is not read", "name the client certificate's private key file with ?key_file=PATH (and the certificate with ?cert=PATH)"));
    }
    let Endpoint::Sink(ep) = crate::endpoint::parse_plain(input, scheme, OPTIONS)? else { unreachable!("parse_plain gives a plain endpoint") };
    MqttUrl::from_endpoint(&ep)?;
    Ok(Endpoint::Sink(ep))
}

impl MqttUrl {
    pub fn from_endpoint(ep: &SinkEndpoint) -> Result<MqttUrl> {
        let input = &ep.display;
        let tls = ep.scheme == "mqtts";
        let (authority, filter) = ep.location.split_once('/').unwrap_or((&ep.location, ""));
        if authority.contains('@') {
            return Err(bad(
                input,
                "a user name or password goes in the URL's options and the environment, not before the host",
                "write ?user=NAME and set BARGE_SOURCE_PASSWORD or BARGE_MQTT_PASSWORD (or ?password_file=PATH)",
            ));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad(input, "the port is not a number from 1 to 65535", "write mqtt://host:1883/topic"))?;
        if host.is_empty() {
            return Err(bad(input, "it names no broker", EXAMPLE));
        }
        if filter.is_empty() {
            return Err(bad(input, "it names no topic filter", "add one after the host, e.g. mqtt://host:1883/sensors/# (every topic under sensors/)"));
        }
        check_filter(filter).map_err(|why| bad(input, &format!("topic filter `{filter}`: {why}"), "`+` matches one whole level, `#` the rest and only at the end: sensors/+/temp, sensors/#"))?;
        let opt = |k: &str| ep.options.get(k).filter(|v| !v.is_empty()).cloned();
        let url = MqttUrl {
            tls,
            host: host.to_string(),
            port: port.unwrap_or(if tls { 8883 } else { 1883 }),
            filter: filter.to_string(),
            client_id: opt("client_id"),
            ca: opt("ca"),
            cert: opt("cert"),
            key_file: opt("key_file"),
            user: opt("user"),
            password_file: opt("password_file"),
        };
        if !tls && (url.ca.is_some() || url.cert.is_some() || url.key_file.is_some()) {
            return Err(bad(input, "?ca, ?cert and ?key_file are for TLS", "write mqtts:// (port 8883 by default) to connect with TLS"));
        }
        if url.cert.is_some() != url.key_file.is_some() {
            return Err(bad(input, "a client certificate needs both ?cert=FILE and ?key_file=FILE", "give the certificate's PEM file and its private key's PEM file"));
        }
        if url.password_file.is_some() && url.user.is_none() {
            return Err(bad(input, "?password_file needs ?user=NAME", "add the user name the password belongs to"));
        }
        if let Some(id) = &url.client_id {
            if id.len() > 65535 {
                return Err(bad(input, "the client id is longer than MQTT allows", "give a shorter ?client_id="));
            }
        }
        Ok(url)
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for a bad port.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    match port {
        None => Some((host, None)),
        Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).map(|p| (host, Some(p))),
    }
}

/// MQTT 3.1.1 section 4.7: `#` alone and last, `+` a whole level.
fn check_filter(filter: &str) -> std::result::Result<(), &'static str> {
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err("`#` must be a whole level and the last one");
        }
        if level.contains('+') && *level != "+" {
            return Err("`+` must be a whole level");
        }
    }
    if filter.contains('\0') {
        return Err("it holds a NUL character");
    }
    Ok(())
}

/// The table's name: the filter's fixed levels (`sensors/+/temp` gives
/// `sensors_temp`), or `mqtt` when it has none.
pub fn table_name(ep: &SinkEndpoint) -> String {
    let filter = ep.location.split_once('/').map(|(_, f)| f).unwrap_or("");
    let fixed: Vec<&str> = filter.split('/').filter(|l| !l.is_empty() && *l != "+" && *l != "#").collect();
    if fixed.is_empty() {
        "mqtt".into()
    } else {
        fixed.join("_")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Result<MqttUrl> {
        match Endpoint::parse(s)? {
            Endpoint::Sink(ep) => MqttUrl::from_endpoint(&ep),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn urls_name_broker_port_filter_and_tls() {
        let u = url("mqtt://broker.local/sensors/#").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port, u.filter.as_str()), (false, "broker.local", 1883, "sensors/#"));
        let u = url("mqtts://a1b2-ats.iot.eu-west-1.amazonaws.com/dt/+/temp?cert=/c/dev.pem&key_file=/c/dev.key&client_id=thing-7").unwrap();
        assert_eq!((u.tls, u.port, u.filter.as_str()), (true, 8883, "dt/+/temp"));
        assert_eq!((u.cert.as_deref(), u.key_file.as_deref(), u.client_id.as_deref()), (Some("/c/dev.pem"), Some("/c/dev.key"), Some("thing-7")));
        let u = url("mqtt://[::1]:1884/a/%23").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.filter.as_str()), ("::1", 1884, "a/#"));
        assert_eq!(url("mqtt://h:1883/#").unwrap().filter, "#");
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        for (u, says) in [
            ("mqtt://h:1883", "no topic filter"),
            ("mqtt://h:1883/", "no topic filter"),
            ("mqtt://h:99999/t", "port"),
            ("mqtt://h/a/#/b", "`#` must be"),
            ("mqtt://h/a+/b", "`+` must be"),
            ("mqtt://h/t?ca=/x.pem", "for TLS"),
            ("mqtts://h/t?cert=/c.pem", "both ?cert"),
            ("mqtts://h/t?cert=/c.pem&key=/k.pem", "option `key`"),
            ("mqtt://h/t?password_file=/p", "needs ?user"),
            ("mqtt://h/t?qos=2", "unknown option"),
            ("mqtt://bob@h/t", "not before the host"),
        ] {
            let e = url(u).unwrap_err();
            assert!(e.to_string().contains(says), "{u}: {e}");
        }
    }

    #[test]
    fn an_inline_password_is_refused_and_never_shown() {
        for u in ["mqtt://bob:hunter2@h:1883/t", "mqtt://bob:hun/ter2@h/t", "mqtt://h/t?password=hunter2"] {
            let e = Endpoint::parse(u).unwrap_err();
            let shown = format!("{e} {}", e.hint().unwrap_or_default());
            assert!(!shown.contains("hunter2") && !shown.contains("ter2"), "{u}: {shown}");
        }
    }

    #[test]
    fn the_table_is_named_after_the_filter() {
        let name = |u: &str| crate::source::records::default_table_name(&Endpoint::parse(u).unwrap());
        assert_eq!(name("mqtt://h/sensors/+/temp"), "sensors_temp");
        assert_eq!(name("mqtts://h/#"), "mqtt");
        assert_eq!(name("mqtt://h/dt/Plant-1/#"), "dt_plant_1");
    }
}

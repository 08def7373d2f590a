//! TLS for `mqtts://`: rustls with ring (barge's one crypto provider).
//! The server is checked against `?ca=FILE` or the system's roots; AWS
//! IoT and brokers set up like it also want a client certificate
//! (`?cert=FILE&key_file=FILE`, PEM).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::url::MqttUrl;
use crate::error::{Error, Result};

pub fn client_config(url: &MqttUrl, display: &str) -> Result<Arc<rustls::ClientConfig>> {
    let fail = |message: String, hint: &str| Error::Endpoint { endpoint: display.to_string(), message, hint: Some(hint.to_string()) };
    let mut roots = rustls::RootCertStore::empty();
    match &url.ca {
        Some(ca) => {
            let certs = read_certs(ca).map_err(|why| fail(format!("?ca={ca}: {why}"), "give a PEM file with the CA certificate(s) that signed the broker's certificate"))?;
            let (_, ignored) = roots.add_parsable_certificates(certs);
            if roots.is_empty() {
                return Err(fail(format!("?ca={ca}: no usable CA certificate in it ({ignored} could not be read)"), "give a PEM file of X.509 CA certificates"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(fail("no CA certificates found on this system to check the broker's certificate with".into(), "give the broker's CA with ?ca=FILE (PEM), e.g. AmazonRootCA1.pem for AWS IoT"));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::other(format!("TLS set-up: {e}")))?
        .with_root_certificates(roots);
    let config = match (&url.cert, &url.key_file) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert).map_err(|why| fail(format!("?cert={cert}: {why}"), "give the client certificate as a PEM file (the device certificate, for AWS IoT)"))?;
            let key_der = read_key(key).map_err(|why| fail(format!("?key_file={key}: {why}"), "give the client certificate's private key as a PEM file (PKCS#8, PKCS#1 or SEC1)"))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| fail(format!("?cert={cert} and ?key_file={key} do not go together: {e}"), "give the private key that belongs to the certificate"))?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn read_file(path: &str) -> std::result::Result<Vec<u8>, String> {
    std::fs::read(Path::new(path)).map_err(|e| e.to_string())
}

fn read_certs(path: &str) -> std::result::Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem).collect::<std::result::Result<Vec<_>, _>>().map_err(|e| format!("not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate (-----BEGIN CERTIFICATE-----) in it".into());
    }
    Ok(certs)
}

fn read_key(path: &str) -> std::result::Result<PrivateKeyDer<'static>, String> {
    let pem = read_file(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no private key (-----BEGIN PRIVATE KEY-----) in it".to_string(),
        e => format!("not a PEM private key: {e}"),
    })
}

/// Why a TLS handshake failed, in words a user can act on, when `e` (or
/// what it wraps) is a TLS error; `None` for a network error.
pub fn explain(e: &(dyn std::error::Error + 'static)) -> Option<(String, &'static str)> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(match t {
                rustls::Error::InvalidCertificate(why) => (
                    format!("the broker's certificate is not trusted ({why:?})"),
                    "check ?ca=FILE: it must hold the CA that signed the broker's certificate, and the host in the URL must be a name the certificate carries",
                ),
                rustls::Error::AlertReceived(alert) => (
                    format!("the broker ended the TLS handshake ({alert:?})"),
                    "the broker may require a client certificate (?cert=FILE&key_file=FILE) signed by a CA it trusts, or refuse the one given",
                ),
                other => (format!("TLS: {other}"), "check the broker's TLS settings and ?ca, ?cert, ?key_file"),
            });
        }
        // An io::Error's source() skips the error it wraps; get_ref() does not.
        cur = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

//! AWS request signing (SigV4, with the aws-sigv4 crate) and the
//! credentials and region it needs, for the HTTPS clients barge writes
//! itself (Kinesis; an SQS client would take the same). S3 goes through
//! object_store, which signs on its own.
//!
//! Credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`; the region from `?region=`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION`. Neither the secret nor the signature is logged.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;

use crate::endpoint::Secret;
use crate::error::{Error, Result};

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Who signs, and for which region.
pub struct Signer {
    pub region: String,
    key_id: String,
    secret: Secret,
    token: Option<Secret>,
}

impl Signer {
    /// From the endpoint's `?region=` (`options`) and the environment;
    /// `display` names the endpoint in errors.
    pub fn from_env(options: &BTreeMap<String, String>, display: &str) -> Result<Signer> {
        let missing = |what: &str, hint: &str| Error::Endpoint { endpoint: display.to_string(), message: format!("no {what}"), hint: Some(hint.to_string()) };
        let region = options.get("region").cloned().or_else(|| env("AWS_REGION")).or_else(|| env("AWS_DEFAULT_REGION")).ok_or_else(|| missing("region", "add ?region=us-east-1 to the URL, or set AWS_REGION"))?;
        let key_id = env("AWS_ACCESS_KEY_ID").ok_or_else(|| missing("credentials", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones)"))?;
        let secret = Secret::new(env("AWS_SECRET_ACCESS_KEY").ok_or_else(|| missing("secret key", "set AWS_SECRET_ACCESS_KEY"))?);
        Ok(Signer { region, key_id, secret, token: env("AWS_SESSION_TOKEN").map(Secret::new) })
    }

    /// The SigV4 headers (authorization, x-amz-date, ...) for a POST of
    /// `body` to `url` with `headers`, for AWS service `service`.
    pub fn sign(&self, service: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> std::result::Result<Vec<(String, String)>, String> {
        let identity = Credentials::new(&self.key_id, self.secret.expose(), self.token.as_ref().map(|t| t.expose().to_string()), None, "environment").into();
        let params = v4::SigningParams::builder().identity(&identity).region(&self.region).name(service).time(SystemTime::now()).settings(SigningSettings::default()).build().map_err(|e| e.to_string())?.into();
        let request = SignableRequest::new("POST", url, headers.iter().copied(), SignableBody::Bytes(body)).map_err(|e| e.to_string())?;
        let (instructions, _signature) = sign(request, &params).map_err(|e| e.to_string())?.into_parts();
        Ok(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }
}

//! One client for the AWS services that speak JSON over HTTPS (SQS,
//! Kinesis): a POST with `X-Amz-Target: <prefix>.<Action>`, signed with
//! SigV4 ([`super::sigv4`]), sent with reqwest, at a small fraction of the
//! AWS SDK's build cost. Neither the secret nor the signature is logged.

use std::time::Duration;

use super::sigv4::{env, Signer};
use crate::error::{Error, Result};

/// Which service, and how its calls are addressed.
pub struct Service {
    /// The signing name (`sqs`, `kinesis`).
    pub name: &'static str,
    /// `X-Amz-Target`'s prefix (`AmazonSQS`, `Kinesis_20131202`).
    pub target: &'static str,
    /// `application/x-amz-json-1.0` or `-1.1`.
    pub content_type: &'static str,
    /// The environment variable naming a service-specific endpoint
    /// (`AWS_ENDPOINT_URL_SQS`), tried before `AWS_ENDPOINT_URL`.
    pub endpoint_var: &'static str,
}

pub struct AwsJson {
    http: reqwest::Client,
    pub url: String,
    signer: Signer,
    service: &'static Service,
    pub display: String,
}

/// A refusal from the service: its error type (`ThrottlingException`) and message.
#[derive(Debug)]
pub struct ApiError {
    pub kind: String,
    pub message: String,
    /// Worth trying again: throttling, a server error, a network failure.
    pub retriable: bool,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl AwsJson {
    /// A client for `service` with the endpoint's `?region=` and
    /// `?endpoint=` (`options`), else the environment's, else AWS's.
    pub fn new(service: &'static Service, options: &std::collections::BTreeMap<String, String>, display: &str) -> Result<AwsJson> {
        crate::sink::install_crypto_provider();
        let signer = Signer::from_env(options, display)?;
        let region = &signer.region;
        let url = options
            .get("endpoint")
            .cloned()
            .or_else(|| env(service.endpoint_var))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .unwrap_or_else(|| format!("https://{}.{region}.amazonaws.com", service.name));
        let url = format!("{}/", url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| Error::Endpoint { endpoint: display.to_string(), message: format!("cannot set up HTTPS: {err}"), hint: None })?;
        Ok(AwsJson { http, url, signer, service, display: display.to_string() })
    }

    /// One call: `action` (e.g. `ReceiveMessage`) with a JSON body.
    pub async fn call(&self, action: &str, body: &serde_json::Value) -> std::result::Result<serde_json::Value, ApiError> {
        let bytes = self.call_bytes(action, body).await?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }

    /// One call whose answer is read into `T` (large answers skip the
    /// generic JSON tree).
    pub async fn call_as<T: serde::de::DeserializeOwned>(&self, action: &str, body: &serde_json::Value) -> std::result::Result<T, ApiError> {
        let bytes = self.call_bytes(action, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError { kind: "InvalidResponse".into(), message: format!("{action} answered with JSON barge cannot read: {e}"), retriable: false })
    }

    /// One call: the body of a successful answer.
    async fn call_bytes(&self, action: &str, body: &serde_json::Value) -> std::result::Result<bytes::Bytes, ApiError> {
        let body = serde_json::to_vec(body).map_err(|e| ApiError { kind: "Serialization".into(), message: e.to_string(), retriable: false })?;
        let target = format!("{}.{action}", self.service.target);
        let headers = [("content-type", self.service.content_type), ("x-amz-target", target.as_str())];
        let signed = self.signer.sign(self.service.name, &self.url, &headers, &body).map_err(|m| ApiError { kind: "Signing".into(), message: m, retriable: false })?;
        let mut req = self.http.post(&self.url).body(body);
        for (k, v) in headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).chain(signed) {
            req = req.header(k, v);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Err(ApiError { kind: "Network".into(), message: e.to_string(), retriable: true }),
        };
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| ApiError { kind: "Network".into(), message: e.to_string(), retriable: true })?;
        if status.is_success() {
            return Ok(bytes);
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        let kind = json["__type"].as_str().unwrap_or("").rsplit('#').next().unwrap_or("").to_string();
        let message = json["message"].as_str().or(json["Message"].as_str()).unwrap_or("").to_string();
        let retriable = crate::util::retry::http_status_is_transient(status.as_u16())
            || matches!(
                kind.as_str(),
                "ProvisionedThroughputExceededException" | "LimitExceededException" | "ThrottlingException" | "KMSThrottlingException" | "InternalFailure" | "ServiceUnavailable" | "RequestThrottled"
            );
        Err(ApiError { kind: if kind.is_empty() { format!("HTTP {status}") } else { kind }, message, retriable })
    }
}

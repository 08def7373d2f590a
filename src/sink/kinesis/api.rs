//! A thin Kinesis Data Streams client: JSON over HTTPS, signed with SigV4
//! ([`crate::sink::shared::sigv4`]), sent with reqwest. It does the three calls barge
//! needs (DescribeStreamSummary, ListShards, PutRecords) at a small
//! fraction of the AWS SDK's build cost.
//!
//! Credentials come from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`; the region from `?region=`, `AWS_REGION` or
//! `AWS_DEFAULT_REGION`; the endpoint from `?endpoint=`,
//! `AWS_ENDPOINT_URL_KINESIS` or `AWS_ENDPOINT_URL`, else AWS's. Neither
//! the secret nor the signature is ever logged.

use std::time::Duration;

use crate::endpoint::StreamEndpoint;
use crate::error::{Error, Result};
use crate::sink::shared::sigv4::{env, Signer};

pub struct KinesisApi {
    http: reqwest::Client,
    url: String,
    signer: Signer,
    pub display: String,
}

/// A refusal from Kinesis: its error type (`ProvisionedThroughputExceededException`) and message.
#[derive(Debug)]
pub struct ApiError {
    pub kind: String,
    pub message: String,
    /// Worth trying again: throttling, a server error, a network failure.
    pub retriable: bool,
}

impl KinesisApi {
    pub fn new(e: &StreamEndpoint) -> Result<KinesisApi> {
        crate::sink::install_crypto_provider();
        let signer = Signer::from_env(&e.options, &e.display)?;
        let region = &signer.region;
        let url = e.options.get("endpoint").cloned().or_else(|| env("AWS_ENDPOINT_URL_KINESIS")).or_else(|| env("AWS_ENDPOINT_URL")).unwrap_or_else(|| format!("https://kinesis.{region}.amazonaws.com"));
        let url = format!("{}/", url.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|err| Error::Endpoint { endpoint: e.display.clone(), message: format!("cannot set up HTTPS: {err}"), hint: None })?;
        Ok(KinesisApi { http, url, signer, display: e.display.clone() })
    }

    /// One API call: `action` (e.g. `PutRecords`) with a JSON body.
    pub async fn call(&self, action: &str, body: &serde_json::Value) -> std::result::Result<serde_json::Value, ApiError> {
        let body = serde_json::to_vec(body).map_err(|e| ApiError { kind: "Serialization".into(), message: e.to_string(), retriable: false })?;
        let target = format!("Kinesis_20131202.{action}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        let signed = self.signer.sign("kinesis", &self.url, &headers, &body).map_err(|m| ApiError { kind: "Signing".into(), message: m, retriable: false })?;
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
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let kind = json["__type"].as_str().unwrap_or("").rsplit('#').next().unwrap_or("").to_string();
        let message = json["message"].as_str().or(json["Message"].as_str()).unwrap_or("").to_string();
        let retriable = crate::util::retry::http_status_is_transient(status.as_u16()) || matches!(kind.as_str(), "ProvisionedThroughputExceededException" | "LimitExceededException" | "ThrottlingException" | "KMSThrottlingException" | "InternalFailure" | "ServiceUnavailable");
        Err(ApiError { kind: if kind.is_empty() { format!("HTTP {status}") } else { kind }, message, retriable })
    }

    /// The hash ranges of the stream's open shards, sorted.
    pub async fn open_shards(&self, stream: &str) -> std::result::Result<Vec<(u128, u128)>, ApiError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let body = match &token {
                Some(t) => serde_json::json!({ "NextToken": t }),
                None => serde_json::json!({ "StreamName": stream }),
            };
            let resp = self.call("ListShards", &body).await?;
            for s in resp["Shards"].as_array().into_iter().flatten() {
                if s["SequenceNumberRange"]["EndingSequenceNumber"].is_string() {
                    continue; // closed by a reshard: nothing is written there
                }
                let r = &s["HashKeyRange"];
                if let (Some(a), Some(b)) = (r["StartingHashKey"].as_str().and_then(|x| x.parse().ok()), r["EndingHashKey"].as_str().and_then(|x| x.parse().ok())) {
                    out.push((a, b));
                }
            }
            token = resp["NextToken"].as_str().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        out.sort();
        Ok(out)
    }
}

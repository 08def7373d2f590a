//! SQS on the signed AWS JSON client ([`crate::sink::shared::aws_json`]):
//! the service's addressing, finding a queue by name, and barge's error
//! for a refused call. The SQS source and the SQS target both start here.

use serde_json::{json, Value as Json};

use crate::error::{Error, Result};
use crate::sink::shared::aws_json::{ApiError, AwsJson, Service};

pub static SQS: Service = Service { name: "sqs", target: "AmazonSQS", content_type: "application/x-amz-json-1.0", endpoint_var: "AWS_ENDPOINT_URL_SQS" };

/// A refused call as barge's error, retriable when the refusal was
/// (throttling, a server error, the network).
pub fn api_error(display: &str, what: &str, e: ApiError) -> Error {
    let hint = matches!(e.kind.as_str(), "UnrecognizedClientException" | "InvalidClientTokenId" | "InvalidSignatureException" | "SignatureDoesNotMatch" | "AccessDenied" | "AccessDeniedException")
        .then(|| "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the region (?region= or AWS_REGION)".to_string());
    Error::Endpoint { endpoint: display.to_string(), message: format!("{what}: {e}"), hint }.retriable_if(e.retriable)
}

/// The name of the queue an `sqs://queue` URL names, refused when empty.
pub fn queue_name(location: &str, display: &str) -> Result<String> {
    let queue = location.trim_matches('/').to_string();
    if queue.is_empty() {
        return Err(Error::usage(format!("{display}: name the queue, e.g. sqs://orders?region=us-east-1")));
    }
    Ok(queue)
}

/// The URL of `queue` (GetQueueUrl); a queue that does not exist is an
/// error that says to create it.
pub async fn queue_url(api: &AwsJson, queue: &str) -> Result<String> {
    let got = api.call("GetQueueUrl", &json!({ "QueueName": queue })).await.map_err(|e| {
        let missing = e.kind.contains("NonExistentQueue") || e.kind.contains("QueueDoesNotExist");
        let err = api_error(&api.display, "GetQueueUrl", e);
        if missing {
            let fifo = if queue.ends_with(".fifo") { " --attributes FifoQueue=true" } else { "" };
            err.with_hint(format!("create the queue {queue} first (aws sqs create-queue --queue-name {queue}{fifo}), or check the region"))
        } else {
            err
        }
    })?;
    got["QueueUrl"].as_str().map(str::to_string).ok_or_else(|| Error::other(format!("{}: GetQueueUrl gave no QueueUrl for {queue}", api.display)))
}

/// Some of the queue's attributes (GetQueueAttributes), by name.
pub async fn queue_attributes(api: &AwsJson, queue_url: &str, names: &[&str]) -> Result<Json> {
    let got = api.call("GetQueueAttributes", &json!({ "QueueUrl": queue_url, "AttributeNames": names })).await.map_err(|e| api_error(&api.display, "GetQueueAttributes", e))?;
    Ok(got["Attributes"].clone())
}

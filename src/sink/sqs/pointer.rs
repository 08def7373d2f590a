//! The pointer the AWS SQS Extended Client Library puts in a message whose
//! payload it kept in S3, defined once for the SQS target (which writes
//! it) and the SQS source (which follows it).
//!
//! The body is a JSON array: the pointer's class name, then the object's
//! bucket and key,
//! `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]`;
//! the message attribute `ExtendedPayloadSize` (a Number) holds the
//! payload's size in bytes, and is what the library's receivers look for
//! before they read the body as a pointer. Older versions of the library
//! wrote the class `com.amazon.sqs.javamessaging.MessageS3Pointer` and
//! the attribute `SQSLargePayloadSize`; both are read.

use serde_json::Value as Json;

/// The class name current versions of the library write.
pub const CLASS: &str = "software.amazon.payloadoffloading.PayloadS3Pointer";
/// The class name versions before 2.0 wrote.
pub const LEGACY_CLASS: &str = "com.amazon.sqs.javamessaging.MessageS3Pointer";
/// The message attribute that carries the payload's size.
pub const SIZE_ATTRIBUTE: &str = "ExtendedPayloadSize";
/// The one versions before 2.0 wrote.
pub const LEGACY_SIZE_ATTRIBUTE: &str = "SQSLargePayloadSize";

/// Whether a message attribute is the library's own size attribute.
pub fn is_size_attribute(name: &str) -> bool {
    name == SIZE_ATTRIBUTE || name == LEGACY_SIZE_ATTRIBUTE
}

/// Where a payload kept in S3 is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Pointer {
    pub bucket: String,
    pub key: String,
}

impl S3Pointer {
    /// The message body that points to the object.
    pub fn body(&self) -> String {
        serde_json::json!([CLASS, { "s3BucketName": self.bucket, "s3Key": self.key }]).to_string()
    }

    /// The pointer in `body`, if the body is one (in either class name).
    pub fn parse(body: &str) -> Option<S3Pointer> {
        // Most bodies are not pointers: skip the JSON parse for them.
        if !body.starts_with('[') || !(body.contains(CLASS) || body.contains(LEGACY_CLASS)) {
            return None;
        }
        let v: Json = serde_json::from_str(body).ok()?;
        let (class, at) = (v.get(0)?.as_str()?, v.get(1)?);
        if class != CLASS && class != LEGACY_CLASS {
            return None;
        }
        Some(S3Pointer { bucket: at["s3BucketName"].as_str()?.to_string(), key: at["s3Key"].as_str()?.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pointer_is_recognised_only_in_the_extended_clients_shape() {
        let at = |b: &str, k: &str| Some(S3Pointer { bucket: b.into(), key: k.into() });
        let body = r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"big","s3Key":"a/b-1"}]"#;
        assert_eq!(S3Pointer::parse(body), at("big", "a/b-1"));
        assert_eq!(S3Pointer::parse(r#"["com.amazon.sqs.javamessaging.MessageS3Pointer",{"s3BucketName":"old","s3Key":"k"}]"#), at("old", "k"));
        assert_eq!(S3Pointer::parse(r#"["software.amazon.payloadoffloading.PayloadS3Pointer"]"#), None);
        assert_eq!(S3Pointer::parse(r#"{"s3BucketName":"big"}"#), None);
        assert_eq!(S3Pointer::parse("[1, 2]"), None);
        assert_eq!(S3Pointer::parse(r#"["x software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k"}]"#), None);
    }

    #[test]
    fn what_is_written_is_read_back() {
        let p = S3Pointer { bucket: "payloads".into(), key: "sqs/public/orders/\"odd\" key.json".into() };
        let body = p.body();
        assert!(body.starts_with(r#"["software.amazon.payloadoffloading.PayloadS3Pointer",{"#), "{body}");
        assert_eq!(S3Pointer::parse(&body), Some(p));
    }
}

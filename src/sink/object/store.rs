//! Where files go: an S3 bucket (or S3-compatible server) or a local
//! directory, through object_store, with one layout for both.
//!
//! S3 takes credentials, region and endpoint from the usual AWS variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`); the URL options `region=` and
//! `endpoint=` override the last two. Secrets are never accepted in the URL.
//!
//! Every file appears whole or not at all: small files go up in one PUT
//! (atomic on S3; written to a temporary file and renamed locally), large
//! ones as a multipart upload, which S3 only shows once it is completed
//! (and which object_store also stages and renames locally).

use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::{Path, PathPart};
use object_store::{Attributes, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, WriteMultipart};

use super::SinkTable;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// Files from this size up are sent as multipart uploads.
pub const MULTIPART_THRESHOLD: usize = 16 << 20;
/// Part size of multipart uploads (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 << 20;
/// File numbers of one full-load chunk: chunk `c` writes LOAD(c·N + 1) on.
pub const FILES_PER_CHUNK: u64 = 100_000;

#[derive(Clone)]
pub struct ObjectTarget {
    store: Arc<dyn ObjectStore>,
    prefix: Vec<String>,
    pub display: String,
}

impl ObjectTarget {
    pub fn open(endpoint: &Endpoint) -> Result<ObjectTarget> {
        match endpoint {
            Endpoint::Dir(d) => {
                std::fs::create_dir_all(&d.path).map_err(|source| Error::Write { path: d.path.clone(), source })?;
                let store = object_store::local::LocalFileSystem::new_with_prefix(&d.path).map_err(|e| store_error(&d.display, e))?;
                Ok(ObjectTarget { store: Arc::new(store), prefix: Vec::new(), display: d.display.clone() })
            }
            #[cfg(feature = "s3")]
            Endpoint::S3(s) => {
                crate::sink::install_crypto_provider();
                // Credentials come from the environment only: without them
                // object_store would ask the EC2 instance-metadata address,
                // a network call the user never asked for.
                let has = |v: &str| std::env::var(v).is_ok_and(|x| !x.is_empty());
                let from_env = (has("AWS_ACCESS_KEY_ID") && has("AWS_SECRET_ACCESS_KEY")) || has("AWS_WEB_IDENTITY_TOKEN_FILE") || has("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") || has("AWS_CONTAINER_CREDENTIALS_FULL_URI");
                if !from_env {
                    return Err(Error::Endpoint {
                        endpoint: s.display.clone(),
                        message: "no AWS credentials in the environment".into(),
                        hint: Some("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or AWS_WEB_IDENTITY_TOKEN_FILE".into()),
                    });
                }
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&s.bucket);
                if let Some(r) = s.options.get("region") {
                    b = b.with_region(r);
                }
                let endpoint = s.options.get("endpoint").cloned().or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok()).or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
                if let Some(e) = endpoint {
                    // A plain-http endpoint is a local test server the user named.
                    b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
                }
                let store = b.build().map_err(|e| store_error(&s.display, e).with_hint("set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_REGION), or ?region=...&endpoint=... in the URL"))?;
                let prefix = s.prefix.split('/').filter(|p| !p.is_empty()).map(str::to_string).collect();
                Ok(ObjectTarget { store: Arc::new(store), prefix, display: s.display.clone() })
            }
            other => Err(crate::sink::not_built(other)),
        }
    }

    /// `prefix/[errors/]schema/table/file`.
    pub fn path(&self, errors: bool, table: &SinkTable, file: &str) -> Path {
        self.partitioned_path(errors, table, "", file)
    }

    /// `prefix/[errors/]schema/table/partition/file`: `partition` is
    /// segments made safe by `partition::encode_value` and joined by `/`,
    /// kept as they are (an empty one is left out).
    pub fn partitioned_path(&self, errors: bool, table: &SinkTable, partition: &str, file: &str) -> Path {
        let mut parts: Vec<PathPart> = self.prefix.iter().map(|p| PathPart::from(p.as_str())).collect();
        if errors {
            parts.push(PathPart::from("errors"));
        }
        parts.push(PathPart::from(table.schema.as_str()));
        parts.push(PathPart::from(table.name.as_str()));
        for segment in partition.split('/').filter(|s| !s.is_empty()) {
            // Encoded segments parse; anything else is encoded again rather than trusted.
            parts.push(PathPart::parse(segment).unwrap_or_else(|_| PathPart::from(segment)));
        }
        parts.push(PathPart::from(file));
        Path::from_iter(parts)
    }

    /// Writes a whole file atomically.
    pub async fn put(&self, path: &Path, bytes: Vec<u8>) -> Result<()> {
        if bytes.len() < MULTIPART_THRESHOLD {
            self.store.put(path, bytes.into()).await.map_err(|e| store_error(&self.display, e))?;
            return Ok(());
        }
        let upload = self.store.put_multipart(path).await.map_err(|e| store_error(&self.display, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        w.put(bytes.into());
        if let Err(e) = w.finish().await {
            return Err(store_error(&self.display, e));
        }
        Ok(())
    }

    /// `prefix/<rel>` for a `/`-separated relative path, each part kept as
    /// it is (the sinks' `path` escapes characters S3 advises against; a
    /// restored tree keeps its names). `Err` says why `rel` cannot be a key:
    /// not UTF-8, or a control character, which object_store refuses.
    pub fn key(&self, rel: &[u8]) -> std::result::Result<Path, String> {
        let rel = std::str::from_utf8(rel).map_err(|_| "the name is not UTF-8, and an object key must be".to_string())?;
        let mut parts: Vec<PathPart> = self.prefix.iter().map(|p| PathPart::from(p.as_str())).collect();
        for p in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
            parts.push(PathPart::parse(p).map_err(|e| format!("the name cannot be an object key: {e}"))?);
        }
        Ok(Path::from_iter(parts))
    }

    /// Writes a small body in one PUT (atomic), with `attributes`.
    pub async fn put_with(&self, path: &Path, bytes: bytes::Bytes, attributes: Attributes) -> Result<()> {
        let opts = PutOptions { attributes, ..Default::default() };
        self.store.put_opts(path, bytes.into(), opts).await.map_err(|e| self.error_at(path, e))?;
        Ok(())
    }

    /// Starts a multipart upload of `PART_SIZE` parts: nothing shows under
    /// `path` until `finish`, and `abort` leaves nothing behind. Writes
    /// need the runtime entered; bound memory with `wait_for_capacity`.
    pub async fn upload(&self, path: &Path, attributes: Attributes) -> Result<WriteMultipart> {
        let opts = PutMultipartOptions { attributes, ..Default::default() };
        let upload = self.store.put_multipart_opts(path, opts).await.map_err(|e| self.error_at(path, e))?;
        Ok(WriteMultipart::new_with_chunk_size(upload, PART_SIZE))
    }

    /// Lists at most one object under the prefix, so a missing bucket or
    /// refused credentials show before any work is done.
    pub async fn probe(&self) -> Result<()> {
        let prefix = Path::from_iter(self.prefix.iter().map(|p| PathPart::from(p.as_str())));
        match self.store.list(Some(&prefix)).try_next().await {
            Ok(_) => Ok(()),
            Err(e) => Err(store_error(&self.display, e).with_hint("check that the bucket exists and that these credentials may list and write to it")),
        }
    }

    /// Every object under the prefix, by key, with its size (a files
    /// source reads them in this order, as S3 lists them).
    pub async fn list(&self) -> Result<Vec<(Path, u64)>> {
        Ok(self.list_versions().await?.into_iter().map(|(p, size, _)| (p, size)).collect())
    }

    /// [`ObjectTarget::list`], with each object's version: its ETag (a
    /// local file's is made of its inode, mtime and size), else its
    /// modification time. A file rewritten in place gets a new one.
    pub async fn list_versions(&self) -> Result<Vec<(Path, u64, Option<String>)>> {
        let prefix = Path::from_iter(self.prefix.iter().map(|p| PathPart::from(p.as_str())));
        let listed: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.map_err(|e| store_error(&self.display, e).with_hint("check that the bucket or directory exists and that these credentials may list it"))?;
        let mut all: Vec<(Path, u64, Option<String>)> = listed.into_iter().map(|m| (m.location, m.size, m.e_tag.or_else(|| Some(m.last_modified.to_rfc3339())))).collect();
        all.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        Ok(all)
    }

    /// The whole object at `path` (small objects: it is read into memory).
    pub async fn get(&self, path: &Path) -> Result<bytes::Bytes> {
        let got = self.store.get(path).await.map_err(|e| self.error_at(path, e))?;
        got.bytes().await.map_err(|e| self.error_at(path, e))
    }

    /// The object at `path` as a stream of its bytes, for reading one of
    /// any size without holding it whole.
    pub async fn get_stream(&self, path: &Path) -> Result<futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>> {
        let got = self.store.get(path).await.map_err(|e| self.error_at(path, e))?;
        let at = format!("{}: {path}", self.display);
        Ok(Box::pin(got.into_stream().map_err(move |e| std::io::Error::other(format!("{at}: {e}")))))
    }

    /// Deletes the object at `path`, if there is one.
    pub async fn delete(&self, path: &Path) -> Result<()> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error_at(path, e)),
        }
    }

    /// An error naming the object it is about.
    pub fn error_at(&self, path: &Path, e: object_store::Error) -> Error {
        Error::Endpoint { endpoint: self.display.clone(), message: format!("{path}: {e}"), hint: None }
    }

    /// Deletes the files an earlier attempt at a full-load chunk wrote, data
    /// and errors, so the chunk's files are written afresh.
    pub async fn discard_load_chunk(&self, table: &SinkTable, chunk: usize) -> Result<()> {
        let range = (chunk as u64 * FILES_PER_CHUNK + 1)..=((chunk as u64 + 1) * FILES_PER_CHUNK);
        for errors in [false, true] {
            let dir = self.path(errors, table, "x");
            let dir = Path::from_iter(dir.parts().take(dir.parts().count() - 1));
            let listed: Vec<_> = self.store.list(Some(&dir)).try_collect().await.map_err(|e| store_error(&self.display, e))?;
            for meta in listed {
                let name = meta.location.filename().unwrap_or("");
                let number = name.strip_prefix("LOAD").and_then(|r| r.split('.').next()).and_then(|n| n.parse::<u64>().ok());
                if number.is_some_and(|n| range.contains(&n)) {
                    self.store.delete(&meta.location).await.map_err(|e| store_error(&self.display, e))?;
                }
            }
        }
        Ok(())
    }
}

fn store_error(display: &str, e: object_store::Error) -> Error {
    Error::Endpoint { endpoint: display.to_string(), message: e.to_string(), hint: None }
}

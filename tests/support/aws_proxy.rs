//! A fault-injecting proxy in front of an AWS JSON-protocol server
//! (moto's SQS, kinesalite): it reads each HTTP request, lets the test's
//! handler decide what to forward and what to answer, and writes the
//! answer back. Used to refuse, half-refuse or lose calls on purpose.

use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One request, as the handler sees it.
pub struct Call {
    /// The `x-amz-target` header (`AmazonSQS.SendMessageBatch`, …).
    pub target: String,
    pub body: Vec<u8>,
    headers: Vec<(String, String)>,
    upstream: String,
    http: reqwest::Client,
}

impl Call {
    /// Sends `body` upstream with the request's headers (its signature
    /// included); returns the status and the answer's body.
    pub async fn forward(&self, body: Vec<u8>) -> (u16, Vec<u8>) {
        let mut req = self.http.post(&self.upstream).body(body);
        for (k, v) in &self.headers {
            if k != "host" && k != "content-length" {
                req = req.header(k, v);
            }
        }
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
    }
}

/// Listens on a free loopback port and serves each connection with
/// `handle`; returns the proxy's URL. `content_type` is the protocol's
/// (`application/x-amz-json-1.0` for SQS, `1.1` for Kinesis).
pub async fn start<H, F>(upstream: String, content_type: &'static str, handle: H) -> String
where
    H: Fn(Call) -> F + Send + Sync + 'static,
    F: Future<Output = (u16, Vec<u8>)> + Send,
{
    barge::sink::install_crypto_provider();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let (handle, upstream) = (handle.clone(), upstream.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut buf = Vec::new();
                while let Some((headers, body)) = read_request(&mut sock, &mut buf).await {
                    let target = headers.iter().find(|(k, _)| k == "x-amz-target").map(|(_, v)| v.clone()).unwrap_or_default();
                    let (status, reply) = handle(Call { target, body, headers, upstream: upstream.clone(), http: http.clone() }).await;
                    let head = format!("HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n", reply.len());
                    if sock.write_all(head.as_bytes()).await.is_err() || sock.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// One HTTP/1.1 request from `sock` (headers lower-cased, and the body by
/// its content-length); `None` when the client closed the connection.
async fn read_request(sock: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<(Vec<(String, String)>, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let headers: Vec<(String, String)> = head.lines().skip(1).filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
            let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 65536];
                let n = sock.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            return Some((headers, body));
        }
        let mut chunk = [0u8; 65536];
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

//! `GET /metrics` over HTTP/1 (hyper), on a thread and runtime of its own:
//! a scrape never waits for the task's workers, and the task never waits
//! for a scrape.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::Metrics;
use crate::error::{Error, Result};

/// The text format's content type (version 0.0.4), which every Prometheus reads.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` (HOST:PORT; port 0 picks a free one) now, so a busy port
/// fails the command before it starts, then serves `metrics` until the
/// process ends. Returns the address bound.
pub fn start(addr: &str, metrics: Metrics) -> Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| {
        Error::usage(format!("--metrics-addr {addr}: cannot listen there: {e}")).with_hint("give a free HOST:PORT, e.g. 127.0.0.1:9187 (port 0 picks a free port)")
    })?;
    let bound = listener.local_addr().map_err(|e| Error::other(format!("--metrics-addr {addr}: {e}")))?;
    listener.set_nonblocking(true).map_err(|e| Error::other(format!("--metrics-addr {addr}: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().map_err(|e| Error::other(format!("starting the metrics server: {e}")))?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || runtime.block_on(accept(listener, metrics)))
        .map_err(|e| Error::other(format!("starting the metrics server: {e}")))?;
    Ok(bound)
}

async fn accept(listener: std::net::TcpListener, metrics: Metrics) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&req, &metrics)) }
            });
            // A client that hangs up mid-request is its own business.
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
        });
    }
}

fn respond(req: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
            r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
        }
        r
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => reply(StatusCode::OK, CONTENT_TYPE, metrics.render()),
        (_, "/metrics") => reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "GET /metrics\n".into()),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "barge serves its metrics at /metrics\n".into()),
    }
}

//! The HTTP floor for `scripts/bench-server`: an axum server on the same
//! runtime settings as `evident serve` whose append route reads the body
//! and answers 201 with a small JSON object, doing nothing else (no
//! authentication, parsing, storage, signature or logging).
//!
//! `cargo run --release -p evident-server --example http_baseline -- 127.0.0.1:0`
//!
//! Prints `{"listen":"127.0.0.1:PORT"}` on stdout once listening; stops on
//! SIGTERM or SIGINT. What `evident bench` measures against it is what
//! HTTP/1.1, axum, tokio and the kernel cost on this machine before
//! Evident does any work.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;

static NEXT: AtomicU64 = AtomicU64::new(0);

async fn append(body: Bytes) -> impl IntoResponse {
    let index = NEXT.fetch_add(1, Ordering::Relaxed);
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"index":{index},"bytes":{}}}"#, body.len()),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        println!(r#"{{"listen":"{}"}}"#, listener.local_addr()?);
        let app = Router::new().route("/v1/logs/{log}/entries", post(append));
        axum::serve(listener, app)
            .with_graceful_shutdown(evident_server::bootstrap::shutdown_signal())
            .await?;
        Ok(())
    })
}

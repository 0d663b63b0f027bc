//! Webhooks: integrity events delivered to configured URLs.
//!
//! Events: `chain_break` and `signature_failure` (the background verifier
//! found new ones), `rollback_detected` (the sealer found a log that
//! disagrees with its published seals), `writes_paused` and
//! `writes_resumed`. Each is queued in memory (bounded; an event that does
//! not fit is dropped and logged) and delivered by one task per URL, in
//! order, with retries and exponential backoff.
//!
//! A delivery is `POST <url>` with the JSON body `{"id", "event",
//! "instance", "occurred_at", "data"}` and the headers `Evident-Event`,
//! `Evident-Delivery` (the id: a retried delivery keeps it, so receivers
//! can drop repeats) and
//!
//! ```text
//! Evident-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>[,v1=…]
//! ```
//!
//! with one `v1` per active secret of the URL. A receiver recomputes the
//! HMAC with its secret over the decimal `t`, a `.`, and the raw body
//! bytes, accepts when any `v1` matches (compared in constant time), and
//! refuses a `t` too far from its clock (replays). Rotation: add the new
//! secret to the URL's `secrets` and give the old one an `expires_at`;
//! until then every delivery carries both signatures, so the receiver can
//! switch at any moment in the window; after it only the new one.
//!
//! Only `http://` URLs are delivered directly; for `https://` put a local
//! TLS-terminating proxy in front (this build carries no TLS client).

use std::time::Duration;

use evident_core::entry::{format_ts, parse_ts};
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::mpsc;

/// Deliveries waiting per URL before new events are dropped.
const QUEUE: usize = 1024;
/// Attempts per delivery.
pub const MAX_ATTEMPTS: u32 = 8;
/// Wait before the second attempt; doubled after each failure.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// One attempt's bound: connect, send, read the status.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One configured receiver.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://host:port/path`.
    pub url: String,
    /// Signing secrets; every one not expired signs each delivery.
    pub secrets: Vec<WebhookSecret>,
}

/// A signing secret.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WebhookSecret {
    /// The shared secret.
    pub secret: String,
    /// When it stops signing (`YYYY-MM-DDTHH:MM:SS.ffffffZ`); none: never.
    #[serde(default)]
    pub expires_at: Option<String>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never in a log line.
        f.debug_struct("WebhookSecret")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl WebhookConfig {
    /// Refuses a URL that cannot be delivered to and secrets that cannot
    /// sign.
    pub fn validate(&self) -> Result<(), String> {
        let uri: hyper::Uri = self
            .url
            .parse()
            .map_err(|e| format!("url {:?}: {e}", self.url))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(format!(
                "url {:?}: only http://host[:port]/path (put a TLS proxy in front for https)",
                self.url
            ));
        }
        if self.secrets.is_empty() {
            return Err(format!("url {:?}: at least one secret", self.url));
        }
        for s in &self.secrets {
            if s.secret.len() < 16 {
                return Err(format!(
                    "url {:?}: a secret shorter than 16 bytes",
                    self.url
                ));
            }
            if let Some(t) = &s.expires_at {
                parse_ts(t).map_err(|e| format!("url {:?}: expires_at: {e}", self.url))?;
            }
        }
        Ok(())
    }
}

/// The `Evident-Signature` value for `body` at `t` (unix seconds), signed
/// by every secret not expired at `now` (microseconds since the epoch).
pub fn signature_header(secrets: &[WebhookSecret], t: i64, now: i64, body: &[u8]) -> String {
    let mut header = format!("t={t}");
    for s in secrets {
        let live = s
            .expires_at
            .as_deref()
            .is_none_or(|e| parse_ts(e).is_ok_and(|e| now < e));
        if !live {
            continue;
        }
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(s.secret.as_bytes()) else {
            continue;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        header.push_str(",v1=");
        for b in mac.finalize().into_bytes() {
            header.push_str(&format!("{b:02x}"));
        }
    }
    header
}

#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    event: String,
    body: Bytes,
}

/// The webhook senders; cheap to clone. Without URLs it does nothing.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    queues: Vec<mpsc::Sender<Delivery>>,
    instance: String,
}

impl Webhooks {
    /// Starts one delivery task per URL (on the current tokio runtime).
    pub fn start(configs: &[WebhookConfig], instance: &str) -> Webhooks {
        let mut queues = Vec::new();
        for c in configs {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(deliver_all(c.clone(), rx));
            queues.push(tx);
        }
        Webhooks {
            queues,
            instance: instance.to_owned(),
        }
    }

    /// Queues `event` with `data` for every URL; never waits.
    pub fn notify(&self, event: &str, data: Value) {
        if self.queues.is_empty() {
            return;
        }
        let mut id = [0u8; 16];
        let _ = getrandom::fill(&mut id);
        let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
        let body = json!({
            "id": id,
            "event": event,
            "instance": self.instance,
            "occurred_at": format_ts(evident_store::sequencer::system_clock()),
            "data": data,
        })
        .to_string();
        let d = Delivery {
            id,
            event: event.to_owned(),
            body: Bytes::from(body),
        };
        for q in &self.queues {
            if q.try_send(d.clone()).is_err() {
                tracing::error!(event, "webhook queue full: event dropped");
            }
        }
    }
}

async fn deliver_all(config: WebhookConfig, mut rx: mpsc::Receiver<Delivery>) {
    while let Some(d) = rx.recv().await {
        let mut wait = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt_once(&config, &d)).await {
                Ok(Ok(())) => {
                    tracing::info!(event = %d.event, delivery = %d.id, attempt, "webhook delivered");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::warn!(event = %d.event, delivery = %d.id, attempt, error = %e, "webhook delivery failed");
                }
                Err(_) => {
                    tracing::warn!(event = %d.event, delivery = %d.id, attempt, "webhook delivery timed out");
                }
            }
            if attempt == MAX_ATTEMPTS {
                tracing::error!(event = %d.event, delivery = %d.id, url = %config.url, "webhook given up after {MAX_ATTEMPTS} attempts");
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
    }
}

/// One POST; `Ok` on a 2xx answer.
async fn attempt_once(config: &WebhookConfig, d: &Delivery) -> Result<(), String> {
    let uri: hyper::Uri = config.url.parse().map_err(|e| format!("{e}"))?;
    let host = uri.host().ok_or("no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    let now = evident_store::sequencer::system_clock();
    let sig = signature_header(&config.secrets, now.div_euclid(1_000_000), now, &d.body);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = uri.authority().map_or(host.clone(), ToString::to_string);
    let req = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("Evident-Event", &d.event)
        .header("Evident-Delivery", &d.id)
        .header("Evident-Signature", sig)
        .body(Full::new(d.body.clone()))
        .map_err(|e| format!("request: {e}"))?;
    let res = sender
        .send_request(req)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = res.status();
    let _ = res.into_body().collect().await;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("answered {status}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn secret(s: &str, expires: Option<&str>) -> WebhookSecret {
        WebhookSecret {
            secret: s.into(),
            expires_at: expires.map(Into::into),
        }
    }

    #[test]
    fn one_signature_per_live_secret() {
        let now = parse_ts("2025-06-01T00:00:00.000000Z").unwrap();
        let secrets = [
            secret("new-secret-0123456789", None),
            secret("old-secret-0123456789", Some("2025-07-01T00:00:00.000000Z")),
            secret(
                "gone-secret-0123456789",
                Some("2025-05-01T00:00:00.000000Z"),
            ),
        ];
        let h = signature_header(&secrets, 1_748_736_000, now, b"{}");
        let parts: Vec<&str> = h.split(',').collect();
        assert_eq!(parts.len(), 3, "{h}");
        assert_eq!(parts[0], "t=1748736000");
        assert!(parts[1].starts_with("v1=") && parts[1].len() == 67, "{h}");
        assert_ne!(parts[1], parts[2]);
        // RFC 4231 test case 2 through the same code path: key "Jefe".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn config_is_checked() {
        let ok = WebhookConfig {
            url: "http://127.0.0.1:9/hook".into(),
            secrets: vec![secret("0123456789abcdef", None)],
        };
        ok.validate().unwrap();
        for bad in [
            WebhookConfig {
                url: "https://x/hook".into(),
                ..ok.clone()
            },
            WebhookConfig {
                url: "not a url".into(),
                ..ok.clone()
            },
            WebhookConfig {
                secrets: vec![],
                ..ok.clone()
            },
            WebhookConfig {
                secrets: vec![secret("short", None)],
                ..ok.clone()
            },
            WebhookConfig {
                secrets: vec![secret("0123456789abcdef", Some("tomorrow"))],
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}

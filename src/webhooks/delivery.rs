//! Owns delivering one endpoint's queue: batches of up to 100 events or
//! 1 s, signed, POSTed one at a time so order holds, retried with backoff
//! and jitter (or `Retry-After`) until delivered, refused, or out of
//! attempts. One task per endpoint, so a slow or dead endpoint only delays
//! itself.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::events::Event;
use super::queue::EndpointQueue;
use super::sign::{Verdict, backoff, retry_after, signature, verdict_of};
use crate::metrics::Metrics;
use crate::model::format_rfc3339;
use crate::model::time::now_millis;

/// Most events in one POST.
pub const BATCH_MAX: usize = 100;
/// Longest an event waits for its batch to fill.
pub const BATCH_WINDOW: Duration = Duration::from_secs(1);
/// Longest one attempt may take, answer body included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The last attempt at shutdown must end within this (the hub exits
/// within 5 s).
pub const FLUSH_TIMEOUT: Duration = Duration::from_millis(800);
/// Most bytes of an answer read; a longer answer fails the batch.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Delivered,
    Failed {
        error: String,
        retry: bool,
        wait: Option<Duration>,
    },
}

/// The task that delivers one endpoint's queue.
#[derive(Debug)]
pub struct Delivery {
    /// The endpoint.
    pub url: reqwest::Url,
    /// Its queue, shared with the dispatcher and the status route.
    pub queue: Arc<EndpointQueue>,
    /// The shared HTTP client (no redirects, 10 s timeout).
    pub client: reqwest::Client,
    /// The signing key.
    pub secret: SecretString,
    /// Attempts per batch.
    pub max_attempts: u32,
    /// Delivery counters.
    pub metrics: Metrics,
}

impl Delivery {
    /// Delivers until `done` fires (the dispatcher has queued its last
    /// event), then makes one last attempt, within `FLUSH_TIMEOUT`, for the
    /// batch in flight or else the oldest waiting events. What is left after
    /// that stays in the outbox for the next start when the queue has one,
    /// and is lost otherwise.
    pub async fn run(self, done: CancellationToken) {
        self.deliver_until(done).await;
        self.queue.flush_outbox();
    }

    async fn deliver_until(&self, done: CancellationToken) {
        let last = loop {
            let batch = tokio::select! {
                batch = self.next_batch() => batch,
                () = done.cancelled() => break None,
            };
            let batch_id = uuid::Uuid::new_v4().to_string();
            tokio::select! {
                () = self.deliver(&batch_id, &batch) => {}
                () = done.cancelled() => break Some((batch_id, batch)),
            }
        };
        let (batch_id, batch) = match last {
            Some(in_flight) => in_flight,
            None => (uuid::Uuid::new_v4().to_string(), self.queue.take(BATCH_MAX)),
        };
        if batch.is_empty() {
            return;
        }
        let error = match tokio::time::timeout(FLUSH_TIMEOUT, self.attempt(&batch_id, &batch)).await
        {
            Ok(Outcome::Delivered) => return self.record_delivered(batch.len()),
            Ok(Outcome::Failed { error, .. }) => error,
            Err(_) => "timed out at shutdown".into(),
        };
        self.queue.record_error(error);
        if !self.queue.persists() {
            self.queue.record_failure();
        }
    }

    fn record_delivered(&self, events: usize) {
        self.queue.record_success(now_millis());
        self.metrics
            .webhook_delivered
            .with_label_values(&[&self.queue.status().url])
            .inc_by(events as u64);
    }

    /// Waits for 100 events, or for the oldest to have waited 1 s.
    async fn next_batch(&self) -> Vec<Arc<Event>> {
        loop {
            match self.queue.peek() {
                (0, _) | (_, None) => self.queue.arrival().await,
                (n, Some(oldest)) if n >= BATCH_MAX || oldest.elapsed() >= BATCH_WINDOW => {
                    return self.queue.take(BATCH_MAX);
                }
                (_, Some(oldest)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(oldest + BATCH_WINDOW) => {}
                        () = self.queue.arrival() => {}
                    }
                }
            }
        }
    }

    /// Sends one batch until it is delivered or given up.
    async fn deliver(&self, batch_id: &str, batch: &[Arc<Event>]) {
        let label = self.queue.status().url;
        let mut failed = 0;
        loop {
            match self.attempt(batch_id, batch).await {
                Outcome::Delivered => {
                    self.record_delivered(batch.len());
                    return;
                }
                Outcome::Failed { error, retry, wait } => {
                    failed += 1;
                    tracing::debug!(url = %label, delivery = %batch_id, attempt = failed, %error, "webhook attempt failed");
                    self.queue.record_error(error);
                    if !retry || failed >= self.max_attempts {
                        self.queue.record_failure();
                        self.metrics
                            .webhook_failed
                            .with_label_values(&[&label])
                            .inc();
                        tracing::warn!(url = %label, delivery = %batch_id, events = batch.len(), attempts = failed, "webhook batch given up");
                        return;
                    }
                    let wait = wait.unwrap_or_else(|| backoff(failed, rand::random::<f64>()));
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn attempt(&self, batch_id: &str, batch: &[Arc<Event>]) -> Outcome {
        let now = now_millis();
        let body = render_body(batch_id, now, batch);
        let signed = signature(
            self.secret.expose_secret().as_bytes(),
            now.div_euclid(1000),
            &body,
        );
        let request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("x-presence-signature", signed)
            .header("x-presence-delivery", batch_id)
            .body(body);
        let started = Instant::now();
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return failed_retry(describe(err), None),
        };
        let status = response.status().as_u16();
        let wait = matches!(status, 429 | 503)
            .then(|| response.headers().get("retry-after"))
            .flatten()
            .and_then(|value| value.to_str().ok())
            .and_then(|value| retry_after(value, now_millis()));
        let remaining = ATTEMPT_TIMEOUT.saturating_sub(started.elapsed());
        let read = tokio::time::timeout(remaining, read_limited(response)).await;
        let verdict = verdict_of(status);
        match (verdict, read) {
            (Verdict::Retry, _) => failed_retry(format!("HTTP {status}"), wait),
            (_, Err(_)) => failed_retry("timed out reading the answer".into(), None),
            (_, Ok(Err(error))) => Outcome::Failed {
                error,
                retry: false,
                wait: None,
            },
            (Verdict::Delivered, Ok(Ok(()))) => Outcome::Delivered,
            (Verdict::GiveUp, Ok(Ok(()))) => Outcome::Failed {
                error: format!("HTTP {status}"),
                retry: false,
                wait: None,
            },
        }
    }
}

fn failed_retry(error: String, wait: Option<Duration>) -> Outcome {
    Outcome::Failed {
        error,
        retry: true,
        wait,
    }
}

/// Reads and discards the answer, failing when it is over the limit.
async fn read_limited(mut response: reqwest::Response) -> Result<(), String> {
    let mut read = 0usize;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                if read > MAX_ANSWER_BYTES {
                    return Err(format!("answer body over {MAX_ANSWER_BYTES} bytes"));
                }
            }
            Ok(None) => return Ok(()),
            Err(err) => return Err(describe(err)),
        }
    }
}

fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".into()
    } else if err.is_connect() {
        "connection failed".into()
    } else {
        // Without the URL, which may carry credentials.
        format!("{}", err.without_url())
    }
}

/// `{"id","sent_at","events":[...]}`, from the events' JSON as rendered.
pub fn render_body(batch_id: &str, sent_at: i64, batch: &[Arc<Event>]) -> String {
    let size: usize = batch.iter().map(|e| e.json.len() + 1).sum();
    let mut body = String::with_capacity(size + 96);
    body.push_str(r#"{"id":""#);
    body.push_str(batch_id);
    body.push_str(r#"","sent_at":""#);
    body.push_str(&format_rfc3339(sent_at));
    body.push_str(r#"","events":["#);
    for (i, event) in batch.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&event.json);
    }
    body.push_str("]}");
    body
}

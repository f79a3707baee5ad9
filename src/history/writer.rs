//! Owns the two history tasks: recording ended sessions as the engine hands
//! them over (flushing whenever the queue runs dry), and pruning sessions
//! older than the retention period in the background.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::HistoryStore;
use crate::metrics::Metrics;
use crate::model::SessionView;
use crate::model::time::now_millis;
use crate::presence::derive::millis_of;

/// Ended sessions waiting to be recorded; the engine waits when it is full.
pub const ENDED_QUEUE: usize = 4096;

/// Records every ended session until the engine drops its sender.
pub async fn record_ended(
    mut ended: mpsc::Receiver<SessionView>,
    store: Arc<dyn HistoryStore>,
    metrics: Metrics,
) {
    while let Some(session) = ended.recv().await {
        metrics
            .sessions_ended
            .with_label_values(&[session.end_cause.map_or("unknown", |c| c.as_str())])
            .inc();
        if let Err(err) = store.record(session).await {
            tracing::error!(error = %err, "recording an ended session failed");
            metrics.redis_errors.inc();
        }
        if ended.is_empty() {
            flush(store.as_ref(), &metrics).await;
        }
    }
    flush(store.as_ref(), &metrics).await;
    tracing::debug!("history writer stopped");
}

async fn flush(store: &dyn HistoryStore, metrics: &Metrics) {
    if let Err(err) = store.flush().await {
        tracing::error!(error = %err, "flushing history failed");
    }
    if let Ok(len) = store.count().await {
        metrics
            .history_size
            .set(i64::try_from(len).unwrap_or(i64::MAX));
    }
}

/// How often the pruner runs for a retention period.
pub fn prune_interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Drops sessions older than `retention` every so often until `stop`.
pub async fn prune_expired(
    store: Arc<dyn HistoryStore>,
    retention: Duration,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(prune_interval(retention));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        let before = now_millis() - millis_of(retention);
        match store.prune(before).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, "history pruned"),
            Err(err) => tracing::warn!(error = %err, "pruning history failed"),
        }
    }
}

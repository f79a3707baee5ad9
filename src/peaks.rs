//! Owns keeping today's `peak_online` across restarts: at start the day's
//! kept peak seeds the presence map, and every few seconds a higher peak
//! from the map is saved in the records store (`daily_peaks` on SQLite and
//! PostgreSQL; the memory and Redis stores keep none, so there it starts
//! from zero after a restart as in v1). The engine never waits on this.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::history::HistoryStore;
use crate::model::time::{day_of, now_millis};
use crate::presence::{Peak, PresenceHandle};

/// How often the map's peak is compared with the saved one.
const SAVE_EVERY: Duration = Duration::from_secs(2);

/// Seeds the map with today's kept peak, then saves higher peaks until
/// `stop` (once more on the way out).
pub async fn keep_peak(
    store: Arc<dyn HistoryStore>,
    presence: PresenceHandle,
    stop: CancellationToken,
) {
    let today = day_of(now_millis());
    let mut saved = match store.peak(today).await {
        Ok(Some((users, at))) => {
            let peak = Peak {
                day: today,
                users: usize::try_from(users).unwrap_or(usize::MAX),
                at,
            };
            if presence.seed_peak(peak).await.is_err() {
                return;
            }
            peak
        }
        Ok(None) => Peak::default(),
        Err(err) => {
            tracing::warn!(error = %err, "reading today's peak failed; it starts from the live count");
            Peak::default()
        }
    };
    let mut every = tokio::time::interval(SAVE_EVERY);
    loop {
        let stopping = tokio::select! {
            _ = every.tick() => false,
            () = stop.cancelled() => true,
        };
        if let Ok(stats) = presence.live_stats().await {
            let peak = stats.peak;
            if peak.users > 0 && (peak.day != saved.day || peak.users > saved.users) {
                let users = u64::try_from(peak.users).unwrap_or(u64::MAX);
                match store.save_peak(peak.day, users, peak.at).await {
                    Ok(()) => saved = peak,
                    Err(err) => {
                        tracing::warn!(error = %err, "saving today's peak failed; retrying")
                    }
                }
            }
        }
        if stopping {
            return;
        }
    }
}

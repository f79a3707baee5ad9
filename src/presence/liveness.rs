//! Owns what a connection task and the engine share about one session
//! without a lock: the last activity time, the published status (so the
//! socket knows when a ping must be reported), and the terminate signal.
//!
//! Connections write `last_activity` on every ping and count their traffic
//! and Ping round trips (`TrafficCounters`); the engine reads them when the
//! session's deadline fires or when it builds a view. The engine writes status and terminate and
//! wakes the connection through `notify`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};

use tokio::sync::Notify;

use crate::model::{CloseCode, EndCause, ManualStatus, Millis, SessionStatus, Traffic};

/// A session's traffic and last Ping round trip, counted lock-free by its
/// connection (or by the engine for HTTP sessions) and read into views.
#[derive(Debug)]
pub struct TrafficCounters {
    msgs_in: AtomicU64,
    msgs_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    /// Microseconds; negative before the first answered Ping.
    rtt_us: AtomicI64,
}

impl Default for TrafficCounters {
    fn default() -> Self {
        Self::from_snapshot(Traffic::default(), None)
    }
}

impl TrafficCounters {
    /// Counters starting at what a view says (replicas, resumed state).
    pub fn from_snapshot(traffic: Traffic, rtt_ms: Option<f64>) -> Self {
        Self {
            msgs_in: AtomicU64::new(traffic.msgs_in),
            msgs_out: AtomicU64::new(traffic.msgs_out),
            bytes_in: AtomicU64::new(traffic.bytes_in),
            bytes_out: AtomicU64::new(traffic.bytes_out),
            rtt_us: AtomicI64::new(rtt_ms.map_or(-1, |ms| (ms * 1000.0) as i64)),
        }
    }

    /// One message of `bytes` from the client.
    pub fn count_in(&self, bytes: usize) {
        self.msgs_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// One message of `bytes` to the client.
    pub fn count_out(&self, bytes: usize) {
        self.msgs_out.fetch_add(1, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// The round trip of an answered Ping.
    pub fn set_rtt(&self, rtt: std::time::Duration) {
        let micros = i64::try_from(rtt.as_micros()).unwrap_or(i64::MAX);
        self.rtt_us.store(micros, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn traffic(&self) -> Traffic {
        Traffic {
            msgs_in: self.msgs_in.load(Ordering::Relaxed),
            msgs_out: self.msgs_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }

    /// The last round trip in milliseconds (microsecond precision).
    pub fn rtt_ms(&self) -> Option<f64> {
        let micros = self.rtt_us.load(Ordering::Relaxed);
        (micros >= 0).then(|| micros as f64 / 1000.0)
    }
}

/// Why the hub closes a client's socket itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminateReason {
    /// An admin deleted the session.
    Admin,
    /// An admin revoked every session of the user.
    Revoked,
    /// The user opened one session too many.
    SessionLimit,
    /// The hub is shutting down.
    Shutdown,
    /// The user ended it from another of its sessions (`/api/v1/me`).
    User,
    /// The session reached `PRESENCE_MAX_SESSION_AGE`.
    MaxAge,
    /// The session's token expired without a new one.
    TokenExpired,
}

impl TerminateReason {
    /// The `reason` of the `terminated` frame.
    pub fn as_str(self) -> &'static str {
        match self {
            TerminateReason::Admin => "admin",
            TerminateReason::Revoked => "revoked",
            TerminateReason::SessionLimit => "session_limit",
            TerminateReason::Shutdown => "shutdown",
            TerminateReason::User => "user",
            TerminateReason::MaxAge => "max_age",
            TerminateReason::TokenExpired => "token_expired",
        }
    }

    /// The WebSocket close code that follows the `terminated` frame.
    pub fn close_code(self) -> CloseCode {
        match self {
            TerminateReason::Admin
            | TerminateReason::Revoked
            | TerminateReason::User
            | TerminateReason::MaxAge => CloseCode::Terminated,
            TerminateReason::TokenExpired => CloseCode::TokenExpired,
            TerminateReason::SessionLimit => CloseCode::SessionLimit,
            TerminateReason::Shutdown => CloseCode::GoingAway,
        }
    }

    /// The end cause recorded in history.
    pub fn end_cause(self) -> EndCause {
        match self {
            TerminateReason::Admin | TerminateReason::User => EndCause::Terminated,
            TerminateReason::Revoked => EndCause::Revoked,
            TerminateReason::SessionLimit => EndCause::SessionLimit,
            TerminateReason::Shutdown => EndCause::Shutdown,
            TerminateReason::MaxAge => EndCause::MaxAge,
            TerminateReason::TokenExpired => EndCause::TokenExpired,
        }
    }

    fn to_code(self) -> u8 {
        match self {
            TerminateReason::Admin => 1,
            TerminateReason::Revoked => 2,
            TerminateReason::SessionLimit => 3,
            TerminateReason::Shutdown => 4,
            TerminateReason::User => 5,
            TerminateReason::MaxAge => 6,
            TerminateReason::TokenExpired => 7,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(TerminateReason::Admin),
            2 => Some(TerminateReason::Revoked),
            3 => Some(TerminateReason::SessionLimit),
            4 => Some(TerminateReason::Shutdown),
            5 => Some(TerminateReason::User),
            6 => Some(TerminateReason::MaxAge),
            7 => Some(TerminateReason::TokenExpired),
            _ => None,
        }
    }
}

/// Lock-free state shared by one session's connection and the engine.
#[derive(Debug)]
pub struct SessionLiveness {
    last_activity: AtomicI64,
    status: AtomicU8,
    manual: AtomicU8,
    terminate: AtomicU8,
    replaced: AtomicBool,
    notify: Notify,
    traffic: Arc<TrafficCounters>,
}

impl SessionLiveness {
    /// A session that was active at `now`.
    pub fn new(now: Millis) -> Self {
        Self {
            last_activity: AtomicI64::new(now),
            status: AtomicU8::new(SessionStatus::Active.to_code()),
            manual: AtomicU8::new(0),
            terminate: AtomicU8::new(0),
            replaced: AtomicBool::new(false),
            notify: Notify::new(),
            traffic: Arc::new(TrafficCounters::default()),
        }
    }

    /// The session's traffic counters, shared with its map record.
    pub fn traffic(&self) -> &Arc<TrafficCounters> {
        &self.traffic
    }

    /// Records activity at `at` (never moves backwards).
    pub fn touch(&self, at: Millis) {
        self.last_activity.fetch_max(at, Ordering::Relaxed);
    }

    /// The latest recorded activity.
    pub fn last_activity(&self) -> Millis {
        self.last_activity.load(Ordering::Relaxed)
    }

    /// The status the engine last published.
    pub fn status(&self) -> SessionStatus {
        SessionStatus::from_code(self.status.load(Ordering::Acquire))
    }

    /// The manual status the engine last applied.
    pub fn manual(&self) -> Option<ManualStatus> {
        ManualStatus::from_code(self.manual.load(Ordering::Acquire))
    }

    /// Engine side: publishes the session's status and wakes the connection.
    pub fn publish_status(&self, status: SessionStatus, manual: Option<ManualStatus>) {
        self.status.store(status.to_code(), Ordering::Release);
        self.manual
            .store(ManualStatus::to_code(manual), Ordering::Release);
        self.notify.notify_one();
    }

    /// Engine side: asks the connection to close with `reason`.
    pub fn request_terminate(&self, reason: TerminateReason) {
        self.terminate.store(reason.to_code(), Ordering::Release);
        self.notify.notify_one();
    }

    /// Why the connection must close, if it must.
    pub fn terminate_reason(&self) -> Option<TerminateReason> {
        TerminateReason::from_code(self.terminate.load(Ordering::Acquire))
    }

    /// Engine side: a resume took the session over to another socket; this
    /// connection closes (4003) without a `terminated` frame.
    pub fn request_replaced(&self) {
        self.replaced.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// True when another socket took the session over.
    pub fn replaced(&self) -> bool {
        self.replaced.load(Ordering::Acquire)
    }

    /// Engine side: a resumed session keeps its own last activity, not the
    /// moment its new socket connected.
    pub fn reset_activity(&self, at: Millis) {
        self.last_activity.store(at, Ordering::Relaxed);
    }

    /// Resolves when the engine has published something for the connection.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_never_moves_backwards() {
        let liveness = SessionLiveness::new(100);
        liveness.touch(50);
        assert_eq!(liveness.last_activity(), 100);
        liveness.touch(150);
        assert_eq!(liveness.last_activity(), 150);
    }

    #[test]
    fn traffic_counts_and_the_last_round_trip() {
        let counters = TrafficCounters::default();
        assert_eq!(counters.rtt_ms(), None);
        counters.count_in(10);
        counters.count_in(5);
        counters.count_out(7);
        counters.set_rtt(std::time::Duration::from_micros(1_500));
        assert_eq!(
            counters.traffic(),
            Traffic {
                msgs_in: 2,
                msgs_out: 1,
                bytes_in: 15,
                bytes_out: 7
            }
        );
        assert_eq!(counters.rtt_ms(), Some(1.5));
        let copy = TrafficCounters::from_snapshot(counters.traffic(), counters.rtt_ms());
        assert_eq!(
            (copy.traffic(), copy.rtt_ms()),
            (counters.traffic(), Some(1.5))
        );
    }

    #[test]
    fn terminate_reason_round_trips() {
        let liveness = SessionLiveness::new(0);
        assert_eq!(liveness.terminate_reason(), None);
        liveness.request_terminate(TerminateReason::SessionLimit);
        assert_eq!(
            liveness.terminate_reason(),
            Some(TerminateReason::SessionLimit)
        );
        assert_eq!(TerminateReason::SessionLimit.close_code().as_u16(), 4008);
    }
}

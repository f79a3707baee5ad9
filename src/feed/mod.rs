//! Owns the admin event feed: every change rendered once to JSON, fanned out
//! to bounded per-subscriber queues, with snapshot and subscription taken in
//! the same engine step so no event falls between them.
//!
//! Overflow policy: a subscriber whose queue is full is dropped and marked
//! lagged; `admin::stream` then closes it with 4009 so it resubscribes for a
//! fresh snapshot. A slow admin never slows the engine or anyone else.
//!
//! Sequence numbers are per subscriber stream and assigned by the stream as
//! it writes, so a filtered stream numbers only what it delivers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::model::Change;
use crate::model::json::to_json;

/// One change, rendered once for every subscriber.
#[derive(Debug)]
pub struct EventFrame {
    org: Option<String>,
    head: &'static str,
    tail: String,
    /// When the engine published it (for the admin fan-out delay).
    published_at: Instant,
}

impl EventFrame {
    /// Renders a change: everything but the per-stream `seq`.
    pub fn render(change: &Change) -> Self {
        let published_at = Instant::now();
        match change {
            Change::Session { event, session } => Self {
                org: session.org.clone(),
                head: r#"{"type":"session","seq":"#,
                tail: format!(
                    r#","event":"{}","session":{}}}"#,
                    event.as_str(),
                    to_json(session)
                ),
                published_at,
            },
            Change::User(user) => Self {
                org: user.org.clone(),
                head: r#"{"type":"user","seq":"#,
                tail: format!(r#","user":{}}}"#, to_json(user)),
                published_at,
            },
            // No organisation: only streams without an org filter see the
            // audit trail (it names users and IPs of every organisation).
            Change::Audit(event) => Self {
                org: None,
                head: r#"{"type":"audit","seq":"#,
                tail: format!(r#","event":{}}}"#, to_json(event)),
                published_at,
            },
            Change::Alert(alert) => Self {
                org: alert.org.clone(),
                head: r#"{"type":"alert","seq":"#,
                tail: format!(r#","alert":{}}}"#, to_json(alert)),
                published_at,
            },
        }
    }

    /// The frame's JSON text with the stream's sequence number.
    pub fn to_text(&self, seq: u64) -> String {
        let mut text = String::with_capacity(self.head.len() + self.tail.len() + 20);
        text.push_str(self.head);
        text.push_str(&seq.to_string());
        text.push_str(&self.tail);
        text
    }

    /// Time since the engine published this change.
    pub fn age(&self) -> std::time::Duration {
        self.published_at.elapsed()
    }

    /// True when a stream filtered on `org` delivers this frame.
    pub fn matches(&self, org: Option<&str>) -> bool {
        org.is_none() || org == self.org.as_deref()
    }
}

/// What a new admin subscriber receives.
#[derive(Debug)]
pub struct Subscription {
    /// The snapshot frame's JSON text (seq 0).
    pub snapshot: String,
    /// Events after the snapshot, in order.
    pub events: mpsc::Receiver<Arc<EventFrame>>,
    /// Set when the subscriber was dropped for falling behind.
    pub lagged: Arc<AtomicBool>,
    /// The organisation filter.
    pub org: Option<String>,
}

impl Subscription {
    /// True when the feed dropped this subscriber for lagging.
    pub fn has_lagged(&self) -> bool {
        self.lagged.load(Ordering::Acquire)
    }
}

#[derive(Debug)]
struct Subscriber {
    org: Option<String>,
    queue: mpsc::Sender<Arc<EventFrame>>,
    lagged: Arc<AtomicBool>,
}

/// The set of admin subscribers and their queues.
#[derive(Debug)]
pub struct Feed {
    subscribers: Vec<Subscriber>,
    queue_capacity: usize,
}

impl Feed {
    /// A feed whose subscribers may fall `queue_capacity` events behind.
    pub fn new(queue_capacity: usize) -> Self {
        Self {
            subscribers: Vec::new(),
            queue_capacity: queue_capacity.max(1),
        }
    }

    /// Registers a subscriber whose stream starts with `snapshot`.
    pub fn subscribe(&mut self, org: Option<String>, snapshot: String) -> Subscription {
        let (queue, events) = mpsc::channel(self.queue_capacity);
        let lagged = Arc::new(AtomicBool::new(false));
        self.subscribers.push(Subscriber {
            org: org.clone(),
            queue,
            lagged: lagged.clone(),
        });
        Subscription {
            snapshot,
            events,
            lagged,
            org,
        }
    }

    /// Delivers a change to every matching subscriber, never waiting.
    pub fn publish(&mut self, change: &Change) {
        self.subscribers.retain(|s| !s.queue.is_closed());
        if self.subscribers.is_empty() {
            return;
        }
        let frame = Arc::new(EventFrame::render(change));
        let mut lagged = 0;
        self.subscribers.retain(|subscriber| {
            if !frame.matches(subscriber.org.as_deref()) {
                return true;
            }
            match subscriber.queue.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    subscriber.lagged.store(true, Ordering::Release);
                    lagged += 1;
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if lagged > 0 {
            tracing::warn!(lagged, "admin subscriber fell behind and is closed");
        }
    }

    /// Subscribers currently attached.
    #[cfg(test)]
    pub fn subscriber_count(&self) -> usize {
        self.subscribers
            .iter()
            .filter(|s| !s.queue.is_closed())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeId, UserId, UserStatus, UserView};

    fn user_change(org: Option<&str>) -> Change {
        Change::User(UserView {
            user_id: UserId::parse("alice").unwrap(),
            name: None,
            org: org.map(str::to_string),
            email: None,
            team: None,
            status: UserStatus::Active,
            manual: None,
            session_count: 1,
            online_since: None,
            last_activity: None,
        })
    }

    #[test]
    fn frames_carry_the_stream_seq() {
        let frame = EventFrame::render(&user_change(None));
        let value: serde_json::Value = serde_json::from_str(&frame.to_text(7)).unwrap();
        assert_eq!(value["type"], "user");
        assert_eq!(value["seq"], 7);
        assert_eq!(value["user"]["status"], "active");
        let _ = NodeId::new("n");
    }

    #[test]
    fn a_filtered_subscriber_gets_only_its_org() {
        let mut feed = Feed::new(8);
        let mut acme = feed.subscribe(Some("acme".into()), String::new());
        let mut all = feed.subscribe(None, String::new());
        feed.publish(&user_change(Some("acme")));
        feed.publish(&user_change(Some("other")));
        assert_eq!(acme.events.try_recv().map(|_| ()).ok(), Some(()));
        assert!(acme.events.try_recv().is_err());
        assert!(all.events.try_recv().is_ok());
        assert!(all.events.try_recv().is_ok());
    }

    #[test]
    fn a_full_queue_drops_the_subscriber_as_lagged() {
        let mut feed = Feed::new(2);
        let mut slow = feed.subscribe(None, String::new());
        for _ in 0..3 {
            feed.publish(&user_change(None));
        }
        assert!(slow.has_lagged());
        assert_eq!(feed.subscriber_count(), 0);
        assert!(slow.events.try_recv().is_ok());
        assert!(slow.events.try_recv().is_ok());
        assert!(slow.events.try_recv().is_err(), "then closed");
    }
}

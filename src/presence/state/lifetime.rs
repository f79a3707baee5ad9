//! Owns the part of the map that ends sessions by themselves (contract v1.1
//! §9): the resume grace of a dropped socket, the token's `exp` and the
//! maximum session age, and what a resume or a new token changes.
//!
//! Pure like the rest of `state`: every operation takes `now`, and these
//! three ends are deadlines of the session in the engine's schedule.

use super::{NewSession, PresenceState, SessionRecord};
use crate::model::timeline::TimelineKind;
use crate::model::{Change, EndCause, Millis, RoomGrant, SessionId, Transport};

/// What a new token (an `auth` frame, a resume, an HTTP heartbeat) says
/// about the session's user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renewal {
    /// Display name from the new token.
    pub name: Option<String>,
    /// Organisation from the new token.
    pub org: Option<String>,
    /// The new token's `exp` (None in dev mode).
    pub expires_at: Option<Millis>,
    /// The new token's `rooms` claim: joined rooms it no longer allows are
    /// left (v1.1 §14).
    pub rooms: RoomGrant,
}

impl Renewal {
    /// The facts a new socket's token gives the session it resumes.
    pub fn of(session: &NewSession) -> Self {
        Self {
            name: session.name.clone(),
            org: session.org.clone(),
            expires_at: session.expires_at,
            rooms: session.rooms.clone(),
        }
    }
}

impl PresenceState {
    /// Sets the resume grace and the maximum session age (0 disables each).
    pub fn with_lifetimes(mut self, resume_grace: Millis, max_age: Millis) -> Self {
        self.resume_grace = resume_grace;
        self.max_age = max_age;
        self
    }

    /// How long a dropped session waits for a resume (0: it ends at once).
    pub fn resume_grace(&self) -> Millis {
        self.resume_grace
    }

    /// The earliest of the ends that come by themselves, due or not.
    pub(super) fn lifetime_deadline(&self, record: &SessionRecord) -> Option<Millis> {
        self.lifetime_ends(record).map(|(at, _, _)| at).min()
    }

    /// Each end that may come by itself: when, why, and its `ended_at`.
    fn lifetime_ends(
        &self,
        record: &SessionRecord,
    ) -> impl Iterator<Item = (Millis, EndCause, Option<Millis>)> {
        let grace = record
            .dropped
            .map(|(at, cause)| (at.saturating_add(self.resume_grace), cause, Some(at)));
        let expiry = record
            .expires_at
            .map(|at| (at, EndCause::TokenExpired, None));
        let age = (self.max_age > 0).then(|| {
            (
                record.connected_at.saturating_add(self.max_age),
                EndCause::MaxAge,
                None,
            )
        });
        [grace, expiry, age].into_iter().flatten()
    }

    /// The end that is due at `now`, if any: its cause and `ended_at`. A
    /// grace that passed ends at the moment the socket dropped.
    pub fn lifetime_end(&self, id: SessionId, now: Millis) -> Option<(EndCause, Millis)> {
        let record = self.sessions.get(&id)?;
        self.lifetime_ends(record)
            .filter(|(at, _, _)| *at <= now)
            .min_by_key(|(at, _, _)| *at)
            .map(|(_, cause, ended_at)| (cause, ended_at.unwrap_or(now)))
    }

    /// The session's socket dropped at `at` with `cause`: it stays live,
    /// `reconnecting`, for the resume grace.
    pub fn mark_dropped(
        &mut self,
        id: SessionId,
        cause: EndCause,
        at: Millis,
        now: Millis,
    ) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        if record.transport != Transport::Ws || record.dropped.is_some() {
            return Vec::new();
        }
        record.dropped = Some((at, cause));
        record.note(TimelineKind::Reconnecting, None, None, at);
        self.publish_update(id, now)
    }

    /// When and why the session's socket dropped, while it waits.
    pub fn drop_of(&self, id: SessionId) -> Option<(Millis, EndCause)> {
        self.sessions.get(&id).and_then(|record| record.dropped)
    }

    /// Sets when and why a session taken over from a node that shut down
    /// dropped (its view says only that it is `reconnecting`). Publishes
    /// nothing.
    pub fn restore_drop(&mut self, id: SessionId, cause: EndCause, at: Millis) {
        if let Some(record) = self.sessions.get_mut(&id) {
            record.dropped = Some((at, cause));
        }
    }

    /// True while the session waits for a resume.
    pub fn is_dropped(&self, id: SessionId) -> bool {
        self.sessions
            .get(&id)
            .is_some_and(|record| record.dropped.is_some())
    }

    /// A new socket took the session over: it is no longer `reconnecting`,
    /// and takes its user's facts from the new token. `page` is the new
    /// socket's page, when it named one.
    pub fn take_over(
        &mut self,
        id: SessionId,
        renewal: Renewal,
        page: Option<String>,
        now: Millis,
    ) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        let mut changed = record.dropped.take().is_some();
        if changed {
            record.note(TimelineKind::Resumed, None, None, now);
        }
        if page.is_some() && page != record.meta.page {
            record.meta.page = page;
            changed = true;
        }
        let org = record.org.clone();
        changed |= apply_renewal(record, renewal, now);
        self.counters.move_org(org, record.org.as_ref());
        if !changed {
            return Vec::new();
        }
        self.take_user_facts(id);
        self.publish_update(id, now)
    }

    /// A new token for a live session (`auth`): name, org and expiry.
    pub fn renew(&mut self, id: SessionId, renewal: Renewal, now: Millis) -> Vec<Change> {
        let Some(record) = self.sessions.get_mut(&id) else {
            return Vec::new();
        };
        let org = record.org.clone();
        let changed = apply_renewal(record, renewal, now);
        self.counters.move_org(org, record.org.as_ref());
        if !changed {
            return Vec::new();
        }
        self.take_user_facts(id);
        self.publish_update(id, now)
    }

    /// The user takes the name and org of a session's new token, as it
    /// takes those of a new session, and is published again when either
    /// changed.
    fn take_user_facts(&mut self, id: SessionId) {
        let Some(record) = self.sessions.get(&id) else {
            return;
        };
        let Some(user) = self.users.get_mut(&record.user_id) else {
            return;
        };
        let mut changed = false;
        if record.name.is_some() && user.name != record.name {
            user.name.clone_from(&record.name);
            changed = true;
        }
        if record.org.is_some() && user.org != record.org {
            user.org.clone_from(&record.org);
            changed = true;
        }
        if changed {
            user.published = None;
        }
    }

    /// An HTTP heartbeat carried a token: the session now lives until its
    /// `exp` (dev mode: no expiry, nothing changes).
    pub fn renew_expiry(&mut self, id: SessionId, expires_at: Option<Millis>) {
        if let (Some(record), Some(at)) = (self.sessions.get_mut(&id), expires_at) {
            record.expires_at = Some(at);
        }
    }
}

impl SessionRecord {
    /// The session's last activity.
    pub fn last_activity(&self) -> Millis {
        self.last_activity
    }
}

/// Applies a renewal, leaving the joined rooms the new token no longer
/// allows; true when a field admins see changed.
fn apply_renewal(record: &mut SessionRecord, renewal: Renewal, now: Millis) -> bool {
    record.expires_at = renewal.expires_at;
    let (kept, left): (Vec<_>, Vec<_>) = std::mem::take(&mut record.rooms)
        .into_iter()
        .partition(|room| renewal.rooms.allows(renewal.org.as_deref(), room));
    record.rooms = kept;
    for room in &left {
        record.note(TimelineKind::RoomLeave, Some(room.to_string()), None, now);
    }
    let changed = record.name != renewal.name || record.org != renewal.org || !left.is_empty();
    record.name = renewal.name;
    record.org = renewal.org;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{NodeId, SessionMeta, SessionStatus, UserId};
    use crate::presence::derive::Thresholds;
    use crate::presence::state::NewSession;

    fn state(grace: Millis, max_age: Millis) -> PresenceState {
        PresenceState::new(
            Thresholds {
                idle_after: 1_000,
                away_after: 2_000,
            },
            90_000,
        )
        .with_lifetimes(grace, max_age)
    }

    fn open(s: &mut PresenceState, expires_at: Option<Millis>) -> SessionId {
        let id = SessionId::generate();
        s.open(
            NewSession {
                id,
                user_id: UserId::parse("alice").unwrap(),
                name: None,
                org: None,
                node_id: NodeId::new("n1"),
                transport: Transport::Ws,
                meta: SessionMeta::default(),
                expires_at,
                email: None,
                team: None,
                rooms: RoomGrant::Any,
            },
            0,
        );
        id
    }

    #[test]
    fn a_dropped_session_ends_at_the_drop_when_the_grace_passes() {
        let mut s = state(5_000, 0);
        let id = open(&mut s, None);
        let changes = s.mark_dropped(id, EndCause::Timeout, 300, 310);
        assert_eq!(changes.len(), 1, "one updated, the user is unchanged");
        assert!(s.is_dropped(id));
        assert_eq!(s.next_deadline(id), Some(1_000), "idle still comes first");
        assert_eq!(s.lifetime_end(id, 5_299), None);
        assert_eq!(s.lifetime_end(id, 5_300), Some((EndCause::Timeout, 300)));
        let ended = s.end(id, EndCause::Timeout, 300);
        let Change::Session { session, .. } = &ended[0] else {
            panic!("a session change first")
        };
        assert_eq!(session.ended_at, Some(300));
        assert!(!session.reconnecting);
    }

    #[test]
    fn the_status_keeps_following_time_while_reconnecting() {
        let mut s = state(60_000, 0);
        let id = open(&mut s, None);
        s.mark_dropped(id, EndCause::ClientClosed, 100, 100);
        let changes = s.refresh(id, 1_000);
        assert_eq!(changes.len(), 2, "updated and the user change");
        assert_eq!(
            s.session(id).map(SessionRecord::status),
            Some(SessionStatus::Idle)
        );
    }

    #[test]
    fn a_take_over_clears_reconnecting_and_renews_the_token() {
        let mut s = state(5_000, 0);
        let id = open(&mut s, Some(10_000));
        s.mark_dropped(id, EndCause::ClientClosed, 100, 100);
        let renewal = Renewal {
            name: Some("Alice".into()),
            org: None,
            expires_at: Some(20_000),
            rooms: RoomGrant::Any,
        };
        assert!(!s.take_over(id, renewal, None, 200).is_empty());
        assert!(!s.is_dropped(id));
        assert_eq!(s.lifetime_end(id, 19_999), None);
        assert_eq!(
            s.lifetime_end(id, 20_000),
            Some((EndCause::TokenExpired, 20_000))
        );
    }

    #[test]
    fn max_age_counts_from_the_start_and_wins_when_earliest() {
        let mut s = state(0, 3_000);
        let id = open(&mut s, Some(4_000));
        assert_eq!(s.lifetime_end(id, 4_500), Some((EndCause::MaxAge, 4_500)));
        assert_eq!(s.next_deadline(id), Some(1_000));
    }

    #[test]
    fn a_renewal_leaves_the_joined_rooms_its_claim_no_longer_allows() {
        let mut s = state(0, 0);
        let id = open(&mut s, None);
        for name in ["doc:1", "doc:2"] {
            s.join_room(id, crate::model::RoomName::parse(name).unwrap(), 1);
        }
        let narrow = Renewal {
            name: None,
            org: None,
            expires_at: None,
            rooms: RoomGrant::Listed(vec!["doc:2".into()]),
        };
        assert!(!s.renew(id, narrow, 10).is_empty());
        let rooms: Vec<String> = s
            .session(id)
            .unwrap()
            .rooms
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(rooms, ["doc:2"]);
    }

    #[test]
    fn renewing_the_same_facts_publishes_nothing() {
        let mut s = state(0, 0);
        let id = open(&mut s, Some(1_000));
        let same = Renewal {
            name: None,
            org: None,
            expires_at: Some(9_000),
            rooms: RoomGrant::Any,
        };
        assert!(s.renew(id, same, 10).is_empty());
        assert_eq!(s.lifetime_end(id, 1_000), None);
    }

    #[test]
    fn a_new_token_with_another_org_moves_the_session_between_org_counts() {
        let org = |name: &str| Renewal {
            name: None,
            org: Some(name.to_string()),
            expires_at: None,
            rooms: RoomGrant::Any,
        };
        let count =
            |s: &PresenceState, name: &str| s.counters().by_org.get(name).copied().unwrap_or(0);
        let mut s = state(60_000, 0);
        let id = open(&mut s, None);
        s.renew(id, org("acme"), 10);
        assert_eq!(count(&s, "acme"), 1, "renewed into acme");
        s.mark_dropped(id, EndCause::ClientClosed, 20, 20);
        s.take_over(id, org("globex"), None, 30);
        assert_eq!((count(&s, "acme"), count(&s, "globex")), (0, 1));
        s.end(id, EndCause::ClientClosed, 40);
        assert_eq!(count(&s, "globex"), 0, "an ended session leaves its org");
    }

    #[test]
    fn a_new_token_with_another_name_and_org_renames_the_user() {
        let renamed = |name: &str, org: &str| Renewal {
            name: Some(name.to_string()),
            org: Some(org.to_string()),
            expires_at: None,
            rooms: RoomGrant::Any,
        };
        let user_of = |changes: &[Change]| {
            changes.iter().find_map(|change| match change {
                Change::User(view) => Some((view.name.clone(), view.org.clone())),
                _ => None,
            })
        };
        let mut s = state(60_000, 0);
        let id = open(&mut s, None);
        let changes = s.renew(id, renamed("Ada", "acme"), 10);
        assert_eq!(
            user_of(&changes),
            Some((Some("Ada".into()), Some("acme".into()))),
            "the user's new name and org are published"
        );
        let user = s.session(id).unwrap().user_id().clone();
        assert_eq!(s.user_view(&user).unwrap().name.as_deref(), Some("Ada"));
        s.mark_dropped(id, EndCause::ClientClosed, 20, 20);
        let changes = s.take_over(id, renamed("Ada L.", "globex"), None, 30);
        assert_eq!(
            user_of(&changes),
            Some((Some("Ada L.".into()), Some("globex".into())))
        );
        assert_eq!(s.user_view(&user).unwrap().org.as_deref(), Some("globex"));
    }
}

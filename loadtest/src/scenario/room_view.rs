//! Owns one room member's view of its room: applying the `room` snapshot and
//! the numbered `presence` frames, checking `seq`, and reading the send time
//! that a change carries in its `page`.
//!
//! Pure: the caller passes the wall-clock time and decides what to count.
//! Members are kept compactly (a slot per expected member, by position in the
//! room) so a 5,000-member room watched by all 5,000 members stays small.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// Prefix of the `page` a change sets; the rest is its send time in
/// microseconds since the Unix epoch.
pub const PAGE_PREFIX: &str = "/c/";

/// A room frame as the hub sends it (`room` or `presence`).
#[derive(Debug, Deserialize)]
struct RoomFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default, borrow)]
    members: Option<Vec<WireMember<'a>>>,
    #[serde(default, borrow)]
    changes: Option<Vec<WireChange<'a>>>,
}

/// The member fields the check compares (`name` is the user id here and
/// `joined_at` may differ between nodes, so both are left out).
#[derive(Debug, Deserialize)]
pub struct WireMember<'a> {
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    manual: Option<Cow<'a, str>>,
    #[serde(default)]
    session_count: u64,
    #[serde(default, borrow)]
    page: Option<Cow<'a, str>>,
}

/// One entry of a `presence` frame.
#[derive(Debug, Deserialize)]
struct WireChange<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    member: WireMember<'a>,
}

/// `GET /api/v1/rooms/{room}`.
#[derive(Debug, Deserialize)]
pub struct RoomDetail<'a> {
    /// The members, as in a snapshot.
    #[serde(borrow)]
    pub members: Vec<WireMember<'a>>,
}

/// A member, compact. `status == 0` marks an empty slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct MemberState {
    status: u8,
    manual: u8,
    sessions: u16,
    page: u64,
}

impl MemberState {
    fn of(member: &WireMember<'_>) -> Self {
        Self {
            status: match member.status.as_deref() {
                Some("active") => 1,
                Some("idle") => 2,
                Some("away") => 3,
                _ => 4,
            },
            manual: match member.manual.as_deref() {
                None => 0,
                Some("busy") => 1,
                Some("away") => 2,
                Some(_) => 3,
            },
            sessions: u16::try_from(member.session_count).unwrap_or(u16::MAX),
            page: member.page.as_deref().map_or(0, fnv1a),
        }
    }
}

/// A 64-bit FNV-1a hash, never 0 (0 is "no page").
fn fnv1a(text: &str) -> u64 {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash.max(1)
}

/// Which member slot a user id belongs to: ids are `<prefix><index>`, and
/// client `index` is in room `index % rooms` at position `index / rooms`.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `<run_id>-`.
    pub prefix: String,
    /// Rooms of the run.
    pub rooms: u64,
    /// This view's room.
    pub room: u64,
    /// Members the room has (slots).
    pub slots: usize,
}

impl Layout {
    fn position(&self, user_id: &str) -> Option<usize> {
        let index: u64 = user_id.strip_prefix(self.prefix.as_str())?.parse().ok()?;
        if index % self.rooms != self.room {
            return None;
        }
        let at = usize::try_from(index / self.rooms).ok()?;
        (at < self.slots).then_some(at)
    }
}

/// What applying one frame found.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// A `presence` frame did not follow the previous `seq`.
    pub gap: bool,
    /// A `room` snapshot replaced an earlier one (the hub resynchronised).
    pub resync: bool,
    /// The first snapshot arrived: the member has joined.
    pub joined: bool,
    /// Send-to-apply delays of the changes this frame carried.
    pub samples: Vec<Duration>,
}

/// One member's view of its room.
#[derive(Debug)]
pub struct View {
    layout: Layout,
    members: Vec<MemberState>,
    others: BTreeMap<String, MemberState>,
    snapshots: u64,
    last_seq: u64,
}

impl View {
    /// An empty view (no snapshot yet).
    pub fn new(layout: Layout) -> Self {
        Self {
            members: vec![MemberState::default(); layout.slots],
            layout,
            others: BTreeMap::new(),
            snapshots: 0,
            last_seq: 0,
        }
    }

    /// True once a snapshot arrived.
    pub fn joined(&self) -> bool {
        self.snapshots > 0
    }

    /// Applies a text frame received at `now_us` (Unix microseconds); `None`
    /// when it is not a room frame.
    pub fn apply(&mut self, text: &str, now_us: u64) -> Option<Applied> {
        let frame: RoomFrame<'_> = serde_json::from_str(text).ok()?;
        let mut applied = Applied::default();
        match frame.kind.as_ref() {
            "room" => {
                applied.resync = self.snapshots > 0;
                applied.joined = self.snapshots == 0;
                self.snapshots += 1;
                self.last_seq = 0;
                self.load(frame.members.as_deref().unwrap_or_default());
            }
            "presence" => {
                let seq = frame.seq.unwrap_or(0);
                applied.gap = !self.joined() || seq != self.last_seq + 1;
                self.last_seq = seq;
                for change in frame.changes.unwrap_or_default() {
                    self.change(&change, now_us, &mut applied.samples);
                }
            }
            _ => return None,
        }
        Some(applied)
    }

    /// Replaces every member (a snapshot, or the hub's answer to the check).
    pub fn load(&mut self, members: &[WireMember<'_>]) {
        self.members.fill(MemberState::default());
        self.others.clear();
        for member in members {
            *self.slot(&member.user_id) = MemberState::of(member);
        }
    }

    /// The slot of `user_id` (a stranger gets an entry of its own).
    fn slot(&mut self, user_id: &str) -> &mut MemberState {
        match self.layout.position(user_id) {
            Some(at) if at < self.members.len() => &mut self.members[at],
            _ => self.others.entry(user_id.to_owned()).or_default(),
        }
    }

    /// Applies one change; a new page with a send time is one sample.
    fn change(&mut self, change: &WireChange<'_>, now_us: u64, samples: &mut Vec<Duration>) {
        let fresh = MemberState::of(&change.member);
        let slot = self.slot(&change.member.user_id);
        let page_changed = slot.page != fresh.page;
        if change.event == "leave" {
            *slot = MemberState::default();
            self.others.retain(|_, m| m.status != 0);
            return;
        }
        *slot = fresh;
        if page_changed && let Some(sent_us) = sent_at(change.member.page.as_deref()) {
            samples.push(Duration::from_micros(now_us.saturating_sub(sent_us)));
        }
    }

    /// True when both views hold the same members with the same fields.
    pub fn same_members(&self, other: &View) -> bool {
        self.members == other.members && self.others == other.others
    }
}

/// The send time a change's page carries, if it is one.
fn sent_at(page: Option<&str>) -> Option<u64> {
    page?.strip_prefix(PAGE_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            prefix: "lt-".into(),
            rooms: 2,
            room: 1,
            slots: 3,
        }
    }

    fn member(index: u64, page: &str) -> String {
        format!(
            r#"{{"user_id":"lt-{index}","name":"x","status":"active","manual":null,"session_count":1,"page":{page},"joined_at":"t"}}"#
        )
    }

    #[test]
    fn snapshot_then_numbered_changes_give_samples_and_no_gap() {
        let mut view = View::new(layout());
        let snapshot = format!(
            r#"{{"type":"room","room":"r","seq":0,"members":[{},{}]}}"#,
            member(1, "null"),
            member(3, "null")
        );
        let first = view.apply(&snapshot, 0).unwrap();
        assert!(first.joined && !first.resync && !first.gap);
        let change = format!(
            r#"{{"type":"presence","room":"r","seq":1,"changes":[{{"event":"update","member":{}}}]}}"#,
            member(3, r#""/c/1000""#)
        );
        let applied = view.apply(&change, 1500).unwrap();
        assert_eq!(applied.samples, [Duration::from_micros(500)]);
        assert!(!applied.gap);
        let again = change.replace(r#""seq":1"#, r#""seq":3"#);
        let applied = view.apply(&again, 2000).unwrap();
        assert!(applied.gap, "seq 3 after 1 is a gap");
        assert!(
            applied.samples.is_empty(),
            "same page again is no new sample"
        );
    }

    #[test]
    fn views_compare_by_members_and_a_second_snapshot_is_a_resync() {
        let mut a = View::new(layout());
        let mut b = View::new(layout());
        let members = format!(r#"{{"members":[{}]}}"#, member(5, r#""/c/9""#));
        let detail: RoomDetail<'_> = serde_json::from_str(&members).unwrap();
        b.load(&detail.members);
        assert!(!a.same_members(&b));
        let snapshot = format!(
            r#"{{"type":"room","seq":0,"members":[{}]}}"#,
            member(5, r#""/c/9""#)
        );
        a.apply(&snapshot, 0);
        assert!(a.same_members(&b));
        assert!(a.apply(&snapshot, 0).unwrap().resync);
        let leave = format!(
            r#"{{"type":"presence","seq":1,"changes":[{{"event":"leave","member":{}}}]}}"#,
            member(5, r#""/c/9""#)
        );
        a.apply(&leave, 0);
        assert!(!a.same_members(&b));
    }
}

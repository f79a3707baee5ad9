//! Owns the deny list behind "revoke": after `DELETE
//! /api/v1/users/{id}/sessions`, the tokens that user held must not open a
//! session again. One entry per revoked user says which tokens are denied:
//! - a token with `iat` is denied when it was issued in the second of the
//!   revoke or earlier (`iat <= revoked_at`); a token issued later passes;
//! - a token without `iat` is denied when its `exp` is not later than the
//!   longest `exp` this hub had seen for that user when it revoked
//!   (`exp <= max_exp`).
//!
//! An entry is kept until every token it can deny has expired: until the
//! longest `exp` seen, and at least `MIN_KEEP_S` after the revoke (for
//! tokens issued before it that this hub never saw). Times are Unix
//! seconds, as in JWT claims; every function takes `now`. The lock is held
//! for one map operation, never across an `await`.
//!
//! In cluster mode every new entry is also handed, without waiting, to a
//! bounded outbox that the replicator publishes to the other nodes and
//! keeps in Redis (`cluster/redis/revoked.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::model::UserId;

/// A deny entry on its way to (or from) the other nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoked {
    /// The revoked user.
    pub user_id: UserId,
    /// Their entry.
    #[serde(flatten)]
    pub deny: Deny,
}

/// How long an entry is kept at least, in seconds (one day): tokens issued
/// before the revoke that this hub never saw may live that long.
pub const MIN_KEEP_S: i64 = 86_400;

/// The deny entry of one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deny {
    /// When the user was revoked (Unix seconds).
    pub revoked_at: i64,
    /// The longest `exp` seen for the user at that time (at least
    /// `revoked_at`).
    pub max_exp: i64,
    /// When the entry can be forgotten.
    pub until: i64,
}

impl Deny {
    /// True when this entry refuses a token with these claims.
    pub fn denies(&self, iat: Option<i64>, exp: i64) -> bool {
        match iat {
            Some(iat) => iat <= self.revoked_at,
            None => exp <= self.max_exp,
        }
    }

    /// The union of two entries for the same user.
    #[must_use]
    pub fn merge(self, other: Deny) -> Deny {
        Deny {
            revoked_at: self.revoked_at.max(other.revoked_at),
            max_exp: self.max_exp.max(other.max_exp),
            until: self.until.max(other.until),
        }
    }
}

#[derive(Debug, Default)]
struct Lists {
    denied: HashMap<UserId, Deny>,
    /// The longest `exp` of a valid token seen per user (expired ones pruned).
    seen_exp: HashMap<UserId, i64>,
    /// Insertions since the last prune.
    since_prune: usize,
    /// Where new entries go for the other nodes (cluster mode).
    outbox: Option<mpsc::Sender<Revoked>>,
}

/// The shared deny list (cheap clone).
#[derive(Debug, Clone, Default)]
pub struct Revocations {
    lists: Arc<Mutex<Lists>>,
}

impl Revocations {
    fn with<T>(&self, f: impl FnOnce(&mut Lists) -> T) -> T {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut lists)
    }

    /// Checks a verified token of `user`; `Err` carries the entry that
    /// denies it. A token that passes is remembered for its `exp`.
    pub fn check(&self, user: &UserId, iat: Option<i64>, exp: i64, now: i64) -> Result<(), Deny> {
        self.with(|lists| {
            if let Some(deny) = lists.denied.get(user).copied() {
                if deny.until < now {
                    lists.denied.remove(user);
                } else if deny.denies(iat, exp) {
                    return Err(deny);
                }
            }
            let seen = lists.seen_exp.entry(user.clone()).or_insert(exp);
            *seen = (*seen).max(exp);
            lists.since_prune += 1;
            if lists.since_prune >= 4096 {
                lists.since_prune = 0;
                lists.seen_exp.retain(|_, exp| *exp >= now);
                lists.denied.retain(|_, deny| deny.until >= now);
            }
            Ok(())
        })
    }

    /// Revokes `user` at `now`: returns the entry, merged with any earlier
    /// one.
    pub fn revoke(&self, user: &UserId, now: i64) -> Deny {
        self.with(|lists| {
            let max_exp = lists.seen_exp.get(user).copied().unwrap_or(now).max(now);
            let deny = Deny {
                revoked_at: now,
                max_exp,
                until: max_exp.max(now + MIN_KEEP_S),
            };
            let merged = lists.denied.get(user).map_or(deny, |old| old.merge(deny));
            lists.denied.insert(user.clone(), merged);
            if let Some(outbox) = &lists.outbox {
                let revoked = Revoked {
                    user_id: user.clone(),
                    deny: merged,
                };
                if outbox.try_send(revoked).is_err() {
                    tracing::warn!(user_id = %user, "revocation not replicated: the outbox is full");
                }
            }
            merged
        })
    }

    /// Sends every later revoke to `outbox` (the replicator's end).
    pub fn replicate_to(&self, outbox: mpsc::Sender<Revoked>) {
        self.with(|lists| lists.outbox = Some(outbox));
    }

    /// Adds an entry made elsewhere (another node, the records store).
    pub fn insert(&self, user: UserId, deny: Deny, now: i64) {
        if deny.until < now {
            return;
        }
        self.with(|lists| {
            let merged = lists.denied.get(&user).map_or(deny, |old| old.merge(deny));
            lists.denied.insert(user, merged);
        });
    }

    /// The live entry of `user`, if any.
    pub fn entry(&self, user: &UserId, now: i64) -> Option<Deny> {
        self.with(|lists| lists.denied.get(user).copied().filter(|d| d.until >= now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> UserId {
        UserId::parse(name).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn tokens_issued_before_the_revoke_are_denied_later_ones_pass() {
        let lists = Revocations::default();
        let alice = user("alice");
        assert_eq!(lists.check(&alice, Some(100), 1_000, 100), Ok(()));
        let deny = lists.revoke(&alice, 200);
        assert_eq!(deny.max_exp, 1_000);
        assert_eq!(deny.until, 200 + MIN_KEEP_S);
        assert_eq!(lists.check(&alice, Some(100), 1_000, 201), Err(deny));
        assert_eq!(
            lists.check(&alice, Some(200), 1_000, 201),
            Err(deny),
            "same second"
        );
        assert_eq!(lists.check(&alice, Some(201), 1_000, 201), Ok(()));
        assert_eq!(lists.check(&user("bob"), Some(100), 1_000, 201), Ok(()));
    }

    #[test]
    fn tokens_without_iat_are_denied_up_to_the_longest_exp_seen() {
        let lists = Revocations::default();
        let alice = user("alice");
        assert_eq!(lists.check(&alice, None, 500, 100), Ok(()));
        assert_eq!(lists.check(&alice, None, 900, 100), Ok(()));
        let deny = lists.revoke(&alice, 200);
        assert_eq!(deny.max_exp, 900);
        assert!(lists.check(&alice, None, 900, 201).is_err());
        assert!(lists.check(&alice, None, 500, 201).is_err());
        assert_eq!(lists.check(&alice, None, 901, 201), Ok(()));
    }

    #[test]
    fn entries_are_forgotten_once_their_tokens_expired() {
        let lists = Revocations::default();
        let alice = user("alice");
        let deny = lists.revoke(&alice, 200);
        assert_eq!(lists.entry(&alice, deny.until), Some(deny));
        assert_eq!(lists.entry(&alice, deny.until + 1), None);
        assert_eq!(
            lists.check(&alice, Some(100), i64::MAX, deny.until + 1),
            Ok(())
        );
        lists.insert(alice.clone(), deny, deny.until + 1);
        assert_eq!(
            lists.entry(&alice, deny.until + 1),
            None,
            "a stale entry is not kept"
        );
    }
}

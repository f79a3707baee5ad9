//! The `AuditStore` conformance suite: what every audit trail must do
//! (append, filter, page newest first, prune, survive reopening where it
//! persists), run against `MemoryAudit` and the audit trail of the SQLite
//! and PostgreSQL stores. A Redis cluster without PostgreSQL keeps the
//! trail in memory per node (`MemoryAudit`), so it is covered by that run.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use presence_hub::audit::store::{AuditFilter, AuditStore, MemoryAudit};
use presence_hub::model::{AuditAction, AuditActor, AuditEvent, AuditTarget, Millis};

use crate::conformance::{BASE, Backend};
use crate::stores::{LIMIT, Postgres, Sqlite};

/// Where an audit trail under test lives.
pub trait AuditBackend: Send + Sync {
    /// Opens the trail; opened again, it holds the same events if it
    /// `persists`.
    fn open(&self) -> BoxFuture<'_, Arc<dyn AuditStore>>;
    /// Whether events survive reopening.
    fn persists(&self) -> bool;
}

/// `MemoryAudit`, fresh each time.
pub struct Memory;

impl AuditBackend for Memory {
    fn open(&self) -> BoxFuture<'_, Arc<dyn AuditStore>> {
        async { Arc::new(MemoryAudit::new()) as Arc<dyn AuditStore> }.boxed()
    }
    fn persists(&self) -> bool {
        false
    }
}

/// The audit trail of a records store.
pub struct OfStore<B>(B);

impl<B: Backend> AuditBackend for OfStore<B> {
    fn open(&self) -> BoxFuture<'_, Arc<dyn AuditStore>> {
        async {
            let store = self.0.open().await;
            store
                .audit()
                .expect("a database store keeps the audit trail")
        }
        .boxed()
    }
    fn persists(&self) -> bool {
        self.0.persists()
    }
}

fn event(action: AuditAction, at: Millis, actor: Option<&str>, target: Option<&str>) -> AuditEvent {
    AuditEvent {
        id: uuid::Uuid::new_v4().to_string(),
        at: BASE + at,
        action,
        actor: Some(AuditActor {
            user_id: actor.map(str::to_string),
            role: actor.map(|_| "admin".to_string()),
            ip: Some("10.0.0.9".into()),
        }),
        target: AuditTarget {
            user_id: target.map(str::to_string),
            session_id: target.map(|_| "3f2504e0-4f89-41d3-9a0c-0305e82c3301".to_string()),
        },
        reason: Some("folded:4".into()),
        node_id: "node-a".into(),
        result: "ok".into(),
    }
}

fn ids(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

pub async fn events_read_back_exactly_as_recorded(backend: &dyn AuditBackend) {
    let store = backend.open().await;
    let mut with_actor = event(
        AuditAction::SessionTerminate,
        0,
        Some("root"),
        Some("alice"),
    );
    with_actor.reason = None;
    let failed = AuditEvent {
        actor: Some(AuditActor {
            user_id: None,
            role: None,
            ip: Some("10.9.9.9".into()),
        }),
        ..event(AuditAction::AuthFailed, 1, None, None)
    };
    let system = AuditEvent {
        actor: None,
        result: "webhook_unreachable".into(),
        ..event(AuditAction::WebhookDropped, 2, None, None)
    };
    store
        .record(vec![with_actor.clone(), failed.clone(), system.clone()])
        .await
        .unwrap();
    let page = store.find(AuditFilter::default(), 0, 10).await.unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.events, vec![system, failed, with_actor]);
}

pub async fn find_filters_pages_and_orders_newest_first(backend: &dyn AuditBackend) {
    let store = backend.open().await;
    let events = vec![
        event(
            AuditAction::SessionTerminate,
            10,
            Some("root"),
            Some("alice"),
        ),
        event(AuditAction::UserRevoke, 20, Some("root"), Some("bob")),
        event(AuditAction::SessionTerminate, 30, Some("ops"), Some("bob")),
        event(AuditAction::AuthDenied, 40, Some("carol"), None),
        event(AuditAction::SessionsExport, 50, Some("ops"), None),
    ];
    store.record(events.clone()).await.unwrap();
    let all = store.find(AuditFilter::default(), 0, 10).await.unwrap();
    assert_eq!(all.total, 5);
    assert_eq!(
        ids(&all.events),
        events
            .iter()
            .rev()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>()
    );
    let page = store.find(AuditFilter::default(), 1, 2).await.unwrap();
    assert_eq!(
        (page.total, ids(&page.events)),
        (5, vec![&*events[3].id, &*events[2].id])
    );
    let find = |filter: AuditFilter| {
        let store = store.clone();
        async move { store.find(filter, 0, 10).await.unwrap() }
    };
    let terminate = find(AuditFilter {
        action: Some(AuditAction::SessionTerminate),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(ids(&terminate.events), vec![&*events[2].id, &*events[0].id]);
    let by_ops = find(AuditFilter {
        actor: Some("ops".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(ids(&by_ops.events), vec![&*events[4].id, &*events[2].id]);
    let on_bob = find(AuditFilter {
        user_id: Some("bob".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(on_bob.total, 2);
    let range = find(AuditFilter {
        from: Some(BASE + 20),
        to: Some(BASE + 40),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!(ids(&range.events), vec![&*events[2].id, &*events[1].id]);
    let none = find(AuditFilter {
        action: Some(AuditAction::UserRevoke),
        actor: Some("ops".into()),
        ..AuditFilter::default()
    })
    .await;
    assert_eq!((none.total, none.events.len()), (0, 0));
}

pub async fn prune_drops_events_before_the_cutoff(backend: &dyn AuditBackend) {
    let store = backend.open().await;
    let events: Vec<AuditEvent> = (0..2500)
        .map(|i| event(AuditAction::AuthFailed, i, None, None))
        .collect();
    store.record(events).await.unwrap();
    assert_eq!(store.prune(BASE + 2200).await.unwrap(), 2200);
    let left = store.find(AuditFilter::default(), 0, 1000).await.unwrap();
    assert_eq!(left.total, 300);
    assert!(left.events.iter().all(|e| e.at >= BASE + 2200));
    assert_eq!(store.prune(BASE + 2200).await.unwrap(), 0);
}

pub async fn recorded_events_survive_reopening(backend: &dyn AuditBackend) {
    let kept = event(AuditAction::UserRevoke, 5, Some("root"), Some("alice"));
    {
        let store = backend.open().await;
        store.record(vec![kept.clone()]).await.unwrap();
    }
    let store = backend.open().await;
    let page = store.find(AuditFilter::default(), 0, 10).await.unwrap();
    if backend.persists() {
        assert_eq!(page.events, vec![kept]);
    } else {
        assert_eq!(page.total, 0);
    }
}

macro_rules! audit_suite {
    ($($module:ident = $backend:expr),* $(,)?) => {
        $(
            mod $module {
                #[allow(unused_imports)]
                use super::*;
                audit_suite!(@tests $backend;
                    events_read_back_exactly_as_recorded,
                    find_filters_pages_and_orders_newest_first,
                    prune_drops_events_before_the_cutoff,
                    recorded_events_survive_reopening,
                );
            }
        )*
    };
    (@tests $backend:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let backend = $backend;
                crate::support::within(LIMIT, super::$test(&backend)).await;
            }
        )*
    };
}

audit_suite!(
    memory = Memory,
    sqlite = OfStore(Sqlite::new().await),
    postgres = OfStore(Postgres::new().await),
);

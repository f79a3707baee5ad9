//! The rules' unit tests, with time passed explicitly.

use super::*;
use std::time::Duration;

fn config() -> AlertConfig {
    AlertConfig {
        enabled: true,
        multi_ip_min: 2,
        session_flood_min: 2,
        reconnect_loop_min: 2,
        long_session_after: Duration::from_secs(10),
        auth_failures_min: 2,
    }
}

fn session(user: &str, node: &str, ip: &str, at: Millis) -> SessionView {
    SessionView {
        org: Some("acme".into()),
        node_id: NodeId::new(node),
        ip: Some(ip.into()),
        ..SessionView::sample(user, at)
    }
}

fn applied(event: SessionEvent, session: &SessionView, at: Millis) -> Applied {
    Applied {
        at,
        change: Change::Session {
            event,
            session: session.clone(),
        },
    }
}

fn rules(alerts: &[Alert]) -> Vec<(AlertRule, bool)> {
    alerts.iter().map(|a| (a.rule, a.is_active())).collect()
}

#[test]
fn only_the_owner_of_the_completing_session_raises() {
    let mut here = Evaluator::new(config(), NodeId::new("a"));
    let remote = session("u", "b", "192.0.2.1", 0);
    assert!(
        here.observe(&applied(SessionEvent::Started, &remote, 0))
            .is_empty()
    );
    let local = session("u", "a", "192.0.2.2", 10);
    let out = here.observe(&applied(SessionEvent::Started, &local, 10));
    assert_eq!(
        rules(&out),
        [(AlertRule::MultiIp, true), (AlertRule::SessionFlood, true)]
    );
    assert_eq!(out[0].org.as_deref(), Some("acme"));
    let mut there = Evaluator::new(config(), NodeId::new("b"));
    there.observe(&applied(SessionEvent::Started, &remote, 0));
    assert!(
        there
            .observe(&applied(SessionEvent::Started, &local, 10))
            .is_empty()
    );
}

#[test]
fn a_flood_clears_when_its_starts_leave_the_window() {
    let mut rules_ = Evaluator::new(config(), NodeId::new("a"));
    let first = session("u", "a", "192.0.2.1", 0);
    let second = session("u", "a", "192.0.2.1", 1_000);
    rules_.observe(&applied(SessionEvent::Started, &first, 0));
    let raised = rules_.observe(&applied(SessionEvent::Started, &second, 1_000));
    assert_eq!(rules(&raised), [(AlertRule::SessionFlood, true)]);
    let flood = |alerts: Vec<Alert>| -> Vec<Alert> {
        alerts
            .into_iter()
            .filter(|a| a.rule == AlertRule::SessionFlood)
            .collect()
    };
    assert!(flood(rules_.fire_due(WINDOW - 1)).is_empty());
    let cleared = flood(rules_.fire_due(WINDOW));
    assert_eq!(rules(&cleared), [(AlertRule::SessionFlood, false)]);
    assert_eq!(cleared[0].id, raised[0].id);
    assert_eq!(cleared[0].cleared_at, Some(WINDOW));
}

#[test]
fn a_long_session_fires_at_its_deadline_and_clears_at_its_end() {
    let mut rules_ = Evaluator::new(config(), NodeId::new("a"));
    let long = session("u", "a", "192.0.2.1", 0);
    rules_.observe(&applied(SessionEvent::Started, &long, 0));
    assert!(rules_.fire_due(9_999).is_empty());
    let raised = rules_.fire_due(10_000);
    assert_eq!(rules(&raised), [(AlertRule::LongSession, true)]);
    let ended = rules_.observe(&applied(SessionEvent::Ended, &long, 11_000));
    assert_eq!(rules(&ended), [(AlertRule::LongSession, false)]);
}

#[test]
fn auth_failures_are_per_ip_without_a_user() {
    let mut rules_ = Evaluator::new(config(), NodeId::new("a"));
    assert!(rules_.auth_failure("192.0.2.9".into(), 0).is_empty());
    assert!(rules_.auth_failure("192.0.2.8".into(), 1).is_empty());
    let raised = rules_.auth_failure("192.0.2.9".into(), 2);
    assert_eq!(rules(&raised), [(AlertRule::AuthFailures, true)]);
    assert_eq!(raised[0].user_id, None);
    assert!(
        rules_.auth_failure("192.0.2.9".into(), 3).is_empty(),
        "raised once"
    );
}

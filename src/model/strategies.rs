//! Owns the proptest strategies for the shared data: JSON values, times the
//! contract can render, room names in the grammar and whole `SessionView`s
//! with every field filled at random, for the round-trip properties of the
//! stores and the cluster wire.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::session::{AppInfo, DeviceInfo, Location, SessionView, Traffic};
use super::{EndCause, ManualStatus, Millis, NodeId, RoomName, SessionId, SessionStatus, UserId};
use super::{Transport, room::MAX_ROOM_BYTES};

/// The settings of every property block: `cases` runs each, and no
/// failure files written into the source tree (a failing case is shrunk
/// and printed; it is kept as a plain regression test).
pub fn bounded(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Any text, control characters and newlines included.
pub fn text() -> impl Strategy<Value = String> {
    "(?s).{0,16}"
}

/// A finite float (JSON has no NaN or infinity).
pub fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("finite", |x| x.is_finite())
}

/// Any JSON value, nested a few levels.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        finite().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            json_object(inner).prop_map(Value::Object),
        ]
    })
}

/// A JSON object of values from `values`.
pub fn json_object(
    values: impl Strategy<Value = Value>,
) -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(text(), values, 0..4).prop_map(|map| map.into_iter().collect())
}

/// A time with a four-digit year, as RFC 3339 renders it.
pub fn time() -> impl Strategy<Value = Millis> {
    // 0001-01-01T00:00:00.000Z ..= 9999-12-31T23:59:59.999Z
    -62_135_596_800_000_i64..=253_402_300_799_999
}

/// A room name in the grammar.
pub fn room_name() -> impl Strategy<Value = RoomName> {
    proptest::string::string_regex(&format!("[A-Za-z0-9_.:/@-]{{1,{MAX_ROOM_BYTES}}}"))
        .unwrap_or_else(|err| panic!("room name pattern: {err}"))
        .prop_map(|name| RoomName::parse(&name).unwrap_or_else(|_| panic!("not a room: {name}")))
}

fn session_status() -> impl Strategy<Value = SessionStatus> {
    prop_oneof![
        Just(SessionStatus::Active),
        Just(SessionStatus::Idle),
        Just(SessionStatus::Away),
        Just(SessionStatus::Ended),
    ]
}

fn end_cause() -> impl Strategy<Value = EndCause> {
    proptest::sample::select(vec![
        EndCause::ClientClosed,
        EndCause::Timeout,
        EndCause::Terminated,
        EndCause::Revoked,
        EndCause::SessionLimit,
        EndCause::NodeLost,
        EndCause::Shutdown,
        EndCause::Policy,
        EndCause::MaxAge,
        EndCause::TokenExpired,
    ])
}

fn device() -> impl Strategy<Value = DeviceInfo> {
    let field = || proptest::option::of(text());
    (field(), field(), field()).prop_map(|(platform, device_type, browser)| DeviceInfo {
        platform,
        device_type,
        browser,
    })
}

fn location() -> impl Strategy<Value = Location> {
    let field = || proptest::option::of(text());
    let degrees = |limit: f64| proptest::option::of(-limit..=limit);
    (field(), field(), field(), degrees(90.0), degrees(180.0)).prop_map(
        |(country, city, timezone, lat, lon)| Location {
            country,
            city,
            timezone,
            lat,
            lon,
        },
    )
}

fn traffic() -> impl Strategy<Value = Traffic> {
    any::<[u64; 4]>().prop_map(|[msgs_in, msgs_out, bytes_in, bytes_out]| Traffic {
        msgs_in,
        msgs_out,
        bytes_in,
        bytes_out,
    })
}

/// The parts of a session that say who and where it is.
fn identity() -> impl Strategy<Value = (SessionId, UserId, [Option<String>; 4], NodeId, Transport)>
{
    let field = || proptest::option::of(text());
    (
        any::<u128>(),
        "(?s).{1,32}",
        [field(), field(), field(), field()],
        text(),
        prop_oneof![Just(Transport::Ws), Just(Transport::Http)],
    )
        .prop_map(|(id, user, claims, node, transport)| {
            let id = uuid::Uuid::from_u128(id).to_string();
            (
                SessionId::parse(&id).unwrap_or_else(|| panic!("not an id: {id}")),
                UserId::parse(&user).unwrap_or_else(|_| panic!("not a user: {user:?}")),
                claims,
                NodeId::new(&node),
                transport,
            )
        })
}

/// A session view with every field at random (no timeline: it is not part
/// of the Session JSON).
pub fn session_view() -> impl Strategy<Value = SessionView> {
    let field = || proptest::option::of(text());
    let status = (
        session_status(),
        proptest::option::of(prop_oneof![
            Just(ManualStatus::Busy),
            Just(ManualStatus::Away)
        ]),
        (time(), time(), proptest::option::of(time())),
        proptest::option::of(end_cause()),
        0..1_000_000_000_000_i64,
        any::<bool>(),
    );
    let meta = (
        [field(), field(), field()],
        proptest::collection::vec(room_name(), 0..3),
        device(),
        proptest::option::of(
            (field(), field()).prop_map(|(name, version)| AppInfo { name, version }),
        ),
        proptest::option::of(json_object(json_value())),
        proptest::option::of(location()),
        traffic(),
        proptest::option::of(0.0..1e6_f64),
    );
    (identity(), status, meta).prop_map(|(identity, status, meta)| {
        let (session_id, user_id, [name, org, email, team], node_id, transport) = identity;
        let (status, manual, (connected_at, last_activity, ended_at), end_cause, ms, reconnecting) =
            status;
        let ([page, ip, user_agent], rooms, device, app, meta, location, traffic, rtt_ms) = meta;
        SessionView {
            session_id,
            user_id,
            name,
            org,
            email,
            team,
            node_id,
            transport,
            status,
            manual,
            connected_at,
            last_activity,
            page,
            rooms,
            ip,
            user_agent,
            device,
            app,
            meta,
            location,
            ended_at,
            end_cause,
            duration_s: super::session::duration_seconds(0, ms),
            reconnecting,
            traffic,
            rtt_ms,
            timeline: None,
        }
    })
}

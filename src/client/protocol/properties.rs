//! Property tests of the client frame parser: any text and any near-valid
//! JSON object (a known or unknown `type`, each field absent, well typed or
//! any JSON value) is parsed or refused with a contract error code, never
//! a panic; and every valid message, written out as a client would, parses
//! back to the message it was written from.

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::model::strategies::{json_object, json_value, room_name, text};

const TYPES: [&str; 10] = [
    "ping", "status", "hello", "auth", "end", "join", "leave", "watch", "unwatch", "pong",
];
const FIELDS: [&str; 8] = [
    "id", "page", "manual", "app", "device", "meta", "token", "room",
];
const CODES: [&str; 5] = [
    "bad_message",
    "unknown_type",
    "unsupported",
    "forbidden",
    "room_limit",
];

/// A value a field is likely to be given: well typed, or anything.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::String),
        proptest::sample::select(vec!["busy", "away", "org:a", "doc:1", "desktop"])
            .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        json_object(json_value()).prop_map(Value::Object),
        json_value(),
    ]
}

/// A JSON object that is a message or nearly one.
fn near_valid() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        4 => proptest::sample::select(TYPES.to_vec()).prop_map(Value::from),
        1 => json_value(),
    ];
    let fields = proptest::collection::btree_map(
        proptest::sample::select(FIELDS.to_vec()),
        field_value(),
        0..4,
    );
    (proptest::option::weighted(0.95, kind), fields).prop_map(|(kind, fields)| {
        let mut object: Map<String, Value> = fields
            .into_iter()
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        if let Some(kind) = kind {
            object.insert("type".to_string(), kind);
        }
        Value::Object(object).to_string()
    })
}

fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap()
}

/// A ping frame, the raw `id` it carries and its page.
fn ping() -> impl Strategy<Value = (String, Option<String>, Option<String>)> {
    let id = proptest::option::of(prop_oneof![
        any::<i64>().prop_map(|n| json_text(&n)),
        text().prop_map(|s| json_text(&s)),
    ]);
    (id, proptest::option::of(text())).prop_map(|(id, page)| {
        let mut frame = json!({"type": "ping", "page": page});
        if let Some(id) = &id {
            frame["id"] = serde_json::from_str(id).unwrap();
        }
        (frame.to_string(), id, page)
    })
}

fn status() -> impl Strategy<Value = (String, ClientMessage<'static>)> {
    proptest::option::of(prop_oneof![
        Just(ManualStatus::Busy),
        Just(ManualStatus::Away)
    ])
    .prop_map(|manual| {
        let frame = json!({"type": "status", "manual": manual});
        (frame.to_string(), ClientMessage::Status { manual })
    })
}

fn hello() -> impl Strategy<Value = (String, ClientMessage<'static>)> {
    let app = proptest::option::of(
        (proptest::option::of(text()), proptest::option::of(text()))
            .prop_map(|(name, version)| AppInfo { name, version }),
    );
    let device = proptest::option::of(
        (
            proptest::option::of(text()),
            proptest::option::of(proptest::sample::select(DEVICE_TYPES.to_vec())),
            proptest::option::of(text()),
        )
            .prop_map(|(platform, device_type, browser)| DeviceInfo {
                platform,
                device_type: device_type.map(str::to_string),
                browser,
            }),
    );
    let meta = proptest::option::of(
        proptest::collection::btree_map("[a-z_]{1,8}", text().prop_map(Value::from), 0..8)
            .prop_map(|map| map.into_iter().collect::<Map<String, Value>>()),
    );
    (app, device, proptest::option::of(text()), meta).prop_map(|(app, device, page, meta)| {
        let frame =
            json!({"type": "hello", "app": app, "device": device, "page": page, "meta": meta});
        let update = MetaUpdate {
            app,
            device,
            page,
            meta,
        };
        (frame.to_string(), ClientMessage::Hello(update))
    })
}

fn other() -> impl Strategy<Value = (String, ClientMessage<'static>)> {
    let actions = vec![
        ("join", RoomAction::Join),
        ("leave", RoomAction::Leave),
        ("watch", RoomAction::Watch),
        ("unwatch", RoomAction::Unwatch),
    ];
    prop_oneof![
        text().prop_map(|token| {
            let frame = json!({"type": "auth", "token": token});
            (frame.to_string(), ClientMessage::Auth { token })
        }),
        Just(()).prop_map(|()| (r#"{"type":"end"}"#.to_string(), ClientMessage::End)),
        (proptest::sample::select(actions), room_name()).prop_map(|((kind, action), room)| {
            let frame = json!({"type": kind, "room": room.as_str()});
            (frame.to_string(), ClientMessage::Room { action, room })
        }),
    ]
}

proptest! {
    #![proptest_config(crate::model::strategies::bounded(512))]

    #[test]
    fn any_text_is_parsed_or_refused_with_a_code(frame in "(?s).{0,200}") {
        if let Err(err) = parse_client_message(&frame) {
            prop_assert!(CODES.contains(&err.code()));
            prop_assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn near_valid_objects_are_parsed_or_refused_with_a_code(frame in near_valid()) {
        match parse_client_message(&frame) {
            Ok(message) => {
                let object: Value = serde_json::from_str(&frame).unwrap();
                let kind = object["type"].as_str().unwrap_or_default();
                let matches = match message {
                    ClientMessage::Ping { .. } => kind == "ping",
                    ClientMessage::Status { .. } => kind == "status",
                    ClientMessage::Hello(_) => kind == "hello",
                    ClientMessage::Auth { .. } => kind == "auth",
                    ClientMessage::End => kind == "end",
                    ClientMessage::Room { .. } => ["join", "leave", "watch", "unwatch"].contains(&kind),
                };
                prop_assert!(matches, "{frame} parsed as another type");
            }
            Err(err) => prop_assert!(CODES.contains(&err.code()), "{err:?}"),
        }
    }

    #[test]
    fn valid_messages_parse_back_to_what_was_written(
        (frame, expected) in prop_oneof![status(), hello(), other()]
    ) {
        prop_assert_eq!(parse_client_message(&frame), Ok(expected), "{}", frame);
    }

    #[test]
    fn pings_parse_back_with_their_id_verbatim((frame, id, page) in ping()) {
        let expected = ClientMessage::Ping { id: id.as_deref(), page };
        prop_assert_eq!(parse_client_message(&frame), Ok(expected), "{}", frame);
    }
}

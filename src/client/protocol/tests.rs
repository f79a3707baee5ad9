use super::*;

#[test]
fn pings_borrow_their_id_and_echo_it_verbatim() {
    let msg = parse_client_message(r#"{"type":"ping","id":42,"page":"/a"}"#).unwrap();
    assert_eq!(
        msg,
        ClientMessage::Ping {
            id: Some("42"),
            page: Some("/a".into())
        }
    );
    let msg = parse_client_message(r#"{"type":"ping","id":"abc"}"#).unwrap();
    let ClientMessage::Ping { id, .. } = msg else {
        panic!()
    };
    let pong: Value = serde_json::from_str(&pong_text(id, 0)).unwrap();
    assert_eq!(pong["id"], "abc");
    assert_eq!(pong["ts"], "1970-01-01T00:00:00.000Z");
}

#[test]
fn a_pong_without_id_has_no_id() {
    let pong: Value = serde_json::from_str(&pong_text(None, 0)).unwrap();
    assert!(pong.get("id").is_none());
    assert_eq!(pong["type"], "pong");
}

#[test]
fn manual_status_accepts_busy_away_and_null_only() {
    assert_eq!(
        parse_client_message(r#"{"type":"status","manual":"busy"}"#),
        Ok(ClientMessage::Status {
            manual: Some(ManualStatus::Busy)
        })
    );
    assert_eq!(
        parse_client_message(r#"{"type":"status","manual":null}"#),
        Ok(ClientMessage::Status { manual: None })
    );
    assert_eq!(
        parse_client_message(r#"{"type":"status","manual":"sleeping"}"#)
            .unwrap_err()
            .code(),
        "bad_message"
    );
    assert_eq!(
        parse_client_message(r#"{"type":"status"}"#)
            .unwrap_err()
            .code(),
        "bad_message"
    );
}

#[test]
fn an_unreadable_frame_is_explained_in_words_not_parser_terms() {
    let FrameError::BadMessage(not_json) = parse_client_message("nonsense").unwrap_err() else {
        panic!("bad_message");
    };
    assert!(
        not_json.starts_with("the message is not valid JSON (column 2)"),
        "{not_json}"
    );
    assert!(not_json.ends_with(r#"send an object such as {"type":"ping"}"#));
    assert!(!not_json.contains("expected"), "{not_json}");
    let FrameError::BadMessage(not_object) = parse_client_message("[1]").unwrap_err() else {
        panic!("bad_message");
    };
    assert!(not_object.contains("not a message object"), "{not_object}");
}

#[test]
fn garbage_and_wrong_types_are_bad_messages() {
    for text in [
        "nope",
        "{}",
        "[]",
        r#"{"type":5}"#,
        r#"{"type":"ping","id":{}}"#,
        r#"{"type":"ping","page":3}"#,
        r#"{"type":"hello","meta":[1]}"#,
    ] {
        assert_eq!(
            parse_client_message(text).unwrap_err().code(),
            "bad_message",
            "{text}"
        );
    }
    assert_eq!(
        parse_client_message(r#"{"type":"dance"}"#)
            .unwrap_err()
            .code(),
        "unknown_type"
    );
}

#[test]
fn auth_needs_a_token_and_end_needs_nothing() {
    assert_eq!(
        parse_client_message(r#"{"type":"auth","token":"abc"}"#),
        Ok(ClientMessage::Auth {
            token: "abc".into()
        })
    );
    assert_eq!(
        parse_client_message(r#"{"type":"auth"}"#)
            .unwrap_err()
            .code(),
        "bad_message"
    );
    assert_eq!(
        parse_client_message(r#"{"type":"auth","token":7}"#)
            .unwrap_err()
            .code(),
        "bad_message"
    );
    assert_eq!(
        parse_client_message(r#"{"type":"end"}"#),
        Ok(ClientMessage::End)
    );
    let frame = ServerMessage::Terminated {
        reason: "admin",
        retry_after_ms: None,
    };
    assert_eq!(frame.to_text(), r#"{"type":"terminated","reason":"admin"}"#);
}

#[test]
fn room_messages_need_a_name_in_the_grammar() {
    assert_eq!(
        parse_client_message(r#"{"type":"join","room":"doc:1"}"#),
        Ok(ClientMessage::Room {
            action: RoomAction::Join,
            room: RoomName::parse("doc:1").unwrap()
        })
    );
    for (kind, action) in [
        ("leave", RoomAction::Leave),
        ("watch", RoomAction::Watch),
        ("unwatch", RoomAction::Unwatch),
    ] {
        let text = format!(r#"{{"type":"{kind}","room":"r"}}"#);
        let Ok(ClientMessage::Room { action: parsed, .. }) = parse_client_message(&text) else {
            panic!("{kind}")
        };
        assert_eq!(parsed, action);
    }
    for text in [
        r#"{"type":"join"}"#,
        r#"{"type":"join","room":7}"#,
        r#"{"type":"join","room":""}"#,
        r#"{"type":"watch","room":"a b"}"#,
    ] {
        assert_eq!(
            parse_client_message(text).unwrap_err().code(),
            "bad_message",
            "{text}"
        );
    }
    let room = RoomName::parse("x").unwrap();
    let error = FrameError::RoomLimit { room, limit: 16 };
    assert_eq!(error.code(), "room_limit");
    assert_eq!(error.room().map(RoomName::as_str), Some("x"));
}

#[test]
fn hello_carries_app_device_page_and_meta() {
    let msg = parse_client_message(r#"{"type":"hello","app":{"name":"crm","version":"2.1"},"device":{"device_type":"tablet"},"page":"/x","meta":{"mfa_verified":true}}"#).unwrap();
    let ClientMessage::Hello(update) = msg else {
        panic!()
    };
    assert_eq!(update.app.unwrap().name.as_deref(), Some("crm"));
    assert_eq!(
        update.device.unwrap().device_type.as_deref(),
        Some("tablet")
    );
    assert_eq!(update.meta.unwrap()["mfa_verified"], true);
}

#[test]
fn hello_meta_is_bounded() {
    let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), Value::from(i))).collect();
    let text = serde_json::json!({"type":"hello","meta": many}).to_string();
    assert_eq!(
        parse_client_message(&text).unwrap_err().code(),
        "bad_message"
    );
    let big = serde_json::json!({"type":"hello","meta": {"k": "x".repeat(1100)}}).to_string();
    assert_eq!(
        parse_client_message(&big).unwrap_err().code(),
        "bad_message"
    );
    let bad_type = r#"{"type":"hello","device":{"device_type":"toaster"}}"#;
    assert_eq!(
        parse_client_message(bad_type).unwrap_err().code(),
        "bad_message"
    );
}

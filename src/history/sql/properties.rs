//! Property tests of reading stored sessions back: any text, JSON or not,
//! is read or skipped (`None`), never a panic; a view stored the way
//! `Columns::of` stores it reads back equal; and one written before the
//! defaulted fields existed (no email, team, rooms, location,
//! reconnecting, traffic or rtt) reads back with their defaults.

use proptest::prelude::*;

use super::parse_view;
use crate::model::strategies::{json_value, session_view};
use crate::model::{SessionView, Traffic};

/// The Session JSON as the store writes it (through a `Value`).
fn stored(view: &SessionView) -> serde_json::Value {
    serde_json::to_value(view).unwrap()
}

proptest! {
    #![proptest_config(crate::model::strategies::bounded(256))]

    #[test]
    fn any_text_is_read_or_skipped(text in "(?s).{0,200}") {
        let _ = parse_view(&text);
    }

    #[test]
    fn any_json_is_read_or_skipped(value in json_value()) {
        let _ = parse_view(&value.to_string());
    }

    #[test]
    fn a_stored_view_reads_back_equal(view in session_view()) {
        let text = stored(&view).to_string();
        prop_assert_eq!(parse_view(&text), Some(view), "{}", text);
    }

    #[test]
    fn an_older_record_reads_back_with_the_defaults(view in session_view()) {
        let mut value = stored(&view);
        let fields = [
            "email", "team", "rooms", "location", "reconnecting", "traffic", "rtt_ms",
        ];
        for field in fields {
            value.as_object_mut().unwrap().remove(field);
        }
        let expected = SessionView {
            email: None,
            team: None,
            rooms: Vec::new(),
            location: None,
            reconnecting: false,
            traffic: Traffic::default(),
            rtt_ms: None,
            ..view
        };
        prop_assert_eq!(parse_view(&value.to_string()), Some(expected));
    }

    #[test]
    fn a_stored_view_with_a_field_of_the_wrong_type_is_skipped(
        view in session_view(),
        field in proptest::sample::select(vec!["session_id", "connected_at", "status", "duration_s"]),
    ) {
        let mut value = stored(&view);
        value[field] = serde_json::json!({"not": "this"});
        prop_assert_eq!(parse_view(&value.to_string()), None);
    }
}

/// Found by `a_stored_view_reads_back_equal`: without correctly rounded
/// float parsing, a stored latitude read back one unit in the last place
/// off.
#[test]
fn a_stored_location_reads_back_to_the_same_degrees() {
    let view = SessionView {
        location: Some(crate::model::Location {
            lat: Some(-49.197674927357724),
            lon: Some(-1.4416377871164213e302),
            ..crate::model::Location::default()
        }),
        ..SessionView::sample("u1", 0)
    };
    let read = parse_view(&stored(&view).to_string());
    assert_eq!(read.and_then(|v| v.location), view.location);
}

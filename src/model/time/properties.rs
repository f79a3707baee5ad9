//! Property tests of time rendering: any `Millis` renders without a panic,
//! and every time with a four-digit year renders as RFC 3339 with
//! milliseconds that parses back to the same instant.

use proptest::prelude::*;

use super::{format_rfc3339, parse_rfc3339};
use crate::model::strategies::time;

proptest! {
    #![proptest_config(crate::model::strategies::bounded(512))]

    #[test]
    fn any_millis_renders(at in prop_oneof![
        any::<i64>(),
        i64::MIN..i64::MIN + 1_000,
        i64::MAX - 1_000..=i64::MAX,
    ]) {
        prop_assert!(format_rfc3339(at).ends_with('Z'));
    }

    #[test]
    fn a_rendered_time_parses_back(at in time()) {
        let text = format_rfc3339(at);
        prop_assert_eq!(text.len(), 24, "{}", text);
        prop_assert_eq!(parse_rfc3339(&text), Some(at), "{}", text);
    }
}

/// Found by `any_millis_renders`: the start of the second was computed in
/// milliseconds, which overflows for the earliest `Millis`.
#[test]
fn the_earliest_millis_render() {
    assert!(format_rfc3339(-9_223_372_036_854_775_001).ends_with(".999Z"));
    assert!(format_rfc3339(i64::MIN).ends_with(".192Z"));
}

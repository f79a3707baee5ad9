//! Property tests of the admin query parameters: any query string is
//! parsed or refused with a 400, never a panic, and so are the session
//! filter, the `meta.` criteria and paging read from what parsed; encoded
//! pairs read back as written (the first of a repeated name wins); `meta.`
//! criteria are exactly the valid `meta.` pairs, sorted by key, and a bad
//! key names its parameter; `from` and `to` read back to the times written.

use proptest::prelude::*;

use super::*;
use crate::model::format_rfc3339;
use crate::model::strategies::{text, time};

/// Query strings of the characters that matter to the parser.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        "(?s).{0,80}",
        "[a-z_.=&%+0-9A-Fx-]{0,80}",
        proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "page",
                    "page_size",
                    "from",
                    "to",
                    "q",
                    "status",
                    "meta.",
                    "meta.a",
                    "org"
                ]),
                "[a-z0-9%+:.TZ-]{0,24}"
            ),
            0..6
        )
        .prop_map(|pairs| {
            pairs
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("&")
        }),
    ]
}

fn meta_key() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.-]{1,128}"
}

proptest! {
    #![proptest_config(crate::model::strategies::bounded(512))]

    #[test]
    fn any_query_is_parsed_or_refused_with_400(query in query()) {
        match parse_pairs(&query) {
            Ok(pairs) => {
                for status in [
                    session_filter(&pairs).err().map(|e| e.status()),
                    meta_criteria(&pairs).err().map(|e| e.status()),
                    Paging::parse(&pairs).err().map(|e| e.status()),
                ]
                .into_iter()
                .flatten()
                {
                    prop_assert_eq!(status, 400);
                }
            }
            Err(err) => prop_assert_eq!(err.status(), 400),
        }
    }

    #[test]
    fn encoded_pairs_read_back_the_first_of_each_name(
        pairs in proptest::collection::vec((text(), text()), 0..6)
    ) {
        let query = serde_urlencoded::to_string(&pairs).unwrap();
        let mut expected = HashMap::new();
        for (name, value) in &pairs {
            expected.entry(name.clone()).or_insert(value.clone());
        }
        prop_assert_eq!(parse_pairs(&query).unwrap(), expected, "{}", query);
    }

    #[test]
    fn meta_criteria_are_the_meta_pairs_sorted_by_key(
        meta in proptest::collection::btree_map(meta_key(), text(), 0..5),
        others in proptest::collection::btree_map("[a-z_]{1,8}", text(), 0..3),
    ) {
        let mut pairs: HashMap<String, String> = others.into_iter().collect();
        pairs.extend(meta.iter().map(|(key, value)| (format!("meta.{key}"), value.clone())));
        let expected: Vec<MetaCriterion> = meta
            .into_iter()
            .map(|(key, value)| MetaCriterion { key, value })
            .collect();
        prop_assert_eq!(meta_criteria(&pairs).unwrap(), expected);
    }

    #[test]
    fn a_bad_meta_key_names_its_parameter(key in "(?s).{0,140}", value in text()) {
        prop_assume!(!MetaCriterion::valid_key(&key));
        let name = format!("meta.{key}");
        let pairs = HashMap::from([(name.clone(), value)]);
        match meta_criteria(&pairs) {
            Err(ApiError::BadParameter { name: named, .. }) => prop_assert_eq!(named, name),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn from_and_to_read_back_and_must_be_in_order(from in time(), to in time()) {
        let pairs = HashMap::from([
            ("from".to_string(), format_rfc3339(from)),
            ("to".to_string(), format_rfc3339(to)),
        ]);
        match session_filter(&pairs) {
            Ok(filter) => {
                prop_assert!(from <= to);
                prop_assert_eq!((filter.from, filter.to), (Some(from), Some(to)));
            }
            Err(err) => {
                prop_assert!(from > to);
                prop_assert!(err.to_string().contains("to"), "{err}");
            }
        }
    }
}

//! Property tests of the online series members: any text is read as a
//! point or skipped, never a panic, and a point read from text writes back
//! to a member that reads as the same point; every point's member reads
//! back to the point; a member with a part missing or one part too many is
//! skipped.

use proptest::prelude::*;

use super::{SeriesPoint, parse_point, point_member};

fn point() -> impl Strategy<Value = SeriesPoint> {
    (any::<i64>(), any::<u64>(), any::<u64>()).prop_map(|(at, users, sessions)| SeriesPoint {
        at,
        users,
        sessions,
    })
}

proptest! {
    #![proptest_config(crate::model::strategies::bounded(512))]

    #[test]
    fn any_text_is_a_point_or_skipped(text in prop_oneof!["(?s).{0,40}", "[0-9:+-]{0,40}"]) {
        if let Some(point) = parse_point(&text) {
            prop_assert_eq!(parse_point(&point_member(&point)), Some(point));
        }
    }

    #[test]
    fn every_point_reads_back(point in point()) {
        prop_assert_eq!(parse_point(&point_member(&point)), Some(point));
    }

    #[test]
    fn a_member_of_the_wrong_shape_is_skipped(point in point(), extra in "[0-9]{0,5}") {
        let member = point_member(&point);
        prop_assert_eq!(parse_point(&format!("{member}:{extra}")), None);
        let shorter = member.rsplit_once(':').map(|(head, _)| head.to_string()).unwrap();
        prop_assert_eq!(parse_point(&shorter), None);
    }
}

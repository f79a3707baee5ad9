//! Owns the `impossible_travel` test: two session starts of one user from
//! locations more than 500 km apart, within 1 h, faster than 900 km/h.
//! Pure.

use serde_json::{Map, Value, json};

use crate::geo::distance_km;
use crate::model::{Location, Millis, SessionId};

/// Starts further apart than this may be impossible travel.
pub const MIN_DISTANCE_KM: f64 = 500.0;
/// Faster than this between two starts is impossible travel.
pub const MAX_SPEED_KMH: f64 = 900.0;
/// Only starts this close in time are compared.
pub const TRAVEL_WINDOW: Millis = 3_600_000;

/// A session start with a known place.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// The session.
    pub session_id: SessionId,
    /// When it started.
    pub at: Millis,
    /// Its IP.
    pub ip: Option<String>,
    /// Where.
    pub location: Location,
}

impl Start {
    fn coordinates(&self) -> Option<(f64, f64)> {
        Some((self.location.lat?, self.location.lon?))
    }
}

/// The alert details when going from `from` to `to` is impossible travel.
pub fn impossible_travel(from: &Start, to: &Start) -> Option<Map<String, Value>> {
    let distance = distance_km(from.coordinates()?, to.coordinates()?);
    if distance <= MIN_DISTANCE_KM {
        return None;
    }
    let hours = (to.at - from.at).abs() as f64 / 3_600_000.0;
    let speed = (hours > 0.0).then(|| distance / hours);
    if speed.is_some_and(|kmh| kmh <= MAX_SPEED_KMH) {
        return None;
    }
    let place = |start: &Start| {
        json!({
            "session_id": start.session_id,
            "at": crate::model::format_rfc3339(start.at),
            "ip": start.ip,
            "country": start.location.country,
            "city": start.location.city,
            "lat": start.location.lat,
            "lon": start.location.lon,
        })
    };
    let mut details = Map::new();
    details.insert(
        "session_ids".into(),
        json!([from.session_id, to.session_id]),
    );
    details.insert("from".into(), place(from));
    details.insert("to".into(), place(to));
    details.insert("distance_km".into(), json!(distance.round()));
    details.insert("speed_kmh".into(), json!(speed.map(f64::round)));
    Some(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(at: Millis, lat: f64, lon: f64) -> Start {
        Start {
            session_id: SessionId::generate(),
            at,
            ip: None,
            location: Location {
                lat: Some(lat),
                lon: Some(lon),
                ..Location::default()
            },
        }
    }

    #[test]
    fn paris_to_new_york_in_ten_minutes_is_impossible() {
        let paris = start(0, 48.8566, 2.3522);
        let new_york = start(600_000, 40.7128, -74.0060);
        let details = impossible_travel(&paris, &new_york).unwrap();
        assert!(details["distance_km"].as_f64().unwrap() > 5000.0);
        assert!(details["speed_kmh"].as_f64().unwrap() > 900.0);
    }

    #[test]
    fn near_places_and_slow_trips_are_fine() {
        let paris = start(0, 48.8566, 2.3522);
        let lyon = start(60_000, 45.7640, 4.8357);
        assert!(impossible_travel(&paris, &lyon).is_none(), "under 500 km");
        let madrid = start(3_000_000, 40.4168, -3.7038);
        // ~1050 km in 50 min is too fast; in 2 h it would not be.
        assert!(impossible_travel(&paris, &madrid).is_some());
        let madrid_later = start(7_200_000, 40.4168, -3.7038);
        assert!(impossible_travel(&paris, &madrid_later).is_none());
    }
}

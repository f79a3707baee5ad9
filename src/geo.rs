//! Owns IP geolocation: the MaxMind-format city database named by
//! `PRESENCE_GEOIP_DB`, opened once at start and read without locks
//! (`Location` of a session, §12). Without a database every lookup is None.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::model::Location;

/// The GeoIP database, shared read-only. Cloning is shallow.
#[derive(Clone, Default)]
pub struct GeoIp {
    reader: Option<Arc<maxminddb::Reader<Vec<u8>>>>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("loaded", &self.reader.is_some())
            .finish()
    }
}

/// The parts of a GeoIP2/GeoLite2 City record the hub uses.
#[derive(Debug, Deserialize)]
struct CityRecord {
    country: Option<Country>,
    city: Option<City>,
    location: Option<Coordinates>,
}

#[derive(Debug, Deserialize)]
struct Country {
    iso_code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct City {
    names: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct Coordinates {
    latitude: Option<f64>,
    longitude: Option<f64>,
    time_zone: Option<String>,
}

impl GeoIp {
    /// No database: every lookup answers None.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads the whole database into memory; the error says why it cannot.
    pub fn open(path: &Path) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|err| format!("cannot read the file: {err}"))?;
        let reader = maxminddb::Reader::from_source(bytes)
            .map_err(|err| format!("not a MaxMind database: {err}"))?;
        Ok(Self {
            reader: Some(Arc::new(reader)),
        })
    }

    /// True when a database is loaded.
    pub fn is_loaded(&self) -> bool {
        self.reader.is_some()
    }

    /// Where `ip` is, or None when there is no database or no entry.
    pub fn locate(&self, ip: IpAddr) -> Option<Location> {
        let reader = self.reader.as_ref()?;
        let record: CityRecord = match reader.lookup(ip).and_then(|found| found.decode()) {
            Ok(record) => record?,
            Err(err) => {
                tracing::debug!(error = %err, "geoip lookup failed");
                return None;
            }
        };
        let coordinates = record.location;
        Some(Location {
            country: record.country.and_then(|c| c.iso_code),
            city: record
                .city
                .and_then(|c| c.names)
                .and_then(|mut names| names.remove("en")),
            timezone: coordinates.as_ref().and_then(|c| c.time_zone.clone()),
            lat: coordinates.as_ref().and_then(|c| c.latitude),
            lon: coordinates.as_ref().and_then(|c| c.longitude),
        })
    }
}

/// Great-circle distance between two points in kilometres (haversine).
pub fn distance_km(from: (f64, f64), to: (f64, f64)) -> f64 {
    const EARTH_RADIUS_KM: f64 = 6371.0;
    let (lat1, lon1) = (from.0.to_radians(), from.1.to_radians());
    let (lat2, lon2) = (to.0.to_radians(), to.1.to_radians());
    let a = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_are_great_circle_kilometres() {
        let paris = (48.8566, 2.3522);
        let new_york = (40.7128, -74.0060);
        let d = distance_km(paris, new_york);
        assert!((5800.0..5870.0).contains(&d), "{d}");
        assert!(distance_km(paris, paris) < 1e-9);
    }

    #[test]
    fn without_a_database_nothing_is_located() {
        assert_eq!(GeoIp::none().locate("192.0.2.1".parse().unwrap()), None);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let path = std::env::temp_dir().join(format!("not-a-db-{}.mmdb", std::process::id()));
        std::fs::write(&path, b"hello").unwrap();
        assert!(GeoIp::open(&path).is_err());
        let _ = std::fs::remove_file(&path);
        assert!(GeoIp::open(Path::new("/nonexistent/geo.mmdb")).is_err());
    }
}

//! Writes a small MaxMind-format (`.mmdb`) city database at test time, so
//! location tests need no download: an IPv4 search tree over the given
//! networks (use the documentation ranges 192.0.2.0/24, 198.51.100.0/24,
//! 203.0.113.0/24), GeoIP2-City-shaped records, and the metadata block.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// One network and the place it is in.
pub struct Place {
    pub network: &'static str,
    pub country: &'static str,
    pub city: &'static str,
    pub time_zone: &'static str,
    pub lat: f64,
    pub lon: f64,
}

/// Writes a city database for `places` under the temp directory.
pub fn write_city_db(name: &str, places: &[Place]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("presence-{}-{name}.mmdb", std::process::id()));
    std::fs::write(&path, city_db(places)).unwrap();
    path
}

/// Removes a database written by `write_city_db`.
pub fn remove(path: &Path) {
    let _ = std::fs::remove_file(path);
}

fn city_db(places: &[Place]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut leaves = Vec::new();
    for place in places {
        let offset = data.len();
        encode_place(&mut data, place);
        let (ip, len) = place.network.split_once('/').unwrap();
        let ip: Ipv4Addr = ip.parse().unwrap();
        leaves.push((u32::from(ip), len.parse::<u32>().unwrap(), offset));
    }
    // The trie: each node is [left, right]; None is "no data".
    #[derive(Clone, Copy)]
    enum Record {
        Empty,
        Node(usize),
        Data(usize),
    }
    let mut nodes: Vec<[Record; 2]> = vec![[Record::Empty; 2]];
    for (bits, len, offset) in leaves {
        let mut node = 0;
        for depth in 0..len {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == len {
                nodes[node][bit] = Record::Data(offset);
                break;
            }
            node = match nodes[node][bit] {
                Record::Node(next) => next,
                _ => {
                    nodes.push([Record::Empty; 2]);
                    let next = nodes.len() - 1;
                    nodes[node][bit] = Record::Node(next);
                    next
                }
            };
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for record in node {
            let value = match *record {
                Record::Empty => count,
                Record::Node(next) => next,
                Record::Data(offset) => count + 16 + offset,
            } as u32;
            out.extend_from_slice(&value.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    encode_metadata(&mut out, count as u32);
    out
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (kind_bits, extended) = if kind > 7 {
        (0, Some(kind - 7))
    } else {
        (kind, None)
    };
    let (size_bits, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        _ => (30, ((size - 285) as u16).to_be_bytes().to_vec()),
    };
    out.push((kind_bits << 5) | size_bits);
    if let Some(extended) = extended {
        out.push(extended);
    }
    out.extend(extra);
}

fn string(out: &mut Vec<u8>, text: &str) {
    control(out, 2, text.len());
    out.extend_from_slice(text.as_bytes());
}

fn double(out: &mut Vec<u8>, value: f64) {
    control(out, 3, 8);
    out.extend_from_slice(&value.to_be_bytes());
}

fn uint(out: &mut Vec<u8>, kind: u8, bytes: &[u8]) {
    control(out, kind, bytes.len());
    out.extend_from_slice(bytes);
}

fn map(out: &mut Vec<u8>, pairs: usize) {
    control(out, 7, pairs);
}

fn encode_place(out: &mut Vec<u8>, place: &Place) {
    map(out, 3);
    string(out, "city");
    map(out, 1);
    string(out, "names");
    map(out, 1);
    string(out, "en");
    string(out, place.city);
    string(out, "country");
    map(out, 1);
    string(out, "iso_code");
    string(out, place.country);
    string(out, "location");
    map(out, 3);
    string(out, "latitude");
    double(out, place.lat);
    string(out, "longitude");
    double(out, place.lon);
    string(out, "time_zone");
    string(out, place.time_zone);
}

fn encode_metadata(out: &mut Vec<u8>, node_count: u32) {
    map(out, 9);
    string(out, "node_count");
    uint(out, 6, &node_count.to_be_bytes());
    string(out, "record_size");
    uint(out, 5, &24u16.to_be_bytes());
    string(out, "ip_version");
    uint(out, 5, &4u16.to_be_bytes());
    string(out, "database_type");
    string(out, "GeoIP2-City");
    string(out, "languages");
    control(out, 11, 1);
    string(out, "en");
    string(out, "binary_format_major_version");
    uint(out, 5, &2u16.to_be_bytes());
    string(out, "binary_format_minor_version");
    uint(out, 5, &0u16.to_be_bytes());
    string(out, "build_epoch");
    uint(out, 9, &1_700_000_000u64.to_be_bytes());
    string(out, "description");
    map(out, 1);
    string(out, "en");
    string(out, "presence-hub test city database");
}

/// Paris for 192.0.2.0/24, New York for 198.51.100.0/24, Lyon for
/// 203.0.113.0/24.
pub fn test_places() -> Vec<Place> {
    vec![
        Place {
            network: "192.0.2.0/24",
            country: "FR",
            city: "Paris",
            time_zone: "Europe/Paris",
            lat: 48.8566,
            lon: 2.3522,
        },
        Place {
            network: "198.51.100.0/24",
            country: "US",
            city: "New York",
            time_zone: "America/New_York",
            lat: 40.7128,
            lon: -74.006,
        },
        Place {
            network: "203.0.113.0/24",
            country: "FR",
            city: "Lyon",
            time_zone: "Europe/Paris",
            lat: 45.764,
            lon: 4.8357,
        },
    ]
}

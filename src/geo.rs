//! Where an address is: its country, from an IP-to-country database in MaxMind's format (the
//! NRO-derived `geo-whois-asn-country` database is built into the binary; `--geoip-db` puts a
//! MaxMind GeoLite2/GeoIP2 file in its place), or "internal" for private and reserved ranges.
//! Also the rough extent of each country, for judging whether travel between two was possible.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use serde::Deserialize;

/// The database built in (CC BY 4.0, NRO; see `assets/README.md`).
const BUILT_IN: &[u8] = include_bytes!("../assets/geo-whois-asn-country.mmdb");
/// Bounding boxes of countries (MIT; see the file's header).
const COUNTRY_BOXES: &str = include_str!("../assets/country-boxes.tsv");

/// Where an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Location {
    /// A private, loopback, link-local, shared or otherwise reserved address.
    Internal,
    /// A country, by its ISO 3166-1 alpha-2 code.
    Country([u8; 2]),
    /// A public address the database does not place.
    Unknown,
}

impl Location {
    /// `internal`, the country code, or `unknown`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        match self {
            Self::Internal => "internal",
            Self::Country(code) => std::str::from_utf8(code).unwrap_or("unknown"),
            Self::Unknown => "unknown",
        }
    }

    #[must_use]
    pub fn country(&self) -> Option<[u8; 2]> {
        match self {
            Self::Country(code) => Some(*code),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    #[error("cannot read the GeoIP database {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a MaxMind database: {reason}")]
    Format { path: String, reason: String },
}

/// An IP-to-country database and the countries' extents.
pub struct Geo {
    reader: maxminddb::Reader<Cow<'static, [u8]>>,
    /// Where the database came from, for `/ready` and the logs.
    pub source: String,
    boxes: HashMap<[u8; 2], Box>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geo")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The two shapes of record in use: ip-location-db's `{country_code}` and MaxMind's
/// `{country: {iso_code}}` (with `registered_country` when `country` is missing).
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

impl Geo {
    /// The database built into the binary.
    pub fn built_in() -> Result<Self, GeoError> {
        // Read in place from the binary: no copy on the heap.
        Self::from_bytes(
            Cow::Borrowed(BUILT_IN),
            "built-in geo-whois-asn-country (NRO, CC BY 4.0)",
        )
    }

    /// A database file (`--geoip-db`).
    pub fn open(path: &Path) -> Result<Self, GeoError> {
        let bytes = std::fs::read(path).map_err(|source| GeoError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(Cow::Owned(bytes), &path.display().to_string())
    }

    fn from_bytes(bytes: Cow<'static, [u8]>, source: &str) -> Result<Self, GeoError> {
        let reader = maxminddb::Reader::from_source(bytes).map_err(|e| GeoError::Format {
            path: source.to_string(),
            reason: e.to_string(),
        })?;
        let geo = Self {
            reader,
            source: source.to_string(),
            boxes: parse_boxes(COUNTRY_BOXES),
        };
        // A file that places no well-known public address is not a country database.
        if geo.locate("8.8.8.8".parse().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)))
            == Location::Unknown
            && geo.locate(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1))) == Location::Unknown
        {
            return Err(GeoError::Format {
                path: source.to_string(),
                reason: "it has no country for well-known public addresses".into(),
            });
        }
        Ok(geo)
    }

    /// Where `ip` is.
    #[must_use]
    pub fn locate(&self, ip: IpAddr) -> Location {
        if is_internal(ip) {
            return Location::Internal;
        }
        let Ok(found) = self.reader.lookup(ip) else {
            return Location::Unknown;
        };
        let Ok(Some(record)) = found.decode::<Record>() else {
            return Location::Unknown;
        };
        let code = record
            .country_code
            .or_else(|| record.country.and_then(|c| c.iso_code))
            .or_else(|| record.registered_country.and_then(|c| c.iso_code));
        match code.map(str::as_bytes) {
            Some(&[a, b]) if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Location::Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
            }
            _ => Location::Unknown,
        }
    }

    /// The shortest distance in km between any point of one country and any point of the
    /// other (by their bounding boxes: a lower bound of any real journey), or `None` when
    /// either country's extent is not known.
    #[must_use]
    pub fn min_distance_km(&self, a: [u8; 2], b: [u8; 2]) -> Option<f64> {
        if a == b {
            return Some(0.0);
        }
        Some(self.boxes.get(&a)?.distance_km(self.boxes.get(&b)?))
    }
}

/// Whether `ip` is private or reserved: never placed in a country, never "travelling".
#[must_use]
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::LOCALHOST
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240 // reserved
}

/// A country's extent, in degrees; `west > east` when it spans the antimeridian.
#[derive(Debug, Clone, Copy)]
struct Box {
    north: f64,
    south: f64,
    west: f64,
    east: f64,
}

const EARTH_RADIUS_KM: f64 = 6371.0;

impl Box {
    fn contains_longitude(&self, lon: f64) -> bool {
        if self.west <= self.east {
            (self.west..=self.east).contains(&lon)
        } else {
            lon >= self.west || lon <= self.east
        }
    }

    /// Shortest distance between two boxes (0 when they overlap).
    fn distance_km(&self, other: &Box) -> f64 {
        let lat_gap = if self.south > other.north {
            self.south - other.north
        } else if other.south > self.north {
            other.south - self.north
        } else {
            0.0
        };
        let overlap_lon = self.contains_longitude(other.west)
            || self.contains_longitude(other.east)
            || other.contains_longitude(self.west)
            || other.contains_longitude(self.east);
        let lon_gap = if overlap_lon {
            0.0
        } else {
            [
                gap(self.east, other.west),
                gap(other.east, self.west),
                gap(self.west, other.east),
                gap(other.west, self.east),
            ]
            .into_iter()
            .fold(f64::MAX, f64::min)
        };
        if lon_gap == 0.0 {
            return lat_gap.to_radians() * EARTH_RADIUS_KM;
        }
        // The nearest points: the shortest of the journeys between latitudes sampled across
        // both boxes at the smallest longitude gap, less a margin for the sampling.
        let mut best = f64::MAX;
        for i in 0..=8 {
            let lat1 = self.south + (self.north - self.south) * f64::from(i) / 8.0;
            for j in 0..=8 {
                let lat2 = other.south + (other.north - other.south) * f64::from(j) / 8.0;
                best = best.min(haversine_km((0.0, lat1), (lon_gap, lat2)));
            }
        }
        best * 0.9
    }
}

/// Eastward gap in degrees from longitude `from` to `to`.
fn gap(from: f64, to: f64) -> f64 {
    (to - from).rem_euclid(360.0)
}

fn haversine_km((lon1, lat1): (f64, f64), (lon2, lat2): (f64, f64)) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

fn parse_boxes(text: &str) -> HashMap<[u8; 2], Box> {
    let mut boxes = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut cells = line.split('\t');
        let code = cells.next().map(str::as_bytes);
        let numbers: Vec<f64> = cells.filter_map(|c| c.parse().ok()).collect();
        if let (Some(&[a, b]), [north, south, west, east]) = (code, numbers.as_slice()) {
            boxes.insert(
                [a, b],
                Box {
                    north: *north,
                    south: *south,
                    west: *west,
                    east: *east,
                },
            );
        }
    }
    boxes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_built_in_database_places_public_addresses_and_calls_private_ones_internal() {
        let geo = Geo::built_in().unwrap();
        for internal in [
            "10.1.2.3",
            "192.168.0.1",
            "172.16.5.5",
            "127.0.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "203.0.113.5",
            "::1",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(geo.locate(ip(internal)), Location::Internal, "{internal}");
        }
        // Google's and Cloudflare's resolvers are registered in the United States and
        // Australia (APNIC research prefix); a German university network.
        assert_eq!(geo.locate(ip("8.8.8.8")).as_str(), "US");
        assert!(matches!(
            geo.locate(ip("2001:4860:4860::8888")),
            Location::Country(_)
        ));
        assert!(matches!(geo.locate(ip("1.1.1.1")), Location::Country(_)));
    }

    #[test]
    fn distances_between_countries_are_lower_bounds() {
        let geo = Geo::built_in().unwrap();
        // Neighbours: no distance at all.
        assert_eq!(geo.min_distance_km(*b"FR", *b"DE"), Some(0.0));
        // Germany to Australia is well over 10,000 km; Germany to the United States over 5,000.
        let far = geo.min_distance_km(*b"DE", *b"AU").unwrap();
        assert!(far > 9_000.0, "{far}");
        let atlantic = geo.min_distance_km(*b"DE", *b"US").unwrap();
        assert!((4_000.0..8_000.0).contains(&atlantic), "{atlantic}");
        // New Zealand spans the antimeridian; it is not next to Europe for that.
        let nz = geo.min_distance_km(*b"NZ", *b"FR").unwrap();
        assert!(nz > 10_000.0, "{nz}");
        assert_eq!(geo.min_distance_km(*b"DE", *b"XX"), None);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        let err = Geo::open(&path).unwrap_err().to_string();
        assert!(err.contains("not a MaxMind database"), "{err}");
        let err = Geo::open(&dir.path().join("missing.mmdb"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read"), "{err}");
    }
}

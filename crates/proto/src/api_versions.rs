//! The table of apis and versions a broker implements.
//!
//! The broker fills a [`SupportedApis`] with exactly what it implements and tests; ApiVersions
//! answers with this table, and every request is checked against it before its body is decoded.
//! Construction refuses ranges the `kafka-protocol` codec cannot decode, so "supported" always
//! implies "decodable".

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiKey;

use crate::error::ProtoError;

/// One api and the inclusive range of versions supported for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersionRange {
    /// The api.
    pub api_key: ApiKey,
    /// Lowest supported version (inclusive).
    pub min_version: i16,
    /// Highest supported version (inclusive).
    pub max_version: i16,
}

impl ApiVersionRange {
    /// A range for `api_key` from `min_version` to `max_version` inclusive.
    pub const fn new(api_key: ApiKey, min_version: i16, max_version: i16) -> Self {
        ApiVersionRange { api_key, min_version, max_version }
    }

    /// Whether `version` is inside the range.
    pub fn contains(&self, version: i16) -> bool {
        (self.min_version..=self.max_version).contains(&version)
    }
}

/// The supported-api table: at most one range per api, sorted by api key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupportedApis {
    ranges: Vec<ApiVersionRange>,
}

impl SupportedApis {
    /// Builds the table, refusing an empty range, a duplicate api, or a version the codec does
    /// not know (outside `ApiKey::valid_versions()`).
    pub fn new(ranges: impl IntoIterator<Item = ApiVersionRange>) -> Result<Self, ProtoError> {
        let mut ranges: Vec<ApiVersionRange> = ranges.into_iter().collect();
        ranges.sort_by_key(|range| range.api_key as i16);
        for range in &ranges {
            let codec = range.api_key.valid_versions();
            if range.min_version > range.max_version || range.min_version < codec.min || range.max_version > codec.max {
                return Err(ProtoError::InvalidApiTable {
                    reason: format!(
                        "{:?} {}..={} is empty or outside the codec's {}..={}",
                        range.api_key, range.min_version, range.max_version, codec.min, codec.max
                    ),
                });
            }
        }
        if let Some(pair) = ranges.windows(2).find(|pair| pair[0].api_key == pair[1].api_key) {
            return Err(ProtoError::InvalidApiTable { reason: format!("{:?} listed twice", pair[0].api_key) });
        }
        Ok(SupportedApis { ranges })
    }

    /// Whether `api_key` (raw, as on the wire) at `version` is supported.
    pub fn is_supported(&self, api_key: i16, version: i16) -> bool {
        self.ranges.iter().any(|range| range.api_key as i16 == api_key && range.contains(version))
    }

    /// The range supported for `api_key`, if any.
    pub fn range(&self, api_key: ApiKey) -> Option<ApiVersionRange> {
        self.ranges.iter().copied().find(|range| range.api_key == api_key)
    }

    /// All ranges, sorted by api key.
    pub fn ranges(&self) -> &[ApiVersionRange] {
        &self.ranges
    }

    /// The table as ApiVersions response entries.
    pub fn to_api_versions(&self) -> Vec<ApiVersion> {
        self.ranges
            .iter()
            .map(|range| {
                ApiVersion::default()
                    .with_api_key(range.api_key as i16)
                    .with_min_version(range.min_version)
                    .with_max_version(range.max_version)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> SupportedApis {
        SupportedApis::new([
            ApiVersionRange::new(ApiKey::Metadata, 1, 12),
            ApiVersionRange::new(ApiKey::ApiVersions, 0, 3),
        ])
        .unwrap()
    }

    #[test]
    fn is_supported_checks_key_and_both_bounds() {
        let table = table();
        assert!(table.is_supported(ApiKey::ApiVersions as i16, 0));
        assert!(table.is_supported(ApiKey::ApiVersions as i16, 3));
        assert!(!table.is_supported(ApiKey::ApiVersions as i16, 4));
        assert!(!table.is_supported(ApiKey::ApiVersions as i16, -1));
        assert!(!table.is_supported(ApiKey::Metadata as i16, 0));
        assert!(table.is_supported(ApiKey::Metadata as i16, 12));
        assert!(!table.is_supported(ApiKey::Produce as i16, 9));
        assert!(!table.is_supported(i16::MAX, 0));
    }

    #[test]
    fn ranges_are_sorted_by_api_key_and_exported() {
        let table = table();
        let keys: Vec<i16> = table.ranges().iter().map(|r| r.api_key as i16).collect();
        assert_eq!(keys, vec![3, 18]);
        let exported = table.to_api_versions();
        assert_eq!(exported[1].api_key, 18);
        assert_eq!(exported[1].max_version, 3);
        assert_eq!(table.range(ApiKey::Metadata), Some(ApiVersionRange::new(ApiKey::Metadata, 1, 12)));
    }

    #[test]
    fn refuses_versions_the_codec_cannot_decode() {
        let codec_max = ApiKey::ApiVersions.valid_versions().max;
        let error = SupportedApis::new([ApiVersionRange::new(ApiKey::ApiVersions, 0, codec_max + 1)]).unwrap_err();
        assert!(matches!(error, ProtoError::InvalidApiTable { .. }));
        let error = SupportedApis::new([ApiVersionRange::new(ApiKey::Metadata, 5, 4)]).unwrap_err();
        assert!(matches!(error, ProtoError::InvalidApiTable { .. }));
    }

    #[test]
    fn refuses_duplicate_apis() {
        let error = SupportedApis::new([
            ApiVersionRange::new(ApiKey::Metadata, 1, 2),
            ApiVersionRange::new(ApiKey::Metadata, 4, 5),
        ])
        .unwrap_err();
        assert!(matches!(error, ProtoError::InvalidApiTable { .. }));
    }
}

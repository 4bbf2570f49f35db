//! ApiVersions: the table of what this broker implements, and the answer to the request.
//!
//! Kafka's behaviour, which clients rely on (KIP-35, KIP-511):
//! - a supported version gets the whole table, error NONE;
//! - an unsupported version (usually newer than ours) gets a **v0** response (response header
//!   v0, as for every ApiVersions response) with UNSUPPORTED_VERSION and, in `api_keys`, only
//!   the ApiVersions range, so the client can retry with a version we speak; the connection
//!   stays open;
//! - v3+ carries the client's software name and version; if they do not match Kafka's pattern
//!   `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?` the answer is INVALID_REQUEST.

use sluice_proto::kafka_protocol::error::ResponseError;
use sluice_proto::kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use sluice_proto::{ApiVersionRange, SupportedApis};

/// Version used for the UNSUPPORTED_VERSION answer: the one every client can read.
pub const UNSUPPORTED_VERSION_RESPONSE_VERSION: i16 = 0;

/// Exactly the apis and versions this broker implements and tests. A new handler in
/// `dispatch` adds its range here in the same change.
///
/// The ranges: every version here is exercised at both ends by the integration test
/// `every_supported_api_answers_at_both_ends_of_its_range`, and the versions real clients
/// negotiate by the compatibility suite (`scripts/compat.sh`). Upper bounds stop before
/// versions whose semantics are not implemented: Fetch v13+ and Produce v13 address topics by
/// id only, ListOffsets v10 adds a wait for remote storage, Metadata v13 adds top-level errors,
/// InitProducerId v5 and DescribeCluster v2 add fields nothing here fills.
pub fn supported_apis() -> SupportedApis {
    SupportedApis::new([
        ApiVersionRange::new(ApiKey::Produce, 3, 9),
        ApiVersionRange::new(ApiKey::Fetch, 4, 12),
        ApiVersionRange::new(ApiKey::ListOffsets, 1, 9),
        ApiVersionRange::new(ApiKey::Metadata, 0, 12),
        ApiVersionRange::new(ApiKey::ApiVersions, 0, 4),
        ApiVersionRange::new(ApiKey::CreateTopics, 2, 7),
        ApiVersionRange::new(ApiKey::DeleteTopics, 1, 6),
        ApiVersionRange::new(ApiKey::DeleteRecords, 0, 2),
        ApiVersionRange::new(ApiKey::InitProducerId, 0, 4),
        ApiVersionRange::new(ApiKey::OffsetForLeaderEpoch, 2, 4),
        ApiVersionRange::new(ApiKey::DescribeConfigs, 1, 4),
        ApiVersionRange::new(ApiKey::AlterConfigs, 0, 2),
        ApiVersionRange::new(ApiKey::CreatePartitions, 0, 3),
        ApiVersionRange::new(ApiKey::IncrementalAlterConfigs, 0, 1),
        ApiVersionRange::new(ApiKey::DescribeClientQuotas, 0, 1),
        ApiVersionRange::new(ApiKey::AlterClientQuotas, 0, 1),
        ApiVersionRange::new(ApiKey::DescribeCluster, 0, 1),
        ApiVersionRange::new(ApiKey::ElectLeaders, 0, 2),
        ApiVersionRange::new(ApiKey::AlterPartitionReassignments, 0, 1),
        ApiVersionRange::new(ApiKey::ListPartitionReassignments, 0, 0),
        ApiVersionRange::new(ApiKey::DescribeLogDirs, 1, 4),
        ApiVersionRange::new(ApiKey::DescribeProducers, 0, 0),
        ApiVersionRange::new(ApiKey::DescribeQuorum, 0, 2),
        ApiVersionRange::new(ApiKey::AddRaftVoter, 0, 0),
        ApiVersionRange::new(ApiKey::RemoveRaftVoter, 0, 0),
        ApiVersionRange::new(ApiKey::FindCoordinator, 0, 4),
        ApiVersionRange::new(ApiKey::JoinGroup, 0, 9),
        ApiVersionRange::new(ApiKey::SyncGroup, 0, 5),
        ApiVersionRange::new(ApiKey::Heartbeat, 0, 4),
        ApiVersionRange::new(ApiKey::LeaveGroup, 0, 5),
        ApiVersionRange::new(ApiKey::OffsetCommit, 2, 8),
        ApiVersionRange::new(ApiKey::OffsetFetch, 1, 8),
        ApiVersionRange::new(ApiKey::OffsetDelete, 0, 0),
        ApiVersionRange::new(ApiKey::ListGroups, 0, 5),
        ApiVersionRange::new(ApiKey::DescribeGroups, 0, 6),
        ApiVersionRange::new(ApiKey::DeleteGroups, 0, 2),
        // v0 of the handshake is followed by raw SASL tokens outside Kafka framing, which
        // Sluice does not speak: a v0 handshake is answered UNSUPPORTED_VERSION. It is listed
        // because librdkafka enables SASL only if v0 is (then uses v1 and SaslAuthenticate, as
        // every client since Kafka 1.0 does).
        ApiVersionRange::new(ApiKey::SaslHandshake, 0, 1),
        ApiVersionRange::new(ApiKey::CreateAcls, 1, 3),
        ApiVersionRange::new(ApiKey::DescribeAcls, 1, 3),
        ApiVersionRange::new(ApiKey::DeleteAcls, 1, 3),
        ApiVersionRange::new(ApiKey::SaslAuthenticate, 0, 2),
        ApiVersionRange::new(ApiKey::DescribeUserScramCredentials, 0, 0),
        ApiVersionRange::new(ApiKey::AlterUserScramCredentials, 0, 0),
    ])
    .expect("the broker's static api table is within the codec's versions")
}

/// The answer to a decoded ApiVersions request of a supported version.
pub fn handle(supported: &SupportedApis, version: i16, request: &ApiVersionsRequest) -> ApiVersionsResponse {
    if version >= 3
        && !(is_valid_software_field(&request.client_software_name)
            && is_valid_software_field(&request.client_software_version))
    {
        return ApiVersionsResponse::default().with_error_code(ResponseError::InvalidRequest.code());
    }
    ApiVersionsResponse::default().with_error_code(0).with_api_keys(supported.to_api_versions())
}

/// The v0 answer to an ApiVersions request of a version we do not support.
pub fn unsupported_version(supported: &SupportedApis) -> ApiVersionsResponse {
    let api_keys =
        supported.to_api_versions().into_iter().filter(|entry| entry.api_key == ApiKey::ApiVersions as i16).collect();
    ApiVersionsResponse::default().with_error_code(ResponseError::UnsupportedVersion.code()).with_api_keys(api_keys)
}

/// Kafka's `SOFTWARE_NAME_VERSION_PATTERN`: alphanumerics, with `-` and `.` allowed inside.
fn is_valid_software_field(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner_ok = |byte: &u8| byte.is_ascii_alphanumeric() || *byte == b'-' || *byte == b'.';
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() && bytes.iter().all(inner_ok)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_proto::kafka_protocol::protocol::StrBytes;

    fn request(name: &'static str, version: &'static str) -> ApiVersionsRequest {
        ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(name))
            .with_client_software_version(StrBytes::from_static_str(version))
    }

    #[test]
    fn software_fields_follow_kafkas_pattern() {
        for valid in ["librdkafka", "2.0.2", "confluent-kafka-python", "a", "1.0-rc.1"] {
            assert!(is_valid_software_field(valid), "{valid}");
        }
        for invalid in ["", "-x", "x-", "x.", "with space", "ünïcode", "a_b"] {
            assert!(!is_valid_software_field(invalid), "{invalid}");
        }
    }

    #[test]
    fn supported_versions_get_the_whole_table() {
        let supported = supported_apis();
        let response = handle(&supported, 3, &request("librdkafka", "2.0.2"));
        assert_eq!(response.error_code, 0);
        assert_eq!(response.api_keys, supported.to_api_versions());
        // v0-v2 carry no software fields; empty ones are fine there.
        assert_eq!(handle(&supported, 0, &ApiVersionsRequest::default()).error_code, 0);
    }

    #[test]
    fn invalid_software_fields_get_invalid_request_from_v3() {
        let response = handle(&supported_apis(), 3, &request("bad name", "1"));
        assert_eq!(response.error_code, ResponseError::InvalidRequest.code());
        assert!(response.api_keys.is_empty());
    }

    #[test]
    fn unsupported_version_lists_only_api_versions() {
        let response = unsupported_version(&supported_apis());
        assert_eq!(response.error_code, 35);
        assert_eq!(response.api_keys.len(), 1);
        assert_eq!(response.api_keys[0].api_key, 18);
        assert_eq!(response.api_keys[0].max_version, 4);
    }
}

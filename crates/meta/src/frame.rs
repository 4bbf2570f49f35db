//! The on-disk framing shared by every file of the Raft store: a file header, then records
//! framed with a length and a CRC-32.
//!
//! ```text
//! file header (16 bytes):  magic [8] | version u32 LE | crc32(magic ‖ version) u32 LE
//! record:                  len u32 LE | crc32(payload) u32 LE | payload [len]
//! ```
//!
//! The CRC is `crc32fast` (CRC-32/ISO-HDLC, the zlib polynomial). A record's length is checked
//! against the caller's maximum before anything is allocated, so a garbage length from a torn
//! or corrupt file costs nothing. Payloads are postcard-encoded serde values.

use crate::error::StoreError;

/// Bytes of a file header.
pub const FILE_HEADER_BYTES: usize = 16;

/// Bytes of a record header (`len` + `crc`).
pub const RECORD_HEADER_BYTES: usize = 8;

/// Format version written into every file header. Bump it on any layout change; a file with an
/// unknown version is refused, never guessed at.
///
/// Version 2: `TopicConfig` (inside commands and snapshots) gained the four
/// `message.timestamp.*` fields; postcard has no optional trailing fields, so version-1 payloads
/// do not decode as version 2.
///
/// Version 3: `TopicConfig` gained `unclean.leader.election.enable` and
/// `replica.lag.time.max.ms`; `Command` gained `ElectLeaderUnclean`.
///
/// Version 4: `Command` gained `StartReassignment` and `CancelReassignment` (appended, so every
/// version-3 entry decodes unchanged) and `MetadataView` gained `reassignments` (a trailing
/// field, so a version-3 snapshot is decoded with the old layout and converted: see
/// `state_machine`). Version-3 files stay readable: [`FORMAT_VERSION_OLDEST_READABLE`].
///
/// Version 5: `Command` gained `CreateTopicAssigned` and `CreatePartitionsAssigned` (appended: version-3 and -4 entries
/// decode unchanged; the snapshot layout is version 4's).
///
/// Version 6: `BrokerRecord` gained `listeners` and `MetadataView` gained `security` (SCRAM
/// credentials, ACLs, client quotas): a version-4 or -5 snapshot is decoded with the old layout
/// and converted. `Command` gained `RegisterBrokerListeners`, the SCRAM, ACL and quota
/// commands (appended: older entries decode unchanged).
///
/// Version 7: `MetadataView` gained `broker_configs` (dynamic broker configs, a trailing field:
/// a version-6 snapshot is decoded with the old layout and converted) and `Command` gained
/// `AlterBrokerConfigs` (appended).
pub const FORMAT_VERSION: u32 = 7;

/// Oldest format version this build reads (and converts where the layout changed). Files are
/// always written at [`FORMAT_VERSION`].
pub const FORMAT_VERSION_OLDEST_READABLE: u32 = 3;

/// Magic of a Raft log segment file (`<first index, 20 digits>.seg`).
pub const LOG_SEGMENT_MAGIC: [u8; 8] = *b"SLUICElg";
/// Magic of the Raft state file (vote, committed, purged).
pub const RAFT_STATE_MAGIC: [u8; 8] = *b"SLUICEvt";
/// Magic of the snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"SLUICEsn";

/// Encodes a file header.
pub fn file_header(magic: [u8; 8]) -> [u8; FILE_HEADER_BYTES] {
    let mut header = [0u8; FILE_HEADER_BYTES];
    header[..8].copy_from_slice(&magic);
    header[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    let crc = crc32fast::hash(&header[..12]);
    header[12..16].copy_from_slice(&crc.to_le_bytes());
    header
}

/// Checks a file header and returns its format version (between
/// [`FORMAT_VERSION_OLDEST_READABLE`] and [`FORMAT_VERSION`]); `path` names the file in the error.
pub fn check_file_header(bytes: &[u8], magic: [u8; 8], path: &std::path::Path) -> Result<u32, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { path: path.to_path_buf(), reason };
    if bytes.len() < FILE_HEADER_BYTES {
        return Err(corrupt(format!("file of {} bytes has no complete header", bytes.len())));
    }
    if bytes[..8] != magic {
        return Err(corrupt(format!("bad magic {:?}", &bytes[..8])));
    }
    let crc = u32::from_le_bytes(bytes[12..16].try_into().expect("4 bytes"));
    if crc != crc32fast::hash(&bytes[..12]) {
        return Err(corrupt("header checksum mismatch".to_string()));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if !(FORMAT_VERSION_OLDEST_READABLE..=FORMAT_VERSION).contains(&version) {
        return Err(corrupt(format!(
            "unsupported format version {version} (this build reads {FORMAT_VERSION_OLDEST_READABLE}..={FORMAT_VERSION}): written by another Sluice version"
        )));
    }
    Ok(version)
}

/// Appends one framed record to `out`.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("payload length checked by the caller against a u32 limit");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

/// Result of reading one record at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordRead<'a> {
    /// A whole record with a matching checksum; the next record starts at `next_offset`.
    Valid {
        /// The payload.
        payload: &'a [u8],
        /// Offset just past this record.
        next_offset: usize,
    },
    /// The buffer ends exactly here: no more records.
    End,
    /// The bytes at this offset are not a valid record: torn (incomplete), oversized length, or
    /// checksum mismatch. The reason says which.
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

/// Reads the record at `offset` of `bytes`, refusing payloads longer than `payload_bytes_max`.
pub fn read_record(bytes: &[u8], offset: usize, payload_bytes_max: usize) -> RecordRead<'_> {
    let rest = &bytes[offset.min(bytes.len())..];
    if rest.is_empty() {
        return RecordRead::End;
    }
    if rest.len() < RECORD_HEADER_BYTES {
        return RecordRead::Invalid { reason: format!("torn record header ({} bytes)", rest.len()) };
    }
    let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if len > payload_bytes_max {
        return RecordRead::Invalid { reason: format!("record length {len} exceeds {payload_bytes_max}") };
    }
    let Some(payload) = rest.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len) else {
        return RecordRead::Invalid { reason: format!("torn record: {len} bytes announced, fewer present") };
    };
    if crc32fast::hash(payload) != crc {
        return RecordRead::Invalid { reason: "record checksum mismatch".to_string() };
    }
    RecordRead::Valid { payload, next_offset: offset + RECORD_HEADER_BYTES + len }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let mut bytes = Vec::new();
        encode_record(b"hello", &mut bytes);
        encode_record(b"", &mut bytes);
        let RecordRead::Valid { payload, next_offset } = read_record(&bytes, 0, 64) else { panic!() };
        assert_eq!(payload, b"hello");
        let RecordRead::Valid { payload, next_offset } = read_record(&bytes, next_offset, 64) else { panic!() };
        assert_eq!(payload, b"");
        assert_eq!(read_record(&bytes, next_offset, 64), RecordRead::End);

        // A flipped payload bit, a cut record and an absurd length are all refused.
        let mut flipped = bytes.clone();
        flipped[9] ^= 0x01;
        assert!(matches!(read_record(&flipped, 0, 64), RecordRead::Invalid { .. }));
        assert!(matches!(read_record(&bytes[..10], 0, 64), RecordRead::Invalid { .. }));
        assert!(matches!(read_record(&bytes[..3], 0, 64), RecordRead::Invalid { .. }));
        assert!(matches!(read_record(&bytes, 0, 4), RecordRead::Invalid { .. }));
    }

    #[test]
    fn headers_check_magic_version_and_checksum() {
        let path = std::path::Path::new("x");
        let header = file_header(LOG_SEGMENT_MAGIC);
        check_file_header(&header, LOG_SEGMENT_MAGIC, path).unwrap();
        assert!(check_file_header(&header, SNAPSHOT_MAGIC, path).is_err());
        let mut damaged = header;
        damaged[9] ^= 1;
        assert!(check_file_header(&damaged, LOG_SEGMENT_MAGIC, path).is_err());
        assert!(check_file_header(&header[..10], LOG_SEGMENT_MAGIC, path).is_err());
    }
}

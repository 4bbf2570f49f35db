//! Record batches against an independent implementation: kafka-python's `default_records`.
//!
//! Goal: batches built here are what another client reads (CRC valid, every codec, keys, values,
//! nulls, headers, timestamps, producer fields), and batches another client builds decode here
//! to the same records. Method: exchange hex-encoded batches with the virtualenv's Python (made by
//! `scripts/install-test-deps.sh`, which installs kafka-python's optional codecs).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use bytes::Bytes;
use sluice_proto::records::{
    build_record_batch, decode_record_batches, BatchOptions, Compression, ProducedRecord, ProducerIdentity,
};

const CODECS: [(Compression, u8); 5] = [
    (Compression::None, 0),
    (Compression::Gzip, 1),
    (Compression::Snappy, 2),
    (Compression::Lz4, 3),
    (Compression::Zstd, 4),
];

/// Reads batches (one hex line each) and describes them, or builds batches from record lines.
const SCRIPT: &str = r#"
import sys
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

def hex_or_dash(data):
    return "-" if data is None else bytes(data).hex()

def from_hex_or_dash(text):
    return None if text == "-" else bytes.fromhex(text)

mode = sys.argv[1]
lines = sys.stdin.read().splitlines()
if mode == "describe":
    for line in lines:
        batch = DefaultRecordBatch(bytes.fromhex(line))
        if not batch.validate_crc():
            raise SystemExit("bad crc")
        records = list(batch)
        print("batch", batch.compression_type, batch.producer_id, batch.producer_epoch,
              batch.base_sequence, len(records))
        for record in records:
            headers = " ".join(f"{key}={hex_or_dash(value)}" for key, value in record.headers)
            print("record", record.offset, record.timestamp, hex_or_dash(record.key),
                  hex_or_dash(record.value), headers)
else:
    codec = int(mode)
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=0,
        producer_id=4711, producer_epoch=3, base_sequence=100, batch_size=1 << 20)
    for offset, line in enumerate(lines):
        timestamp, key, value, *headers = line.split(" ")
        headers = [(h.split("=")[0], from_hex_or_dash(h.split("=")[1])) for h in headers]
        builder.append(offset, int(timestamp), from_hex_or_dash(key), from_hex_or_dash(value), headers)
    print(bytes(builder.build()).hex())
"#;

fn records() -> Vec<ProducedRecord> {
    vec![
        ProducedRecord {
            key: Some(Bytes::from_static(b"order-17")),
            value: Some(Bytes::from(vec![b'z'; 3000])),
            headers: vec![("trace".into(), Some(Bytes::from_static(b"t-1"))), ("none".into(), None)],
            timestamp_ms: 1_700_000_000_000,
        },
        ProducedRecord { key: None, value: None, headers: vec![], timestamp_ms: 1_700_000_000_500 },
        ProducedRecord {
            key: Some(Bytes::new()),
            value: Some(Bytes::from_static(&[0, 1, 2, 0xff])),
            headers: vec![("empty".into(), Some(Bytes::new()))],
            timestamp_ms: 1_699_999_999_999,
        },
    ]
}

fn python(mode: &str, input: &str) -> String {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    assert!(python.is_file(), "{} not found: run scripts/install-test-deps.sh", python.display());
    let mut child = Command::new(python)
        .args(["-c", SCRIPT, mode])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write input");
    let output = child.wait_with_output().expect("python finishes");
    assert!(output.status.success(), "python {mode} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hex_or_dash(bytes: &Option<Bytes>) -> String {
    bytes.as_ref().map_or_else(|| "-".to_owned(), |bytes| hex(bytes))
}

fn from_hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex")).collect()
}

/// The line kafka-python prints for `record` at `offset`.
fn expected_line(offset: usize, record: &ProducedRecord) -> String {
    let headers: Vec<String> =
        record.headers.iter().map(|(key, value)| format!("{key}={}", hex_or_dash(value))).collect();
    format!(
        "record {offset} {} {} {} {}",
        record.timestamp_ms,
        hex_or_dash(&record.key),
        hex_or_dash(&record.value),
        headers.join(" ")
    )
}

#[test]
fn kafka_python_reads_the_batches_we_build() {
    let records = records();
    let options = |compression| BatchOptions {
        compression,
        producer: ProducerIdentity { producer_id: 4711, producer_epoch: 3, base_sequence: 100 },
        ..BatchOptions::default()
    };
    let input: String = CODECS
        .iter()
        .map(|(compression, _)| hex(&build_record_batch(&records, &options(*compression)).unwrap()) + "\n")
        .collect();
    let described = python("describe", &input);
    let mut lines = described.lines();
    for (_, codec_id) in CODECS {
        assert_eq!(lines.next(), Some(format!("batch {codec_id} 4711 3 100 3").as_str()));
        for (offset, record) in records.iter().enumerate() {
            assert_eq!(lines.next().map(str::trim_end), Some(expected_line(offset, record).trim_end()));
        }
    }
    assert_eq!(lines.next(), None);
}

#[test]
fn we_read_the_batches_kafka_python_builds() {
    let records = records();
    let input: String = records
        .iter()
        .map(|record| {
            let headers: Vec<String> =
                record.headers.iter().map(|(key, value)| format!("{key}={}", hex_or_dash(value))).collect();
            let mut line =
                format!("{} {} {}", record.timestamp_ms, hex_or_dash(&record.key), hex_or_dash(&record.value));
            for header in headers {
                line.push(' ');
                line.push_str(&header);
            }
            line + "\n"
        })
        .collect();
    for (compression, codec_id) in CODECS {
        let batch = Bytes::from(from_hex(python(&codec_id.to_string(), &input).trim()));
        let decoded = decode_record_batches(&batch).unwrap();
        assert_eq!(decoded.batches.len(), 1, "{compression:?}");
        let batch = &decoded.batches[0];
        assert_eq!(batch.header.compression(), Some(compression));
        assert_eq!((batch.header.producer_id, batch.header.producer_epoch, batch.header.base_sequence), (4711, 3, 100));
        for (offset, (sent, received)) in records.iter().zip(&batch.records).enumerate() {
            assert_eq!(received.offset, offset as i64, "{compression:?}");
            assert_eq!(received.timestamp, sent.timestamp_ms, "{compression:?}");
            assert_eq!(received.key, sent.key, "{compression:?}");
            assert_eq!(received.value, sent.value, "{compression:?}");
            let headers: Vec<(String, Option<Bytes>)> =
                received.headers.iter().map(|(key, value)| (key.to_string(), value.clone())).collect();
            assert_eq!(headers, sent.headers, "{compression:?}");
        }
    }
}

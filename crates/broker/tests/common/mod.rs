//! A real broker for integration tests: `Node::start` on ephemeral ports of 127.0.0.1 with a
//! temporary data directory, served on a task, stopped when dropped (or cleanly with `stop`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_broker::broker::Broker;
use sluice_broker::{BrokerConfig, Node, NodeConfig};
use sluice_proto::kafka_protocol::messages::{ApiKey, RequestHeader};
use sluice_proto::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use sluice_proto::{decode_response, encode_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod groups;
pub mod process;
pub mod wire;

/// Time any single network step of a test may take. Longer than the longest a client quota
/// mutes a connection (`sluice_broker::quota::QUOTA_THROTTLE_MS_MAX`, 11 s), which the quota
/// tests wait out, with room for a loaded machine: there one slow request can earn the whole
/// throttle. Only a failing test ever waits this long.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A running broker.
pub struct TestBroker {
    /// Kafka listener.
    pub address: SocketAddr,
    /// Admin HTTP listener.
    pub admin: SocketAddr,
    /// Named listeners (`--listeners`) and their addresses.
    pub listeners: Vec<(String, SocketAddr)>,
    /// Handler state, to look inside partitions.
    pub broker: Arc<Broker>,
    /// The data directory (kept for restarts).
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// A broker with default limits and a fresh data directory.
    pub async fn start() -> TestBroker {
        TestBroker::start_with(BrokerConfig::default()).await
    }

    /// A broker with these network limits and a fresh data directory.
    pub async fn start_with(network: BrokerConfig) -> TestBroker {
        let temp = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::ephemeral(1, temp.path());
        config.kafka = BrokerConfig { listen_address: config.kafka.listen_address, ..network };
        let mut broker = TestBroker::start_config(config).await;
        broker._temp = Some(temp);
        broker
    }

    /// A broker from a full configuration (the caller owns the data directory).
    pub async fn start_config(config: NodeConfig) -> TestBroker {
        let data_dir = config.data_dir.clone();
        let node = Node::start(config).await.unwrap();
        let addresses = node.addresses();
        let listeners = node.listener_addrs();
        let broker = node.broker();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            node.serve(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestBroker {
            address: addresses.kafka,
            admin: addresses.admin,
            listeners,
            broker,
            data_dir,
            _temp: None,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Stops the broker and waits until it has closed every log and the metadata node.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(30), served).await.unwrap().unwrap();
        }
        self._temp.take()
    }

    /// A new client connection.
    pub async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.address).await.unwrap()
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A request header.
pub fn header(api_key: ApiKey, version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("sluice-test")))
}

/// Reads one response frame's payload.
pub async fn read_frame(stream: &mut TcpStream) -> Bytes {
    tokio::time::timeout(IO_TIMEOUT, async {
        let length = stream.read_i32().await.expect("length prefix");
        let mut payload = vec![0; usize::try_from(length).expect("non-negative length")];
        stream.read_exact(&mut payload).await.expect("payload");
        Bytes::from(payload)
    })
    .await
    .expect("a response within the timeout")
}

/// Sends `body` as `api_key` v`version` and decodes the response.
pub async fn call<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    api_key: ApiKey,
    version: i16,
    body: &Req,
) -> Resp {
    let frame = encode_request(&header(api_key, version, 7), body).unwrap();
    stream.write_all(&frame).await.unwrap();
    let payload = read_frame(stream).await;
    let (response_header, response) = decode_response(api_key, version, payload).unwrap();
    assert_eq!(response_header.correlation_id, 7);
    response
}

/// Asserts the broker closes the connection (end of stream or reset) without answering.
pub async fn assert_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut byte))
        .await
        .expect("the broker closes the connection within the timeout");
    match read {
        Ok(0) => {}
        Ok(_) => panic!("expected the connection to close, got data"),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
}

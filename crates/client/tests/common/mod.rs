//! What the client's integration tests run against: a real Sluice broker started in-process on
//! ephemeral ports of 127.0.0.1 with a temporary data directory, and a TCP proxy that can cut
//! connections, for fault injection.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_broker::{Node, NodeConfig};
use sluice_client::admin::NewTopic;
use sluice_client::{Admin, ClientConfig, Cluster};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running broker, stopped when dropped or by [`TestBroker::stop`].
pub struct TestBroker {
    /// Kafka listener.
    pub address: SocketAddr,
    /// Named listeners (`--listeners`) and their addresses.
    pub listeners: Vec<(String, SocketAddr)>,
    _temp: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// A broker advertising its own address.
    pub async fn start() -> TestBroker {
        TestBroker::start_advertising(None).await
    }

    /// A broker telling clients to connect to `advertise` (a proxy in front of it).
    pub async fn start_advertising(advertise: Option<String>) -> TestBroker {
        TestBroker::start_with(|config| config.advertise = advertise).await
    }

    /// A broker with its configuration changed by `change`.
    pub async fn start_with(change: impl FnOnce(&mut NodeConfig)) -> TestBroker {
        let temp = tempfile::tempdir().unwrap();
        let mut config = NodeConfig::ephemeral(1, temp.path());
        change(&mut config);
        let node = Node::start(config).await.unwrap();
        let address = node.addresses().kafka;
        let listeners = node.listener_addrs();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            node.serve(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        TestBroker { address, listeners, _temp: temp, stop: Some(stop), served: Some(served) }
    }

    /// The bootstrap string.
    pub fn bootstrap(&self) -> String {
        self.address.to_string()
    }

    /// Stops the broker and waits until it has closed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            tokio::time::timeout(Duration::from_secs(30), served).await.unwrap().unwrap();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A client configuration with short timeouts for tests.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new(bootstrap);
    config.request_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    config
}

/// A cluster handle.
pub async fn cluster(bootstrap: &str) -> Cluster {
    Cluster::connect(client_config(bootstrap)).await.unwrap()
}

/// Creates `topic` with `partitions` partitions.
pub async fn create_topic(cluster: &Cluster, topic: &str, partitions: i32) {
    Admin::new(cluster.clone())
        .create_topics(&[NewTopic { name: topic.to_string(), partitions, replication_factor: 1, configs: Vec::new() }])
        .await
        .unwrap();
}

/// A TCP proxy between clients and a broker that can swallow the next answer and cut the
/// connection (the request reaches the broker, its answer never reaches the client), or
/// swallow the next request of one api (the broker never sees it, the connection stays).
pub struct FaultProxy {
    /// Where clients connect.
    pub address: SocketAddr,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    /// Set: the next bytes from the broker are dropped and both sockets closed.
    cut_next_answer: Arc<AtomicBool>,
    /// Answers swallowed so far.
    pub cuts: Arc<AtomicUsize>,
    /// An api key whose next request is not forwarded, or -1.
    drop_next_request: Arc<AtomicI32>,
    /// Requests swallowed so far.
    pub dropped_requests: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

/// What a relay does to the traffic: shared by every connection of a proxy.
#[derive(Clone)]
struct Faults {
    cut_next_answer: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    drop_next_request: Arc<AtomicI32>,
    dropped_requests: Arc<AtomicUsize>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl FaultProxy {
    /// Binds the proxy; connections wait until [`FaultProxy::set_upstream`].
    pub async fn bind() -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::new(Mutex::new(None));
        let faults = Faults {
            cut_next_answer: Arc::new(AtomicBool::new(false)),
            cuts: Arc::new(AtomicUsize::new(0)),
            drop_next_request: Arc::new(AtomicI32::new(-1)),
            dropped_requests: Arc::new(AtomicUsize::new(0)),
        };
        let (up, shared) = (upstream.clone(), faults.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let target = *up.lock().unwrap();
                let Some(target) = target else { continue };
                let faults = shared.clone();
                tokio::spawn(async move {
                    let Ok(broker) = TcpStream::connect(target).await else { return };
                    relay(client, broker, faults).await;
                });
            }
        });
        let Faults { cut_next_answer, cuts, drop_next_request, dropped_requests } = faults;
        FaultProxy { address, upstream, cut_next_answer, cuts, drop_next_request, dropped_requests, accept }
    }

    /// Where to forward connections.
    pub fn set_upstream(&self, address: SocketAddr) {
        *self.upstream.lock().unwrap() = Some(address);
    }

    /// Swallow the next answer on any connection and close that connection.
    pub fn cut_next_answer(&self) {
        self.cut_next_answer.store(true, Ordering::SeqCst);
    }

    /// Swallow the next request with `api_key` on any connection; the connection stays up, and
    /// the requests after it reach the broker.
    pub fn drop_next_request(&self, api_key: i16) {
        self.drop_next_request.store(i32::from(api_key), Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, broker: TcpStream, faults: Faults) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut broker_read, mut broker_write) = broker.into_split();
    let Faults { cut_next_answer: cut, cuts, drop_next_request, dropped_requests } = faults;
    // Client to broker frame by frame (a 4-byte length, then the request, whose first two
    // bytes are its api key), so that one request can be left out whole.
    let upstream = tokio::spawn(async move {
        loop {
            let mut prefix = [0u8; 4];
            if client_read.read_exact(&mut prefix).await.is_err() {
                return;
            }
            let mut frame = prefix.to_vec();
            frame.resize(4 + u32::from_be_bytes(prefix) as usize, 0);
            if client_read.read_exact(&mut frame[4..]).await.is_err() {
                return;
            }
            if let Some(api_key) = frame.get(4..6).map(|key| i32::from(i16::from_be_bytes([key[0], key[1]]))) {
                if drop_next_request.compare_exchange(api_key, -1, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    dropped_requests.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
            }
            if broker_write.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match broker_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if cut.swap(false, Ordering::SeqCst) {
            cuts.fetch_add(1, Ordering::SeqCst);
            break; // drop the answer; closing both halves cuts the connection
        }
        if client_write.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    upstream.abort();
}

//! The Kafka listener: accepts connections and runs each on its own task.
//!
//! [`Server::bind`] opens the socket (so a test can bind port 0 and ask for the address) and
//! [`Server::serve`] accepts until the `shutdown` future completes; [`crate::node`] wires it
//! with the rest of the broker. At most `connections_max` connections are open at once: the accept
//! loop takes a permit before accepting, so extra clients wait in the kernel's accept queue.
//!
//! On shutdown the listener closes, every connection is told to stop, and the server waits up to
//! [`SHUTDOWN_GRACE_MS`] for their tasks before aborting the rest.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::config::{BrokerConfig, ACCEPT_ERROR_BACKOFF_MS, SHUTDOWN_GRACE_MS};
use crate::connection::{self, ConnectionContext};
use crate::dispatch::Dispatcher;
use crate::error::BrokerError;
use crate::security::listener::DEFAULT_LISTENER_NAME;
use crate::security::sasl::AUTHENTICATION_TIMEOUT_MS;
use crate::security::session::ListenerInfo;
use crate::security::tls::{principal_from_certificate, TlsSource};
use crate::security::{Principal, SecurityProtocol, Session};

/// A bound, not yet serving, Kafka listener.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: BrokerConfig,
    dispatcher: Arc<Dispatcher>,
    /// Its name and security protocol (the default: `PLAINTEXT`).
    info: Arc<ListenerInfo>,
    /// Its TLS configuration, for SSL and SASL_SSL.
    tls: Option<Arc<TlsSource>>,
}

impl Server {
    /// Validates the configuration and binds the listener; requests go to `dispatcher`.
    pub async fn bind(config: BrokerConfig, dispatcher: Arc<Dispatcher>) -> Result<Server, BrokerError> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen_address)
            .await
            .map_err(|source| BrokerError::Bind { address: config.listen_address, source })?;
        Ok(Server { listener, config, dispatcher, info: default_listener(), tls: None })
    }

    /// A server on an already bound listener (the node binds every port before it starts the
    /// metadata node, so that port 0 works everywhere).
    pub fn from_listener(
        listener: TcpListener,
        config: BrokerConfig,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Server, BrokerError> {
        config.validate()?;
        Ok(Server { listener, config, dispatcher, info: default_listener(), tls: None })
    }

    /// The same server as the listener `info` names, with `tls` for its SSL connections
    /// (required when the protocol uses TLS).
    pub fn with_security(self, info: ListenerInfo, tls: Option<Arc<TlsSource>>) -> Result<Server, BrokerError> {
        if info.protocol.uses_tls() != tls.is_some() {
            return Err(BrokerError::InvalidConfig {
                reason: format!(
                    "listener {} ({}) needs TLS settings exactly when it uses TLS",
                    info.name, info.protocol
                ),
            });
        }
        Ok(Server { info: Arc::new(info), tls, ..self })
    }

    /// The address actually bound (the chosen port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen_address)
    }

    /// Accepts and serves connections until `shutdown` completes, then closes them.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
        let local_addr = self.local_addr();
        tracing::info!(address = %local_addr, listener = %self.info.name, protocol = %self.info.protocol, "kafka listener ready");
        let context = ConnectionContext::new(&self.config, Arc::clone(&self.dispatcher));
        let connection_slots = Arc::new(Semaphore::new(self.config.connections_max));
        let (stop_connections, stop_signal) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let slot = tokio::select! {
                slot = Arc::clone(&connection_slots).acquire_owned() => slot,
                () = &mut shutdown => break,
            };
            // The semaphore is never closed.
            let Ok(slot) = slot else { break };
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let (stream, peer) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_BACKOFF_MS)).await;
                    continue;
                }
            };
            // Responses are written whole; Nagle would only delay them.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
            }
            tracing::debug!(%peer, "connection accepted");
            let context = context.clone();
            let stop_signal = stop_signal.clone();
            let dispatcher = Arc::clone(&self.dispatcher);
            let info = Arc::clone(&self.info);
            let tls = self.tls.as_ref().map(|source| source.config());
            connections.spawn(async move {
                dispatcher.metrics().connection(true);
                serve_stream(stream, peer, info, tls, context, stop_signal).await;
                dispatcher.metrics().connection(false);
                drop(slot);
            });
            // Reap finished connection tasks so the set does not grow with history.
            while let Some(finished) = connections.try_join_next() {
                log_if_panicked(finished);
            }
        }
        tracing::info!(
            address = %local_addr,
            open = connections.len(),
            grace_ms = SHUTDOWN_GRACE_MS,
            "kafka listener stopping: waiting for open connections to finish their requests"
        );
        drop(self.listener);
        let _ = stop_connections.send(true);
        let drained = tokio::time::timeout(Duration::from_millis(SHUTDOWN_GRACE_MS), async {
            while let Some(finished) = connections.join_next().await {
                log_if_panicked(finished);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(open = connections.len(), "aborting connections after grace period");
            connections.abort_all();
        }
        Ok(())
    }
}

fn default_listener() -> Arc<ListenerInfo> {
    Arc::new(ListenerInfo { name: DEFAULT_LISTENER_NAME.to_string(), protocol: SecurityProtocol::Plaintext })
}

/// Serves one accepted connection: plain TCP, or TLS once its handshake completes within
/// [`AUTHENTICATION_TIMEOUT_MS`] (a client certificate, if verified, names the principal).
async fn serve_stream(
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    info: Arc<ListenerInfo>,
    tls: Option<Arc<rustls::ServerConfig>>,
    context: ConnectionContext,
    stop_signal: watch::Receiver<bool>,
) {
    let Some(tls) = tls else {
        let (read_half, write_half) = stream.into_split();
        let session = Session::new(info, peer, Principal::anonymous());
        return connection::serve(read_half, write_half, session, context, stop_signal).await;
    };
    let accepting = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
    let stream = match tokio::time::timeout(Duration::from_millis(AUTHENTICATION_TIMEOUT_MS), accepting).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            tracing::info!(%peer, listener = %info.name, %error, "failed authentication (TLS handshake)");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, listener = %info.name, timeout_ms = AUTHENTICATION_TIMEOUT_MS, "TLS handshake timed out");
            return;
        }
    };
    let principal = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| principal_from_certificate(leaf))
        .unwrap_or_else(Principal::anonymous);
    let session = Session::new(info, peer, principal);
    let (read_half, write_half) = tokio::io::split(stream);
    connection::serve(read_half, write_half, session, context, stop_signal).await;
}

/// A connection task that panicked is a bug; the broker goes on, but it must be visible.
fn log_if_panicked(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        if error.is_panic() {
            tracing::error!(%error, "connection task panicked");
        }
    }
}

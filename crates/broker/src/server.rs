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
use crate::security::Session;

/// A bound, not yet serving, Kafka listener.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    config: BrokerConfig,
    dispatcher: Arc<Dispatcher>,
}

impl Server {
    /// Validates the configuration and binds the listener; requests go to `dispatcher`.
    pub async fn bind(config: BrokerConfig, dispatcher: Arc<Dispatcher>) -> Result<Server, BrokerError> {
        config.validate()?;
        let listener = TcpListener::bind(config.listen_address)
            .await
            .map_err(|source| BrokerError::Bind { address: config.listen_address, source })?;
        Ok(Server { listener, config, dispatcher })
    }

    /// A server on an already bound listener (the node binds every port before it starts the
    /// metadata node, so that port 0 works everywhere).
    pub fn from_listener(
        listener: TcpListener,
        config: BrokerConfig,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Server, BrokerError> {
        config.validate()?;
        Ok(Server { listener, config, dispatcher })
    }

    /// The address actually bound (the chosen port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen_address)
    }

    /// Accepts and serves connections until `shutdown` completes, then closes them.
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), BrokerError> {
        let local_addr = self.local_addr();
        tracing::info!(address = %local_addr, "kafka listener ready");
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
            connections.spawn(async move {
                dispatcher.metrics().connection(true);
                let (read_half, write_half) = stream.into_split();
                let session = Session::plaintext(peer);
                connection::serve(read_half, write_half, session, context, stop_signal).await;
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

/// A connection task that panicked is a bug; the broker goes on, but it must be visible.
fn log_if_panicked(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        if error.is_panic() {
            tracing::error!(%error, "connection task panicked");
        }
    }
}

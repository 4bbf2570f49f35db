//! Errors of the broker's network layer.

use std::net::SocketAddr;

/// Errors that stop the broker (as opposed to [`crate::connection::ConnectionError`], which end
/// one connection).
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address could not be bound (in use, no permission, no such interface).
    /// Not retriable as is: the operator must free the port or pick another address.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address from the configuration.
        address: SocketAddr,
        /// The operating system's reason.
        source: std::io::Error,
    },

    /// The configuration breaks a relation between limits (see [`crate::config`]).
    /// Not retriable: fix the configuration.
    #[error("invalid configuration: {reason}")]
    InvalidConfig {
        /// Which relation is broken.
        reason: String,
    },
}

//! The Sluice broker's data plane. So far: the network layer, following a request from the
//! socket to its handler.
//!
//! 1. [`server`] — the Kafka listener; one task per connection, a bounded number of them.
//! 2. [`connection`] — reads frames (bounded buffer, bounded in-flight requests), answers them
//!    one at a time in request order, closes the connection on protocol errors.
//! 3. [`dispatch`] — checks the api and version against the supported table, decodes the
//!    request with `sluice-proto`, calls the handler.
//! 4. Handlers: [`api_versions`] (the table itself). Produce, Fetch, Metadata and the rest come
//!    with the partition layer (`sluice-log`) and the control plane (`sluice-meta`).
//!
//! [`config`] holds every limit, each with its reason. `main` stays thin: it builds a
//! [`BrokerConfig`] and calls [`run`] with a shutdown future, as the tests do.

pub mod api_versions;
pub mod config;
pub mod connection;
pub mod dispatch;
pub mod error;
pub mod server;

pub use config::BrokerConfig;
pub use error::BrokerError;
pub use server::{run, Server};

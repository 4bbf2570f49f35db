//! A group's coordinator: found with FindCoordinator, called through the cluster's retry loop,
//! found again when it moves.
//!
//! Every group request goes to the broker leading the group's `__consumer_offsets` partition.
//! NOT_COORDINATOR and COORDINATOR_NOT_AVAILABLE (and a failed connection) forget the
//! coordinator, so the retry after the backoff looks it up again; COORDINATOR_LOAD_IN_PROGRESS
//! retries the same broker ([`ClientError::invalidates_coordinator`]).
//!
//! Two routes: an admin shares the cluster's connection to the coordinator; a group member
//! dials a connection of its own ([`Cluster::dedicated_connection`]), because its JoinGroup
//! waits at the coordinator until the whole group has rejoined, and answers on a connection
//! come back in request order — on a shared connection, another member's heartbeat queued
//! behind that JoinGroup could never tell its member to rejoin. (Kafka's Java client keeps a
//! separate coordinator connection for the same reason.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_proto::kafka_protocol::protocol::Request;

use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{ClientError, Result};

/// COORDINATOR_LOAD_IN_PROGRESS.
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
/// COORDINATOR_NOT_AVAILABLE.
pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
/// NOT_COORDINATOR.
pub const NOT_COORDINATOR: i16 = 16;

/// Whether a group-level error code is about the coordinator rather than the request: the
/// request is retried (after looking the coordinator up again, except while it loads).
pub fn is_coordinator_error(code: i16) -> bool {
    matches!(code, COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR)
}

/// `Err` (retriable) for a coordinator error code, `Ok` for any other: for responses whose
/// other codes the caller interprets itself.
pub fn check_coordinator(code: i16, context: impl FnOnce() -> String) -> Result<()> {
    if is_coordinator_error(code) {
        return Err(ClientError::kafka(code, context(), None));
    }
    Ok(())
}

/// How requests reach the coordinator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Over the cluster's shared connection to the broker (admin requests).
    Shared,
    /// Over a connection of this coordinator handle's own (a group member).
    Dedicated,
}

#[derive(Debug, Clone)]
struct Located {
    broker_id: i32,
    connection: Arc<Connection>,
}

/// The coordinator of one group.
#[derive(Debug)]
pub struct Coordinator {
    cluster: Cluster,
    group_id: String,
    route: Route,
    located: Mutex<Option<Located>>,
    /// Serialises look-ups, so the heartbeat task and a commit do not dial twice.
    locating: tokio::sync::Mutex<()>,
}

impl Coordinator {
    /// A handle on `group_id`'s coordinator; nothing is looked up until the first call.
    pub fn new(cluster: Cluster, group_id: &str, route: Route) -> Coordinator {
        Coordinator {
            cluster,
            group_id: group_id.to_string(),
            route,
            located: Mutex::new(None),
            locating: tokio::sync::Mutex::new(()),
        }
    }

    /// The group.
    pub fn group_id(&self) -> &str {
        &self.group_id
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    fn current(&self) -> Option<Located> {
        let located = self.located.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        located.clone().filter(|located| !located.connection.is_closed())
    }

    /// Forgets the coordinator: the next call looks it up again.
    pub fn forget(&self) {
        let mut located = self.located.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(old) = located.take() {
            tracing::debug!(group = %self.group_id, broker_id = old.broker_id, "forgetting the coordinator");
        }
    }

    async fn connection(&self) -> Result<Arc<Connection>> {
        if let Some(located) = self.current() {
            return Ok(located.connection);
        }
        let _locating = self.locating.lock().await;
        if let Some(located) = self.current() {
            return Ok(located.connection);
        }
        let broker = self.cluster.find_coordinator(&self.group_id).await?;
        let connection = match self.route {
            Route::Shared => match self.cluster.connection(broker.id).await {
                Ok(connection) => connection,
                Err(error) => {
                    // A coordinator the cached metadata does not list yet: refresh, try again.
                    self.cluster.refresh(&[]).await?;
                    tracing::debug!(%error, broker_id = broker.id, "coordinator not in the metadata; refreshed");
                    self.cluster.connection(broker.id).await?
                }
            },
            Route::Dedicated => Arc::new(self.cluster.dedicated_connection(&broker).await?),
        };
        tracing::debug!(group = %self.group_id, broker_id = broker.id, address = %broker.address, "found the coordinator");
        let located = Located { broker_id: broker.id, connection: connection.clone() };
        *self.located.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(located);
        Ok(connection)
    }

    /// One attempt: `build(version)` is sent at the negotiated version, within the request
    /// timeout plus `extra_wait`, and `check` reads the answer. A coordinator error (from the
    /// connection, or returned by `check`) forgets the coordinator.
    pub async fn call_once<R, T>(
        &self,
        extra_wait: Duration,
        build: impl FnOnce(i16) -> R,
        check: impl FnOnce(R::Response) -> Result<T>,
    ) -> Result<T>
    where
        R: Request,
    {
        let result = async {
            let connection = self.connection().await?;
            let request = build(connection.version_for::<R>()?);
            check(connection.call(&request, extra_wait).await?)
        }
        .await;
        if let Err(error) = &result {
            if error.invalidates_coordinator() {
                self.forget();
            }
        }
        result
    }

    /// [`Coordinator::call_once`] in the cluster's retry loop (backoff with jitter,
    /// `retries_max` attempts).
    pub async fn call<R, T, B, C>(&self, what: &str, extra_wait: Duration, build: B, check: C) -> Result<T>
    where
        R: Request,
        B: Fn(i16) -> R,
        C: Fn(R::Response) -> Result<T>,
    {
        self.cluster.retry(what, || self.call_once(extra_wait, &build, &check)).await
    }
}

//! InitProducerId for idempotent producers: a fresh producer id (epoch 0) from this broker's
//! block of ids, which the metadata hands out so ids never repeat across brokers or restarts.
//!
//! A producer that asks again (KIP-360, after an OUT_OF_ORDER_SEQUENCE_NUMBER) gets a new id,
//! which starts its sequences afresh. Transactional ids are refused: there is no transaction
//! coordinator yet.

use sluice_proto::kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse};

use crate::broker::Broker;
use crate::kafka_code;

/// Answers an InitProducerId request.
pub async fn handle(broker: &Broker, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let failed = |code| {
        InitProducerIdResponse::default().with_error_code(code).with_producer_id((-1).into()).with_producer_epoch(-1)
    };
    match &request.transactional_id {
        None => {}
        // Kafka's coordinator refuses an empty transactional id as malformed.
        Some(id) if id.is_empty() => return failed(kafka_code::INVALID_REQUEST),
        Some(_) => return failed(kafka_code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
    }
    match broker.next_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_error_code(kafka_code::NONE)
            .with_producer_id(id.into())
            .with_producer_epoch(0),
        Err(error) => {
            tracing::warn!(%error, "cannot allocate producer ids");
            failed(error.kafka_error_code())
        }
    }
}

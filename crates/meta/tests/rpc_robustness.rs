//! Goal: show that bad bytes on the Raft port close the connection and never hurt the node,
//! and that a single voter is a working cluster of one.
//! Method: a one-voter cluster on 127.0.0.1; raw TCP clients send an oversized length prefix,
//! an undecodable frame and a hello for the wrong node id, each expecting the server to close
//! the connection; afterwards the node still commits commands.

mod common;

use std::time::Duration;

use common::*;
use sluice_meta::limits::RPC_FRAME_BYTES_MAX;
use sluice_meta::rpc;
use sluice_meta::rpc::RpcRequest;
use sluice_meta::rpc::RpcResponse;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Reads until the server closes the connection; fails if it stays open for 5 s.
async fn assert_closed_by_server(stream: &mut TcpStream) {
    let mut buffer = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "server kept a misbehaving connection open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_close_the_connection_and_the_node_keeps_working() {
    let mut cluster = Cluster::start(1).await;
    cluster.wait_leader(&[1], Duration::from_secs(10)).await;
    let addr = cluster.addrs[&1];

    // A length prefix beyond the frame limit: refused before anything is buffered.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let oversized = (RPC_FRAME_BYTES_MAX as u32 + 1).to_be_bytes();
    stream.write_all(&oversized).await.unwrap();
    stream.write_all(&[0u8; 64]).await.unwrap();
    assert_closed_by_server(&mut stream).await;

    // A frame of the right length whose bytes are not a message.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(&7u32.to_be_bytes()).await.unwrap();
    stream.write_all(&[0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9]).await.unwrap();
    assert_closed_by_server(&mut stream).await;

    // A well-formed hello for another node id: refused with a reason, then closed.
    let mut connection = rpc::framed(TcpStream::connect(addr).await.unwrap());
    let hello = RpcRequest::Hello { protocol_version: rpc::RPC_PROTOCOL_VERSION, from: 9, to: 2 };
    rpc::send_message(&mut connection, &hello).await.unwrap();
    let answer: RpcResponse = rpc::receive_message(&mut connection).await.unwrap();
    assert!(matches!(answer, RpcResponse::Refused { .. }), "{answer:?}");
    assert!(rpc::receive_message::<RpcResponse>(&mut connection).await.is_err(), "closed after refusal");

    // A request before any hello is refused too.
    let mut connection = rpc::framed(TcpStream::connect(addr).await.unwrap());
    rpc::send_message(&mut connection, &RpcRequest::Propose(register(1))).await.unwrap();
    let answer: RpcResponse = rpc::receive_message(&mut connection).await.unwrap();
    assert!(matches!(answer, RpcResponse::Refused { .. }), "{answer:?}");

    // The single voter is a cluster of one and still commits.
    let proposed = cluster.node(1).propose(register(1)).await.unwrap();
    assert!(cluster.node(1).view().view.brokers.contains_key(&1));
    assert!(proposed.log_index > 0);
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_proposal_over_a_raw_connection_is_answered() {
    let mut cluster = Cluster::start(1).await;
    cluster.wait_leader(&[1], Duration::from_secs(10)).await;
    let mut connection = rpc::framed(TcpStream::connect(cluster.addrs[&1]).await.unwrap());
    let hello = RpcRequest::Hello { protocol_version: rpc::RPC_PROTOCOL_VERSION, from: 9, to: 1 };
    rpc::send_message(&mut connection, &hello).await.unwrap();
    assert!(matches!(rpc::receive_message(&mut connection).await.unwrap(), RpcResponse::HelloOk));
    rpc::send_message(&mut connection, &RpcRequest::Propose(register(3))).await.unwrap();
    match rpc::receive_message(&mut connection).await.unwrap() {
        RpcResponse::Propose(Ok(reply)) => assert!(reply.result.is_ok()),
        other => panic!("{other:?}"),
    }
    assert!(cluster.node(1).view().view.brokers.contains_key(&3));
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_commands_are_refused_before_the_log() {
    let mut cluster = Cluster::start(1).await;
    cluster.wait_leader(&[1], Duration::from_secs(10)).await;
    let huge = sluice_meta::Command::DeleteTopic { name: "x".repeat(sluice_meta::limits::COMMAND_BYTES_MAX + 1) };
    // Through the node API.
    let error = cluster.node(1).propose(huge.clone()).await.unwrap_err();
    assert!(matches!(error, sluice_meta::MetaError::CommandTooLarge { .. }), "{error}");
    // Through a forwarded proposal from a (pretend) peer: refused, and the node survives.
    let mut connection = rpc::framed(TcpStream::connect(cluster.addrs[&1]).await.unwrap());
    let hello = RpcRequest::Hello { protocol_version: rpc::RPC_PROTOCOL_VERSION, from: 9, to: 1 };
    rpc::send_message(&mut connection, &hello).await.unwrap();
    assert!(matches!(rpc::receive_message(&mut connection).await.unwrap(), RpcResponse::HelloOk));
    rpc::send_message(&mut connection, &RpcRequest::Propose(huge)).await.unwrap();
    let answer: RpcResponse = rpc::receive_message(&mut connection).await.unwrap();
    assert!(matches!(answer, RpcResponse::Propose(Err(rpc::ForwardError::Refused(_)))), "{answer:?}");
    cluster.node(1).propose(register(1)).await.unwrap();
    cluster.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_batch_gets_one_result_per_command() {
    let mut cluster = Cluster::start(1).await;
    cluster.wait_leader(&[1], Duration::from_secs(10)).await;
    let mut connection = rpc::framed(TcpStream::connect(cluster.addrs[&1]).await.unwrap());
    let hello = RpcRequest::Hello { protocol_version: rpc::RPC_PROTOCOL_VERSION, from: 9, to: 1 };
    rpc::send_message(&mut connection, &hello).await.unwrap();
    assert!(matches!(rpc::receive_message(&mut connection).await.unwrap(), RpcResponse::HelloOk));
    // Broker 5 registers; its second registration with another incarnation is a new epoch; the
    // allocation for an unknown broker is rejected; all in one batch, answered in order.
    let batch =
        vec![register(5), sluice_meta::Command::AllocateProducerIds { broker_id: 6, broker_epoch: 0 }, register(7)];
    rpc::send_message(&mut connection, &RpcRequest::ProposeBatch(batch)).await.unwrap();
    match rpc::receive_message(&mut connection).await.unwrap() {
        RpcResponse::ProposeBatch(results) => {
            assert_eq!(results.len(), 3);
            assert!(results[0].as_ref().unwrap().result.is_ok());
            assert_eq!(results[1].as_ref().unwrap().result.as_ref().unwrap_err().kafka_error_code(), 102);
            assert!(results[2].as_ref().unwrap().result.is_ok());
        }
        other => panic!("{other:?}"),
    }
    // A batch over the command limit closes the connection.
    let oversized = vec![register(8); sluice_meta::limits::PROPOSAL_COMMANDS_MAX + 1];
    rpc::send_message(&mut connection, &RpcRequest::ProposeBatch(oversized)).await.unwrap();
    assert!(rpc::receive_message::<RpcResponse>(&mut connection).await.is_err());
    assert!(!cluster.node(1).view().view.brokers.contains_key(&8));
    cluster.stop_all().await;
}

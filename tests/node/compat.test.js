// The kafkajs row of the client compatibility matrix: the same tests, unchanged, against Apache
// Kafka and against Sluice (scripts/compat-clients.sh runs them with
// `node --test --test-reporter=junit`). Each test is one row of docs/compatibility.md.
//
// The broker is named by COMPAT_BOOTSTRAP (host:port); without it every test fails.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { Kafka, CompressionTypes, Partitioners, logLevel } = require('kafkajs');

// Upper bound for one test's broker work; a hung client fails the test instead of the run.
const TEST_TIMEOUT_MS = 90_000;
const RUN_ID = `${Date.now()}-${process.pid}`;

function kafka() {
  const bootstrap = process.env.COMPAT_BOOTSTRAP;
  assert.ok(bootstrap, 'COMPAT_BOOTSTRAP (host:port of the broker under test) is not set');
  return new Kafka({ clientId: 'sluice-compat-node', brokers: [bootstrap], logLevel: logLevel.NOTHING });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(what, cond, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

// Creates a topic (replication factor 1) and waits until every partition has a leader. The wait
// is ours, not kafkajs's waitForLeaders: that retries LEADER_NOT_AVAILABLE only, and Apache
// Kafka (KRaft) may answer UNKNOWN_TOPIC_OR_PARTITION for a moment after CreateTopics returns.
async function createTopic(admin, topic, numPartitions, configEntries = []) {
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
    waitForLeaders: false,
  });
  assert.equal(created, true, `createTopics(${topic}) reported the topic as existing`);
  await waitFor(`every partition of ${topic} to have a leader`, async () => {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      return topics[0].partitions.length === numPartitions && topics[0].partitions.every((p) => p.leader >= 0);
    } catch (e) {
      return false;
    }
  }, 30_000);
}

function producerOf(client) {
  return client.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
}

// Reads every partition of topic from the start until `want` messages arrived.
async function consumeAll(client, topic, want) {
  const consumer = client.consumer({ groupId: `node-reader-${topic}`, maxWaitTimeInMs: 500 });
  const got = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, ...message });
      },
    });
    await waitFor(`${want} messages of ${topic}`, () => got.length >= want);
  } finally {
    await consumer.disconnect();
  }
  return got;
}

test('idempotent producer gzip round trip keeps key, value, headers and order', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = kafka();
  const admin = client.admin();
  await admin.connect();
  const topic = `node-gzip-${RUN_ID}`;
  try {
    await createTopic(admin, topic, 3);
    const producer = producerOf(client);
    await producer.connect();
    const sent = [];
    for (let batch = 0; batch < 6; batch++) {
      const messages = [];
      for (let i = batch * 50; i < (batch + 1) * 50; i++) {
        messages.push({ key: `key-${i % 17}`, value: `value-${i};`.repeat(1 + (i % 7)), headers: { seq: String(i), codec: 'gzip' } });
      }
      const acks = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
      assert.ok(acks.every((a) => a.errorCode === 0), `produce errors: ${JSON.stringify(acks)}`);
      sent.push(...messages);
    }
    await producer.disconnect();
    const got = await consumeAll(client, topic, sent.length);
    assert.equal(got.length, sent.length);
    // Per partition, the records come back in the order they were sent, each intact.
    const byKeyOrder = new Map();
    for (const m of sent) {
      if (!byKeyOrder.has(m.key)) byKeyOrder.set(m.key, []);
      byKeyOrder.get(m.key).push(m);
    }
    const partitionOfKey = new Map();
    const lastOffset = new Map();
    for (const m of got) {
      const key = m.key.toString();
      if (partitionOfKey.has(key)) assert.equal(m.partition, partitionOfKey.get(key), `key ${key} in two partitions`);
      partitionOfKey.set(key, m.partition);
      const offset = BigInt(m.offset);
      if (lastOffset.has(m.partition)) assert.ok(offset > lastOffset.get(m.partition), `partition ${m.partition} offsets out of order`);
      lastOffset.set(m.partition, offset);
      const expected = byKeyOrder.get(key).shift();
      assert.ok(expected, `unexpected record with key ${key}`);
      assert.equal(m.value.toString(), expected.value);
      assert.equal(m.headers.seq.toString(), expected.headers.seq);
      assert.equal(m.headers.codec.toString(), 'gzip');
    }
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});

test('keyed records land in the Java client murmur2 partitions', { timeout: TEST_TIMEOUT_MS }, async () => {
  // toPositive(Utils.murmur2(key)) % 6, printed by kafka-clients 4.1.1.
  const javaPartitions = { 'key-0': 1, 'key-1': 0, 'key-2': 2, 'user-42': 4, abc: 3, foobar: 0 };
  const client = kafka();
  const admin = client.admin();
  await admin.connect();
  const topic = `node-keyed-${RUN_ID}`;
  try {
    await createTopic(admin, topic, 6);
    const producer = producerOf(client);
    await producer.connect();
    for (const [key, partition] of Object.entries(javaPartitions)) {
      const [ack] = await producer.send({ topic, acks: -1, messages: [{ key, value: key }] });
      assert.equal(ack.partition, partition, `key ${key} produced to partition ${ack.partition}`);
    }
    await producer.disconnect();
    const got = await consumeAll(client, topic, Object.keys(javaPartitions).length);
    for (const m of got) {
      assert.equal(m.partition, javaPartitions[m.key.toString()], `key ${m.key} consumed from partition ${m.partition}`);
    }
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});

test('group of 2 consumers shares partitions, commits, survivor takes over', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = kafka();
  const admin = client.admin();
  await admin.connect();
  const topic = `node-group-${RUN_ID}`;
  const groupId = `node-group-${RUN_ID}`;
  const seen = new Map(); // "partition/offset" -> member
  const duplicates = [];
  const assigned = { A: 0, B: 0 };
  const members = {};
  try {
    await createTopic(admin, topic, 4);
    for (const name of ['A', 'B']) {
      const consumer = client.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 500, maxWaitTimeInMs: 500 });
      consumer.on(consumer.events.GROUP_JOIN, (e) => {
        assigned[name] = (e.payload.memberAssignment[topic] || []).length;
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const pos = `${partition}/${message.offset}`;
          if (seen.has(pos)) duplicates.push(`${pos} by ${seen.get(pos)} and ${name}`);
          seen.set(pos, name);
          await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
        },
      });
      members[name] = consumer;
    }
    await waitFor('both members to own 2 partitions', () => assigned.A === 2 && assigned.B === 2);
    const producer = producerOf(client);
    await producer.connect();
    const produce = async (from) => {
      const messages = [];
      for (let i = from; i < from + 100; i++) messages.push({ key: `k${i}`, value: String(i) });
      await producer.send({ topic, acks: -1, messages });
    };
    const count = (member) => [...seen.values()].filter((m) => member === undefined || m === member).length;
    await produce(0);
    await waitFor('the first 100 messages', () => seen.size >= 100);
    assert.ok(count('A') > 0 && count('B') > 0, `split A=${count('A')} B=${count('B')}: both should have consumed`);
    await members.B.disconnect();
    delete members.B;
    await waitFor('A to own all 4 partitions after B left', () => assigned.A === 4);
    const beforeA = count('A');
    await produce(100);
    await producer.disconnect();
    await waitFor('the second 100 messages', () => seen.size >= 200);
    await sleep(500); // any duplicate delivery would arrive in this time
    assert.deepEqual(duplicates, []);
    assert.equal(seen.size, 200);
    assert.equal(count('A') - beforeA, 100);
    await members.A.disconnect();
    delete members.A;
    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const ends = await admin.fetchTopicOffsets(topic);
    for (const end of ends) {
      const c = committed.partitions.find((p) => p.partition === end.partition);
      assert.equal(c && c.offset, end.high, `partition ${end.partition}: committed ${c && c.offset}, log end ${end.high}`);
    }
  } finally {
    for (const consumer of Object.values(members)) await consumer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});

test('admin create, list, metadata, offsets, fetchOffsets, delete topics', { timeout: TEST_TIMEOUT_MS }, async () => {
  const client = kafka();
  const admin = client.admin();
  await admin.connect();
  const topic = `node-admin-${RUN_ID}`;
  const groupId = `node-admin-${RUN_ID}`;
  try {
    await createTopic(admin, topic, 2, [{ name: 'retention.ms', value: '3600000' }]);
    assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] }), false,
      'creating an existing topic reports it as created');
    assert.ok((await admin.listTopics()).includes(topic), `${topic} not listed`);
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    assert.equal(topics[0].partitions.length, 2);
    for (const p of topics[0].partitions) {
      assert.ok(p.leader >= 0, `partition ${p.partitionId} has no leader`);
      assert.equal(p.replicas.length, 1);
    }
    const producer = producerOf(client);
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [0, 1, 2, 3, 4].map((i) => ({ value: String(i), partition: 0 })) });
    await producer.disconnect();
    const offsets = await admin.fetchTopicOffsets(topic);
    const p0 = offsets.find((o) => o.partition === 0);
    assert.deepEqual({ low: p0.low, high: p0.high }, { low: '0', high: '5' });
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '3' }] });
    const [fetched] = await admin.fetchOffsets({ groupId, topics: [topic] });
    assert.equal(fetched.partitions.find((p) => p.partition === 0).offset, '3');
    const configs = await admin.describeConfigs({ resources: [{ type: 2, name: topic, configNames: ['retention.ms'] }], includeSynonyms: false });
    assert.equal(configs.resources[0].configEntries.find((c) => c.configName === 'retention.ms').configValue, '3600000');
    await admin.deleteGroups([groupId]);
    await admin.deleteTopics({ topics: [topic] });
    await waitFor('the deleted topic to leave the listing', async () => !(await admin.listTopics()).includes(topic), 20_000);
  } finally {
    await admin.disconnect();
  }
});

test('transactions: committed record visible, aborted one not (read_committed)', { timeout: TEST_TIMEOUT_MS }, async () => {
  // A broker without transactions must make the producer fail at once (the failure names the
  // elapsed time), not hang.
  const client = kafka();
  const admin = client.admin();
  await admin.connect();
  const topic = `node-txn-${RUN_ID}`;
  const started = Date.now();
  const producer = client.producer({ transactionalId: `node-txn-${RUN_ID}`, idempotent: true, maxInFlightRequests: 1 });
  try {
    await createTopic(admin, topic, 1);
    await producer.connect();
    for (const [value, end] of [['aborted', 'abort'], ['committed', 'commit']]) {
      try {
        const txn = await producer.transaction();
        await txn.send({ topic, messages: [{ value }] });
        await txn[end]();
      } catch (e) {
        throw new Error(`transaction failed after ${Date.now() - started} ms: ${e.message}`);
      }
    }
    const got = await consumeAll(client, topic, 1);
    assert.deepEqual(got.map((m) => m.value.toString()), ['committed']);
  } finally {
    await producer.disconnect().catch(() => {});
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  }
});

#!/usr/bin/env node
// A test driver over kafkajs (pure JavaScript), same interface and output as
// client_py.py:  client_js.js --bootstrap HOST:PORT OP [--topic T] [--group G]
// [--count N] [--abort-count M] [--txn-id ID] [--timeout S] [--start I]
// [--config KEY=VALUE]... (librdkafka's names: security.protocol,
// sasl.mechanism, sasl.username, sasl.password, ssl.ca.location,
// ssl.certificate.location, ssl.key.location)
'use strict';
const path = require('path');
const { Kafka, logLevel } = require(path.join(__dirname, '../../.cache/node/node_modules/kafkajs'));

function parse(argv) {
  const a = { topic: 'orders', group: 'g1', count: 0, abortCount: 0, txnId: 'txn-1', timeout: 60, pace: 0,
    start: 0, config: {} };
  const names = { '--bootstrap': 'bootstrap', '--topic': 'topic', '--group': 'group', '--count': 'count',
    '--abort-count': 'abortCount', '--txn-id': 'txnId', '--timeout': 'timeout', '--pace': 'pace',
    '--start': 'start' };
  for (let i = 2; i < argv.length; i++) {
    if (names[argv[i]]) a[names[argv[i]]] = argv[++i];
    else if (argv[i] === '--config') {
      const kv = argv[++i]; const eq = kv.indexOf('=');
      a.config[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    else if (argv[i] === '--stream') a.stream = true;
    else a.op = argv[i];
  }
  a.count = +a.count; a.abortCount = +a.abortCount; a.timeout = +a.timeout; a.pace = +a.pace;
  a.start = +a.start;
  return a;
}

const valueFor = (i) => `v${i}-` + 'x'.repeat(i % 50);

function verify(received, count) {
  const idx = []; let bad = 0;
  for (const [k, v] of received) {
    if (!k || k[0] !== 'k') { bad++; continue; }
    const i = +k.slice(1);
    if (v !== valueFor(i)) bad++;
    idx.push(i);
  }
  const uniq = new Set(idx);
  const missing = [];
  for (let i = 0; i < count && missing.length < 10; i++) if (!uniq.has(i)) missing.push(i);
  return { count: received.length, unique: uniq.size, duplicates: idx.length - uniq.size, bad,
    missing, complete: missing.length === 0 && uniq.size === count && bad === 0,
    indices: [...uniq].sort((x, y) => x - y) };
}

async function addresses(kafka) {
  const admin = kafka.admin();
  await admin.connect();
  const c = await admin.describeCluster();
  await admin.disconnect();
  return [...new Set(c.brokers.map((b) => `${b.host}:${b.port}`))].sort();
}

async function main() {
  const a = parse(process.argv);
  const opts = { clientId: 'bore-test', brokers: [a.bootstrap], logLevel: logLevel.NOTHING,
    retry: { retries: 10, initialRetryTime: 100 } };
  const proto = a.config['security.protocol'] || 'PLAINTEXT';
  if (proto.endsWith('SSL')) {
    // Node verifies the certificate and the host name by default.
    const fs = require('fs');
    const read = (k) => (a.config[k] ? fs.readFileSync(a.config[k]) : undefined);
    opts.ssl = { ca: a.config['ssl.ca.location'] ? [read('ssl.ca.location')] : undefined,
      cert: read('ssl.certificate.location'), key: read('ssl.key.location') };
  }
  if (a.config['sasl.mechanism']) {
    opts.sasl = { mechanism: a.config['sasl.mechanism'].toLowerCase(), username: a.config['sasl.username'],
      password: a.config['sasl.password'] };
  }
  const kafka = new Kafka(opts);
  let r;
  if (a.op === 'metadata') {
    const admin = kafka.admin();
    await admin.connect();
    const c = await admin.describeCluster();
    const md = await admin.fetchTopicMetadata();
    const topics = {};
    for (const t of md.topics) {
      topics[t.name] = {};
      for (const p of t.partitions) topics[t.name][String(p.partitionId)] = p.leader;
    }
    await admin.disconnect();
    r = { brokers: c.brokers.map((b) => ({ id: b.nodeId, host: b.host, port: b.port })).sort((x, y) => x.id - y.id),
      topics, addresses: await addresses(kafka) };
  } else if (a.op === 'produce') {
    const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    let acked = 0; const errors = [];
    const end = a.start + a.count;
    for (let i = a.start; i < end; i += 500) {
      const messages = [];
      for (let j = i; j < Math.min(end, i + 500); j++) messages.push({ key: `k${j}`, value: valueFor(j) });
      try {
        const res = await p.send({ topic: a.topic, messages, acks: -1 });
        acked += messages.length; void res;
      } catch (e) { errors.push(String(e)); }
      if (a.pace) await new Promise((r) => setTimeout(r, a.pace * 1000));
    }
    await p.disconnect();
    r = { acked, errors: errors.slice(0, 5), addresses: await addresses(kafka) };
  } else if (a.op === 'consume' || a.op === 'consume-committed') {
    const c = kafka.consumer({ groupId: a.group, readUncommitted: a.op === 'consume',
      sessionTimeout: 10000, heartbeatInterval: 500 });
    await c.connect();
    await c.subscribe({ topic: a.topic, fromBeginning: true });
    if (a.stream) {
      // Prints each message as it arrives, commits as it goes, until SIGTERM.
      await c.run({ autoCommit: true, autoCommitThreshold: 1,
        eachMessage: async ({ message }) => {
          process.stdout.write(`${message.key ? message.key.toString() : ''}\t${message.value ? message.value.toString() : ''}\n`);
        } });
      await new Promise((resolve) => process.on('SIGTERM', resolve));
      await c.stop();
      await c.disconnect();
      process.exit(0);
    }
    const got = []; const keys = new Set();
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, a.timeout * 1000);
      c.run({
        autoCommit: true, autoCommitThreshold: 500, autoCommitInterval: 200, partitionsConsumedConcurrently: 6,
        eachMessage: async ({ message }) => {
          const key = message.key ? message.key.toString() : '';
          got.push([key, message.value ? message.value.toString() : '']);
          keys.add(key);
          // Until every distinct message is in (a duplicate does not count).
          if (keys.size >= a.count) { clearTimeout(timer); setImmediate(resolve); }
        },
      });
    });
    await c.stop();
    await c.disconnect();
    r = Object.assign(verify(got, a.count), { addresses: await addresses(kafka) });
  } else if (a.op === 'txn') {
    const p = kafka.producer({ transactionalId: a.txnId, idempotent: true, maxInFlightRequests: 1 });
    await p.connect();
    const msgs = (from, to) => { const m = []; for (let i = from; i < to; i++) m.push({ key: `k${i}`, value: valueFor(i) }); return m; };
    let t = await p.transaction();
    await t.send({ topic: a.topic, messages: msgs(0, a.count) });
    await t.commit();
    t = await p.transaction();
    await t.send({ topic: a.topic, messages: msgs(a.count, a.count + a.abortCount) });
    await t.abort();
    await p.disconnect();
    r = { addresses: await addresses(kafka) };  // what was kept: for a consumer to show
  } else {
    throw new Error(`unknown op ${a.op}`);
  }
  // Exit once the (possibly large) result has reached the pipe.
  await new Promise((resolve) => process.stdout.write(JSON.stringify(r) + '\n', resolve));
}

main().then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.stack || e) + '\n'); process.exit(1); });

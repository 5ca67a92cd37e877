import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import mqttPacket from 'mqtt-packet';
import { type Edge, startEdge, until } from './setup.js';

// Issue 15 item 1: MQTT 5 on the embedded broker (Aedes 2 + Kapok's shared subscriptions), with
// real clients: mqtt.js at protocolVersion 5 over TCP and the WebSocket path, and Debian's
// mosquitto_pub/mosquitto_sub -V mqttv5. 3.1.1 keeps working beside it (the other edge tests).

const V5 = { protocolVersion: 5 } as const;
type Transport = 'tcp' | 'ws';

/** A connect that resolves with the client and its CONNACK, or rejects with the refusal. */
function connect(
  e: Edge,
  t: Transport,
  opts: IClientOptions = {},
): Promise<{ c: MqttClient; connack: mqtt.IConnackPacket }> {
  const url = t === 'ws' ? `ws://127.0.0.1:${e.app.port}/mqtt` : `mqtt://127.0.0.1:${e.mqttPort}`;
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...V5, ...opts });
  return new Promise((resolve, reject) => {
    c.once('connect', (connack) => resolve({ c, connack }));
    c.once('error', (err) => {
      c.end(true);
      reject(err);
    });
  });
}

const client = async (e: Edge, t: Transport, opts: IClientOptions = {}) => (await connect(e, t, opts)).c;

/** The next `n` messages a client receives, with their packets. */
function collect(c: MqttClient, n: number, ms = 5000): Promise<mqtt.IPublishPacket[]> {
  const got: mqtt.IPublishPacket[] = [];
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`got ${got.length} of ${n} messages`)), ms);
    c.on('message', (_t, _p, packet) => {
      got.push(packet);
      if (got.length === n) {
        clearTimeout(t);
        resolve(got);
      }
    });
  });
}

/** The DISCONNECT a v5 server sends (its reason code), or null when the connection just closes. */
function serverDisconnect(c: MqttClient, ms = 5000): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no disconnect')), ms);
    c.once('disconnect', (p) => {
      clearTimeout(t);
      resolve(p.reasonCode ?? 0);
    });
    c.once('close', () => setTimeout(() => resolve(null), 50));
  });
}

/** SUBACK reason codes, refused ones included (mqtt.js rejects a SUBACK with any refusal). */
async function subscribeCodes(c: MqttClient, subs: Record<string, { qos: 0 | 1 }>): Promise<number[]> {
  try {
    return (await c.subscribeAsync(subs)).map((g) => g.qos);
  } catch (err) {
    const granted = (err as { packet?: { granted?: number[] } }).packet?.granted;
    if (!granted) throw err;
    return granted;
  }
}

/** A raw MQTT 5 session over TCP (what mqtt.js will not send: an alias over the server's maximum). */
async function rawV5(port: number): Promise<{ send: (p: object) => void; disconnect: Promise<number> }> {
  const sock = tcpConnect(port, '127.0.0.1');
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  sock.on('data', (d) => parser.parse(d));
  sock.on('error', () => {});
  const connack = new Promise<void>((r) => parser.on('packet', (p) => p.cmd === 'connack' && r()));
  const disconnect = new Promise<number>((r) =>
    parser.on('packet', (p) => p.cmd === 'disconnect' && r((p as { reasonCode?: number }).reasonCode ?? 0)),
  );
  const send = (p: object) => sock.write(mqttPacket.generate(p as mqttPacket.Packet, { protocolVersion: 5 }));
  send({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 5,
    clean: true,
    clientId: 'raw',
    keepalive: 30,
  });
  await connack;
  return { send, disconnect };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function run(
  cmd: string,
  args: string[],
  ms = 10_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: ms }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('edge: MQTT 5 on the embedded broker', () => {
  let e: Edge;
  before(async () => {
    e = await startEdge({
      auth: {
        anonymous: true,
        users: [
          { username: 'alice', password: 'alice-pw' },
          { username: 'bob', password: 'bob-pw' },
        ],
      },
      acl: {
        grants: [
          { who: 'anonymous', publish: ['#'], subscribe: ['#'] },
          { who: 'user:alice', publish: ['telemetry/alice/#', 'cmd/alice/#'], subscribe: ['cmd/alice/#'] },
          { who: 'user:bob', publish: ['telemetry/bob/#'], subscribe: ['cmd/bob/#'] },
        ],
      },
      mqtt: { maxPacketBytes: 8192, topicAliasMaximum: 4, sessionExpiryMaxS: 600 },
    });
  });
  after(() => e.stop());

  for (const t of ['tcp', 'ws'] as const) {
    it(`${t}: CONNACK advertises the limits and shared subscriptions; a v3.1.1 client still connects`, async () => {
      const { c, connack } = await connect(e, t, { properties: { sessionExpiryInterval: 100_000 } });
      assert.equal(connack.reasonCode, 0);
      assert.equal(connack.properties?.topicAliasMaximum, 4);
      assert.equal(connack.properties?.maximumPacketSize, 8192);
      assert.equal(connack.properties?.sessionExpiryInterval, 600, 'clamped to edge.mqtt.sessionExpiryMaxS');
      assert.notEqual(connack.properties?.sharedSubscriptionAvailable, false);
      c.end(true);
      const old = await client(e, t, { protocolVersion: 4 });
      assert.equal(old.options.protocolVersion, 4);
      old.end(true);
    });

    it(`${t}: wrong password: CONNACK 0x86; logged at info with the client id and reason`, async () => {
      await assert.rejects(
        connect(e, t, { username: 'alice', password: 'nope', clientId: `bad-${t}` }),
        (err: Error & { code?: number }) => err.code === 0x86,
      );
      const line = await until(
        () => e.logs.lines.find((l) => l.msg === 'mqtt connection refused' && l.client === `bad-${t}`),
        3000,
        'refusal log line',
      );
      assert.equal(line.level, 'info');
      assert.equal(line.protocol, 'mqtt5');
      assert.match(String(line.reason), /bad user ?name or password/);
      assert.ok(!e.logs.text().includes('nope'), 'no password in the log');
    });

    it(`${t}: enhanced authentication is not offered: CONNACK 0x8C (Bad authentication method)`, async () => {
      await assert.rejects(
        connect(e, t, { properties: { authenticationMethod: 'SCRAM-SHA-256' } }),
        (err: Error & { code?: number }) => err.code === 0x8c,
      );
    });

    it(`${t}: PUBACK 0x87 and SUBACK 0x87 for what the ACL refuses; the connection stays`, async () => {
      const c = await client(e, t, { username: 'alice', password: 'alice-pw' });
      await c.publishAsync('telemetry/alice/env', JSON.stringify({ t: 1 }), { qos: 1 });
      await assert.rejects(
        c.publishAsync('telemetry/bob/env', JSON.stringify({ t: 666 }), { qos: 1 }),
        (err: Error & { code?: number }) => err.code === 0x87,
      );
      assert.deepEqual(
        await subscribeCodes(c, { 'cmd/alice/#': { qos: 1 }, 'cmd/bob/#': { qos: 1 } }),
        [1, 0x87],
      );
      assert.equal(c.connected, true);
      await c.publishAsync('telemetry/alice/env', JSON.stringify({ t: 2 }), { qos: 1 });
      c.end(true);
      const r = await e.get('/api/edge/query?measurement=env&field=t&device=bob&from=0');
      assert.deepEqual(r.body.points ?? [], [], 'nothing stored for the refused topic');
    });

    it(`${t}: user properties, content type, correlation data and message expiry reach the subscriber`, async () => {
      const sub = await client(e, t);
      await sub.subscribeAsync('pass/through', { qos: 1 });
      const got = collect(sub, 1);
      const pub = await client(e, t);
      await pub.publishAsync('pass/through', Buffer.from('{"a":1}'), {
        qos: 1,
        properties: {
          userProperties: { site: 'north', seq: ['1', '2'] },
          contentType: 'application/json',
          correlationData: Buffer.from('c0ffee'),
          responseTopic: 'pass/reply',
          messageExpiryInterval: 30,
          payloadFormatIndicator: true,
        },
      });
      const [p] = await got;
      assert.deepEqual({ ...p?.properties?.userProperties }, { site: 'north', seq: ['1', '2'] });
      assert.equal(p?.properties?.contentType, 'application/json');
      assert.equal(p?.properties?.correlationData?.toString(), 'c0ffee');
      assert.equal(p?.properties?.responseTopic, 'pass/reply');
      assert.ok(
        (p?.properties?.messageExpiryInterval ?? 0) > 0 && (p?.properties?.messageExpiryInterval ?? 99) <= 30,
      );
      sub.end(true);
      pub.end(true);
    });

    it(`${t}: topic aliases in, telemetry stored under the full topic; an alias over the maximum: DISCONNECT 0x94`, async () => {
      const c = await client(e, t, { clientId: `alias-${t}` });
      await c.publishAsync(`telemetry/alias-${t}/env`, JSON.stringify({ v: 1 }), {
        qos: 1,
        properties: { topicAlias: 2 },
      });
      await c.publishAsync('', JSON.stringify({ v: 2 }), { qos: 1, properties: { topicAlias: 2 } });
      const points = await until(async () => {
        const r = await e.get(`/api/edge/query?measurement=env&field=v&device=alias-${t}&from=0`);
        return r.body.points?.length === 2 && r.body.points;
      });
      assert.deepEqual(points.map((p: { value: number }) => p.value).sort(), [1, 2]);
      c.end(true);
      if (t === 'tcp') {
        const raw = await rawV5(e.mqttPort);
        raw.send({ cmd: 'publish', topic: 'x/y', payload: '1', qos: 0, properties: { topicAlias: 9 } });
        assert.equal(await raw.disconnect, 0x94, 'Topic Alias invalid');
      }
    });

    it(`${t}: maximum packet size: over edge.mqtt.maxPacketBytes, DISCONNECT 0x95; over the client's, not sent`, async () => {
      const small = await client(e, t, { properties: { maximumPacketSize: 512 } });
      await small.subscribeAsync('size/+', { qos: 1 });
      const got = collect(small, 1);
      const pub = await client(e, t);
      await pub.publishAsync('size/big', Buffer.alloc(2000, 1), { qos: 1 });
      await pub.publishAsync('size/small', Buffer.alloc(100, 1), { qos: 1 });
      const [p] = await got;
      assert.equal(p?.topic, 'size/small', 'the 2,000-byte message was not sent to a 512-byte client');
      const bye = serverDisconnect(pub);
      pub.publish('size/huge', Buffer.alloc(10_000, 1), { qos: 1 });
      assert.equal(await bye, 0x95);
      small.end(true);
      pub.end(true);
    });

    it(`${t}: session expiry and message expiry: a queued message past its expiry is not delivered`, async () => {
      const id = `persist-${t}`;
      const opts = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } };
      const a = await client(e, t, opts);
      await a.subscribeAsync('expiry/+', { qos: 1 });
      a.end(true);
      await sleep(100);
      const pub = await client(e, t);
      await pub.publishAsync('expiry/short', 'gone', { qos: 1, properties: { messageExpiryInterval: 1 } });
      await pub.publishAsync('expiry/long', 'kept', { qos: 1, properties: { messageExpiryInterval: 120 } });
      pub.end(true);
      await sleep(2200);
      const got: string[] = [];
      const url = t === 'ws' ? `ws://127.0.0.1:${e.app.port}/mqtt` : `mqtt://127.0.0.1:${e.mqttPort}`;
      const b = mqtt.connect(url, { reconnectPeriod: 0, ...V5, ...opts });
      b.on('message', (topic) => got.push(topic));
      const connack = await new Promise<mqtt.IConnackPacket>((r) => b.once('connect', r));
      assert.equal(connack.sessionPresent, true, 'the session outlived the connection');
      await until(() => got.length >= 1, 3000, 'queued message');
      await sleep(200);
      assert.deepEqual(got, ['expiry/long']);
      b.end(true);
      // A session with a 1 s expiry is gone 1.5 s after its connection.
      const s = await client(e, t, {
        clientId: `${id}-1s`,
        clean: false,
        properties: { sessionExpiryInterval: 1 },
      });
      await s.subscribeAsync('expiry/+', { qos: 1 });
      s.end(true);
      await sleep(1600);
      const again = await connect(e, t, {
        clientId: `${id}-1s`,
        clean: false,
        properties: { sessionExpiryInterval: 1 },
      });
      assert.equal(again.connack.sessionPresent, false, 'expired session not resumed');
      again.c.end(true);
    });

    it(`${t}: shared subscriptions split the messages in a group; a plain subscriber gets all`, async () => {
      const members = await Promise.all([client(e, t), client(e, t)]);
      const all = await client(e, t);
      for (const m of members) await m.subscribeAsync(`$share/workers/jobs/${t}/+`, { qos: 1 });
      await all.subscribeAsync(`jobs/${t}/+`, { qos: 1 });
      const counts = [0, 0];
      const seen = new Set<string>();
      for (const [i, m] of members.entries())
        m.on('message', (topic, payload) => {
          assert.match(topic, new RegExp(`^jobs/${t}/`), 'the member sees the published topic');
          counts[i] = (counts[i] ?? 0) + 1;
          seen.add(payload.toString());
        });
      const everything = collect(all, 20);
      const pub = await client(e, t);
      for (let i = 0; i < 20; i++) await pub.publishAsync(`jobs/${t}/a`, String(i), { qos: 1 });
      await everything;
      await until(() => seen.size === 20, 3000, 'every job once');
      assert.equal((counts[0] ?? 0) + (counts[1] ?? 0), 20, 'each message to exactly one member');
      assert.ok((counts[0] ?? 0) >= 5 && (counts[1] ?? 0) >= 5, `split ${counts}`);
      // Unsubscribing leaves the group: the other member now gets everything.
      await members[0]?.unsubscribeAsync(`$share/workers/jobs/${t}/+`);
      const before = counts[1] ?? 0;
      for (let i = 0; i < 4; i++) await pub.publishAsync(`jobs/${t}/b`, `u${i}`, { qos: 1 });
      await until(() => (counts[1] ?? 0) === before + 4, 3000, 'the remaining member gets all');
      // A 3.1.1 client may join a group too (as with Mosquitto).
      const old = await client(e, t, { protocolVersion: 4 });
      await old.subscribeAsync(`$share/workers/jobs/${t}/+`, { qos: 1 });
      const oldGot = collect(old, 1);
      const before2 = counts[1] ?? 0;
      for (let i = 0; i < 2; i++) await pub.publishAsync(`jobs/${t}/c`, `o${i}`, { qos: 1 });
      assert.equal((await oldGot)[0]?.topic, `jobs/${t}/c`);
      await until(() => (counts[1] ?? 0) === before2 + 1, 3000, 'one each');
      old.end(true);
      assert.ok(!e.logs.lines.some((l) => l.level === 'error'), 'no error logged');
      for (const c of [...members, all, pub]) c.end(true);
    });

    it(`${t}: a persistent member queues while away; a clean start of the same client id leaves the group`, async () => {
      const filter = `$share/away/away/${t}/+`;
      const id = `away-${t}`;
      const persistent = { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } };
      const x = await client(e, t, persistent);
      await x.subscribeAsync(filter, { qos: 1 });
      x.end(true);
      await sleep(100);
      const pub = await client(e, t);
      // Nobody connected: the persistent member's session queues it.
      await pub.publishAsync(`away/${t}/q`, 'queued', { qos: 1 });
      const back = mqtt.connect(
        t === 'ws' ? `ws://127.0.0.1:${e.app.port}/mqtt` : `mqtt://127.0.0.1:${e.mqttPort}`,
        { reconnectPeriod: 0, ...V5, ...persistent },
      );
      const [queued] = await collect(back, 1);
      assert.equal(queued?.topic, `away/${t}/q`);
      back.end(true);
      await sleep(100);
      // The same id again with a clean start and no subscription: no longer a member.
      const y = await client(e, t, { clientId: id, clean: true });
      const b = await client(e, t);
      await b.subscribeAsync(filter, { qos: 1 });
      const all = collect(b, 6);
      for (let i = 0; i < 6; i++) await pub.publishAsync(`away/${t}/n`, String(i), { qos: 1 });
      assert.equal((await all).length, 6, 'every message to the one real member');
      for (const c of [y, b, pub]) c.end(true);
    });

    it(`${t}: a shared subscription does not bypass the ACL; Kapok's private share topics are closed`, async () => {
      const alice = await client(e, t, { username: 'alice', password: 'alice-pw' });
      const granted = await subscribeCodes(alice, {
        '$share/g/cmd/alice/#': { qos: 1 },
        '$share/g/cmd/bob/#': { qos: 1 },
        '$share/g/#': { qos: 1 },
        '$kapok/share/#': { qos: 1 },
        '$kapok/share/1/#': { qos: 1 },
      });
      assert.deepEqual(granted, [1, 0x87, 0x87, 0x87, 0x87]);
      // Anonymous here may subscribe to anything but still not to Kapok's private topics.
      const anon = await client(e, t);
      const g2 = await subscribeCodes(anon, { '$kapok/share/#': { qos: 0 }, '$kapok/dropped': { qos: 0 } });
      assert.deepEqual(g2, [0x87, 0x87]);
      // What alice gets through her share: her own command topic only.
      const got = collect(alice, 1);
      const pub = await client(e, t);
      await pub.publishAsync('cmd/bob/reboot', 'not for alice', { qos: 1 });
      await pub.publishAsync('cmd/alice/reboot', 'for alice', { qos: 1 });
      const [p] = await got;
      assert.equal(p?.topic, 'cmd/alice/reboot');
      for (const c of [alice, anon, pub]) c.end(true);
    });
  }

  it('mosquitto_pub/sub -V mqttv5: properties through, shared subscription, PUBACK 0x87, CONNACK 0x86', async () => {
    const port = String(e.mqttPort);
    const sub = spawn('mosquitto_sub', [
      ...['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-q', '1', '-C', '1', '-W', '10'],
      ...['-t', '$share/mq/mosq/+', '-F', '%t|%p|%C|%P|%E'],
    ]);
    let out = '';
    sub.stdout.on('data', (d) => {
      out += d;
    });
    const done = new Promise<number | null>((r) => sub.once('exit', r));
    await sleep(400);
    const pub = await run('mosquitto_pub', [
      ...['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-q', '1', '-t', 'mosq/x', '-m', '{"a":1}'],
      ...['-D', 'publish', 'content-type', 'application/json', '-D', 'publish', 'user-property', 'k', 'v'],
      ...['-D', 'publish', 'message-expiry-interval', '60'],
    ]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(await done, 0);
    const [topic, payload, ct, props, expiry] = out.trim().split('|');
    assert.equal(topic, 'mosq/x');
    assert.equal(payload, '{"a":1}');
    assert.equal(ct, 'application/json');
    assert.match(props ?? '', /k:v/);
    assert.ok(Number(expiry) > 0 && Number(expiry) <= 60, `expiry ${expiry}`);
    // Alice may not publish to bob's telemetry: the PUBACK says 0x87 and mosquitto_pub reports it.
    const refused = await run('mosquitto_pub', [
      ...['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-q', '1', '-u', 'alice', '-P', 'alice-pw'],
      ...['-t', 'telemetry/bob/env', '-m', '{"t":1}', '-d'],
    ]);
    assert.match(refused.stdout + refused.stderr, /not authori[sz]ed|PUBACK.*\(135\)|rc135|reason.*135/i);
    const bad = await run('mosquitto_pub', [
      ...['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-u', 'alice', '-P', 'wrong', '-i', 'mosq-bad'],
      ...['-t', 'x', '-m', 'y'],
    ]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /bad user ?name or password/i);
    await until(() =>
      e.logs.lines.some((l) => l.msg === 'mqtt connection refused' && l.client === 'mosq-bad'),
    );
  });

  it('mosquitto_pub -V mqttv5 honours the Maximum Packet Size of the CONNACK (does not send a larger one)', async () => {
    const big = await run('mosquitto_pub', [
      ...['-h', '127.0.0.1', '-p', String(e.mqttPort), '-V', 'mqttv5', '-q', '1', '-t', 'size/x'],
      ...['-m', 'x'.repeat(10_000), '-d'],
    ]);
    assert.match(big.stdout, /received CONNACK \(0\)/);
    assert.doesNotMatch(big.stdout, /sending PUBLISH/);
    const ok = await run('mosquitto_pub', [
      ...['-h', '127.0.0.1', '-p', String(e.mqttPort), '-V', 'mqttv5', '-q', '1', '-t', 'size/x'],
      ...['-m', 'x'.repeat(1000), '-d'],
    ]);
    assert.match(ok.stdout, /sending PUBLISH/);
    assert.match(ok.stdout, /received PUBACK \(Mid: 1, RC:0\)/);
  });
});

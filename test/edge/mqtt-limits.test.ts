import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import mqtt from 'mqtt';
import { type Edge, startEdge } from './setup.js';

// Issue 13 item 5: the embedded broker's port has a CONNECT timeout, an idle timeout and a per-IP cap.
describe('edge: MQTT connection limits', () => {
  let e: Edge;
  before(async () => {
    e = await startEdge({ mqtt: { maxConnectionsPerIp: 2, connectTimeoutMs: 300, idleTimeoutMs: 1500 } });
  });
  after(() => e.stop());

  const closedAfter = (sock: ReturnType<typeof tcpConnect>) =>
    new Promise<number>((r) => {
      const t0 = Date.now();
      sock.on('error', () => {});
      sock.once('close', () => r(Date.now() - t0));
    });

  it('refuses the connection over edge.mqtt.maxConnectionsPerIp and counts it', async () => {
    const a = await e.client();
    const b = await e.client();
    const third = mqtt.connect(`mqtt://127.0.0.1:${e.mqttPort}`, {
      reconnectPeriod: 0,
      connectTimeout: 3000,
    });
    third.on('error', () => {});
    const outcome = await new Promise<string>((r) => {
      third.once('connect', () => r('connected'));
      third.once('close', () => r('closed'));
    });
    third.end(true);
    assert.equal(outcome, 'closed', 'the third connection from 127.0.0.1 is refused');
    const m = await (await fetch(`${e.base}/metrics`)).text();
    assert.match(m, /kapok_edge_mqtt_connections_refused_total\{reason="per_ip"[^}]*\} 1/);
    a.end(true);
    await b.endAsync();
    await new Promise((r) => setTimeout(r, 100));
    const c = await e.client(); // slots are given back on close
    c.end(true);
  });

  it('closes a socket that sends no CONNECT within connectTimeoutMs', async () => {
    const s = tcpConnect(e.mqttPort, '127.0.0.1');
    const ms = await closedAfter(s);
    assert.ok(ms >= 250 && ms < 1400, `closed after ${ms} ms`);
  });

  it('closes a connected client with keepalive 0 after idleTimeoutMs without traffic', async () => {
    const c = await e.client({ keepalive: 0 });
    const t0 = Date.now();
    await new Promise<void>((r) => c.once('close', () => r()));
    const ms = Date.now() - t0;
    assert.ok(ms >= 1300 && ms < 4000, `closed after ${ms} ms`);
  });
});

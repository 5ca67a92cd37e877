import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface EdgeMetrics {
  received: Counter;
  decoded: Counter;
  failed: Counter;
  spooled: Counter;
  stored: Counter<'sink'>;
  sinkFailures: Counter<'sink'>;
  dropped: Counter<'reason'>;
  spoolBytes: Gauge;
  batchSeconds: Histogram<'sink'>;
  lagSeconds: Histogram<'sink'>;
  wsClients: Gauge;
  wsDropped: Counter<'reason'>;
  mqttRefused: Counter<'action'>;
  mqttSessionsEnded: Counter<'reason'>;
  mqttConnectionsRefused: Counter<'reason'>;
}

export function createEdgeMetrics(registry: Registry): EdgeMetrics {
  const registers = [registry];
  return {
    received: new Counter({ name: 'kapok_edge_received_total', help: 'MQTT messages received.', registers }),
    decoded: new Counter({
      name: 'kapok_edge_decoded_points_total',
      help: 'Points decoded from spooled messages.',
      registers,
    }),
    failed: new Counter({
      name: 'kapok_edge_decode_failed_total',
      help: 'Messages that failed to decode (dead-lettered).',
      registers,
    }),
    spooled: new Counter({
      name: 'kapok_edge_spooled_total',
      help: 'Messages appended to the spool.',
      registers,
    }),
    stored: new Counter({
      name: 'kapok_edge_stored_points_total',
      help: 'Points confirmed by each sink.',
      labelNames: ['sink'],
      registers,
    }),
    sinkFailures: new Counter({
      name: 'kapok_edge_sink_failures_total',
      help: 'Failed sink batch writes (retried).',
      labelNames: ['sink'],
      registers,
    }),
    dropped: new Counter({
      name: 'kapok_edge_dropped_total',
      help: 'Messages not stored, by reason (spool_full: not acknowledged; drop_oldest: removed from a full spool).',
      labelNames: ['reason'],
      registers,
    }),
    spoolBytes: new Gauge({
      name: 'kapok_edge_spool_bytes',
      help: 'Bytes of spooled messages not yet confirmed by every sink.',
      registers,
    }),
    batchSeconds: new Histogram({
      name: 'kapok_edge_sink_batch_seconds',
      help: 'Sink batch write latency.',
      labelNames: ['sink'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }),
    lagSeconds: new Histogram({
      name: 'kapok_edge_end_to_end_lag_seconds',
      help: 'Time from receipt to sink confirmation (oldest message of each batch).',
      labelNames: ['sink'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
      registers,
    }),
    wsClients: new Gauge({
      name: 'kapok_edge_ws_clients',
      help: 'Live WebSocket telemetry clients.',
      registers,
    }),
    wsDropped: new Counter({
      name: 'kapok_edge_ws_dropped_total',
      help: 'WebSocket frames dropped (queue_full) and clients closed (slow_client).',
      labelNames: ['reason'],
      registers,
    }),
    mqttRefused: new Counter({
      name: 'kapok_edge_mqtt_refused_total',
      help: 'MQTT PUBLISHes dropped and SUBSCRIBEs refused by the authorization model (edge.acl), by action.',
      labelNames: ['action'],
      registers,
    }),
    mqttSessionsEnded: new Counter({
      name: 'kapok_edge_mqtt_sessions_ended_total',
      help: 'MQTT sessions ended by Kapok: token expired, or device revoked (by any process).',
      labelNames: ['reason'],
      registers,
    }),
    mqttConnectionsRefused: new Counter({
      name: 'kapok_edge_mqtt_connections_refused_total',
      help: 'MQTT connections refused at accept: per_ip (edge.mqtt.maxConnectionsPerIp) or total (maxConnections).',
      labelNames: ['reason'],
      registers,
    }),
  };
}

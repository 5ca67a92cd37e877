import mqtt, { type MqttClient } from 'mqtt';

/**
 * `kapok demo`'s simulated devices: each publishes a JSON reading every second (QoS 1) on
 * `telemetry/<id>/env`, a slow sine plus noise so the charts move. They connect anonymously, which
 * the demo's edge.acl grants for `telemetry/#`.
 */
export async function startDevices(url: string, count: number): Promise<{ stop(): Promise<void> }> {
  const clients: MqttClient[] = [];
  const timers: NodeJS.Timeout[] = [];
  for (let i = 1; i <= count; i++) {
    const id = `demo-pump-${i}`;
    const c = mqtt.connect(url, { clientId: `${id}-${process.pid}`, reconnectPeriod: 1000 });
    clients.push(c);
    const base = 20 + i;
    let t = 0;
    timers.push(
      setInterval(() => {
        if (!c.connected) return;
        t++;
        const reading = {
          temp: Math.round((base + 2 * Math.sin(t / 30) + Math.random() * 0.2) * 100) / 100,
          pressure: Math.round((1.2 + 0.1 * Math.cos(t / 45)) * 1000) / 1000,
          on: true,
        };
        c.publish(`telemetry/${id}/env`, JSON.stringify(reading), { qos: 1 });
      }, 1000),
    );
  }
  return {
    async stop() {
      for (const t of timers) clearInterval(t);
      await Promise.all(clients.map((c) => c.endAsync()));
    },
  };
}

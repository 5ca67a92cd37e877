import type { KapokConfig } from '../config.js';

/**
 * The short block `kapok up` prints on stderr once ready (the logs stay JSON on stdout): what runs,
 * where, and the next command to try for each capability. The addresses are the ones this host
 * answers on; 0.0.0.0 is shown as 127.0.0.1, the address to try from this machine.
 */
export function startBanner(c: KapokConfig, httpPort: number): string {
  const host = c.http.host === '0.0.0.0' || c.http.host === '::' ? '127.0.0.1' : c.http.host;
  const base = `http://${host}:${httpPort}`;
  const lines = [`kapok is running: ${base}  (/healthz, /readyz, /metrics; profile ${c.profile})`];
  const row = (name: string, what: string, next: string) =>
    lines.push(`  ${name.padEnd(9)} ${what}`, `  ${''.padEnd(9)} try: ${next}`);
  if (c.gateway.enabled)
    row(
      'gateway',
      c.gateway.models.length
        ? `${base}/v1 (OpenAI-compatible): ${c.gateway.models.map((m) => m.name).join(', ')}`
        : `${base}/v1 (OpenAI-compatible): no models yet; set gateway.providers and gateway.models (docs/gateway.md)`,
      'kapok keys create --name me',
    );
  if (c.inference.enabled)
    row(
      'inference',
      `${base}/v2 (Open Inference Protocol), gRPC :${c.grpc.port}; models from ${c.inference.repository}/<name>/<version>/model.onnx`,
      'kapok models list',
    );
  if (c.edge.enabled)
    row(
      'edge',
      c.edge.mqtt.mode === 'embedded'
        ? `MQTT on :${c.edge.mqtt.port}${c.edge.mqtt.wsPath ? ` and ${base.replace('http', 'ws')}${c.edge.mqtt.wsPath}` : ''}`
        : 'MQTT from the external broker (edge.mqtt.url)',
      'kapok edge tail',
    );
  if (c.v2x.enabled)
    row(
      'v2x',
      `${base}/api/v2x, live view ${base.replace('http', 'ws')}/ws/v2x`,
      // The simulator connects without credentials: refused until edge lets anonymous clients in.
      c.edge.auth.anonymous
        ? 'kapok v2x simulate'
        : 'kapok v2x simulate (after an anonymous edge.acl grant: docs/v2x.md#quick-start)',
    );
  if (c.gm.enabled) row('gm', `${base}/api/gm (SM2/SM9 device identity)`, 'kapok device register SN-0001');
  if (c.audit.enabled) row('audit', `${base}/api/audit`, 'kapok audit verify');
  if (c.control.enabled)
    row(
      'control',
      `${base}/api/control/status (config from ${c.control.source === 'etcd' ? 'the file and etcd' : 'the file'}, applied live)`,
      'edit the config, or kill -HUP <pid>',
    );
  if (c.jobs.enabled)
    row('jobs', `${base}/api/jobs, live ${base.replace('http', 'ws')}/ws/jobs`, 'kapok jobs submit FILE');
  if (c.console.enabled)
    row(
      'console',
      `${base}/console (web console)`,
      c.admin.tokens.length ? 'log in with a token of admin.tokens' : 'open it from this host (loopback)',
    );
  lines.push('Stop with Ctrl-C (a clean drain). Docs: README.md and docs/.');
  return `${lines.join('\n')}\n`;
}

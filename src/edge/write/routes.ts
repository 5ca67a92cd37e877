import { isAscii, isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { isKapokError, KapokError } from '../../core/errors.js';
import { errorHandler } from '../../core/http/errors.js';
import { decodeLineProtocol, type Precision } from '../decode/line-protocol.js';
import { DecodeError, type Point } from '../decode/point.js';
import { type Acl, canPublish } from '../intake/acl.js';
import type { MqttIdentity } from '../intake/auth.js';
import type { Spool } from '../spool/spool.js';
import type { WriteAuthenticate } from './auth.js';
import { readBody } from './body.js';
import { sendWriteError, type WriteApi } from './errors.js';
import { chunk, writeTopic } from './spooled.js';

export interface WriteRoutesOptions {
  authenticate: WriteAuthenticate;
  acl: Acl;
  /** edge.topicPattern: a point's telemetry topic (ACL and live fan-out) is built from it. */
  topicPattern: string;
  spool: Spool;
  maxBodyBytes: number;
  maxLineBytes: number;
  registry: Registry;
  /** After the spool commit: decoded points per chunk id (cache), fan-out, runners. */
  onSpooled(ids: number[], chunks: Point[][]): void;
  isStopped(): boolean;
}

/** Topic a device writing over MQTT would publish these points to (for the ACL and the fan-out). */
export function topicBuilder(pattern: string): (device: string, measurement: string) => string {
  const levels = pattern.split('/').filter((l, i, all) => !(l === '#' && i === all.length - 1));
  // A `+` level has no value over HTTP: `http` stands in (a grant with `+` there covers it).
  return (device, measurement) =>
    levels
      .map((l) => (l === '{device}' ? device : l === '{measurement}' ? measurement : l === '+' ? 'http' : l))
      .join('/');
}

/** Topic levels must not be forged through names: no level separator or wildcard in them. */
const NOT_A_LEVEL = /[/+#\0]/;

const V1_PRECISION: Record<string, Precision> = {
  n: 'ns',
  ns: 'ns',
  u: 'us',
  us: 'us',
  µ: 'us',
  ms: 'ms',
  s: 's',
};
const V2_PRECISION: Record<string, Precision> = { ns: 'ns', us: 'us', ms: 'ms', s: 's' };

type Q = Record<string, string | undefined>;

function bad(msg: string, line?: number): KapokError {
  return new KapokError('KAPOK_EDGE_WRITE_INVALID', msg, line === undefined ? {} : { details: { line } });
}

/** 1-based line number of the first point line at or after `offset` (skips blanks and comments). */
function lineAt(text: string, offset: number): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < offset; i = text.indexOf('\n', i + 1)) n++;
  let at = offset;
  for (;;) {
    const end = text.indexOf('\n', at);
    const line = text.slice(at, end < 0 ? undefined : end).trim();
    if (line !== '' && !line.startsWith('#')) return n;
    if (end < 0) return n;
    at = end + 1;
    n++;
  }
}

/** A line of the body, cut for an error message. */
function excerpt(text: string, line: number): string {
  let start = 0;
  for (let n = 1; n < line; n++) start = text.indexOf('\n', start) + 1;
  const end = text.indexOf('\n', start);
  const s = text.slice(start, end < 0 ? undefined : end).replace(/\r$/, '');
  return s.length > 100 ? `${s.slice(0, 100)}…` : s;
}

/**
 * `POST /write` (InfluxDB 1.x) and `POST /api/v2/write` (InfluxDB 2.x): a batch of line protocol,
 * stored like MQTT telemetry. A request is all or nothing: every line parses, the writer may write
 * every point (the MQTT ACL on each point's telemetry topic), and the whole batch is committed to
 * the spool before the 204; otherwise nothing of it is kept and the error names the first bad line.
 */
export async function writeRoutes(app: FastifyInstance, o: WriteRoutesOptions): Promise<void> {
  const requests = new Counter({
    name: 'kapok_edge_write_requests_total',
    help: 'InfluxDB write API requests (/write, /api/v2/write) by api and result (ok or the Kapok error code).',
    labelNames: ['api', 'result'] as const,
    registers: [o.registry],
  });
  const written = new Counter({
    name: 'kapok_edge_write_points_total',
    help: 'Points accepted through the InfluxDB write API (spooled before the 204).',
    registers: [o.registry],
  });
  const topicOf = topicBuilder(o.topicPattern);

  app.removeAllContentTypeParsers();
  // Telegraf sends text/plain, curl form-urlencoded, some clients nothing: the body is bytes.
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: o.maxBodyBytes }, (_req, body, done) =>
    done(null, body),
  );

  const apiOf = (req: FastifyRequest): WriteApi => (req.routeOptions.url === '/write' ? 'v1' : 'v2');
  app.setErrorHandler(
    errorHandler({
      bodyLimitKey: 'edge.write.maxBodyBytes',
      send: (reply, err) => {
        const api = apiOf(reply.request);
        requests.inc({ api, result: err.code });
        return sendWriteError(api, reply, err);
      },
    }),
  );

  // Parameters and credentials are checked before the body is read: a stranger cannot make Kapok
  // take in (and inflate) maxBodyBytes per request.
  const writers = new WeakMap<FastifyRequest, { who: MqttIdentity; precision: Precision }>();
  app.addHook('onRequest', async (req) => {
    const api = apiOf(req);
    const q = req.query as Q;
    const precision = parsePrecision(api, q.precision);
    const target = api === 'v1' ? q.db : q.bucket;
    if (!target)
      throw bad(
        api === 'v1' ? 'database is required: add ?db=<name>' : 'bucket is required: add ?bucket=<name>',
      );
    if (target.length > 256) throw bad(`${api === 'v1' ? 'db' : 'bucket'} is longer than 256 characters`);
    const who = await o.authenticate(req.headers, q);
    if (!who)
      throw new KapokError(
        'KAPOK_EDGE_WRITE_UNAUTHORIZED',
        'unauthorized access: give an edge.auth.users user (Token user:password, Basic, or ?u=&p=) or a device token (Token <token>)',
      );
    writers.set(req, { who, precision });
  });

  const handle = (api: WriteApi) => {
    return async (req: FastifyRequest, reply: FastifyReply) => {
      const { who, precision } = writers.get(req) as { who: MqttIdentity; precision: Precision };
      if (o.isStopped()) throw new KapokError('KAPOK_HTTP_SHUTTING_DOWN', 'edge is stopping; retry');
      let bytes = await readBody(
        req.body instanceof Buffer ? req.body : Buffer.alloc(0),
        header(req, 'content-encoding'),
        o,
      );
      const subject = who.subject;
      const defaultDevice =
        subject.kind === 'device' ? subject.device : subject.kind === 'user' ? subject.user : 'anonymous';
      if (who.open) {
        // A device of a protected gm group seals its body as it seals MQTT payloads (docs/edge.md).
        try {
          bytes = await who.open('$write', bytes);
        } catch {
          throw new KapokError(
            'KAPOK_EDGE_WRITE_FORBIDDEN',
            `device ${defaultDevice} is in a protected group: seal the body (SM4-GCM) for topic $write`,
          );
        }
      }
      const text = utf8(bytes);
      const ends: number[] = [];
      const receivedAt = Date.now();
      let points: Point[];
      try {
        points = decodeLineProtocol(text, defaultDevice, receivedAt, precision, ends);
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        const line = err.line;
        const reason = line === undefined ? err.message : err.message.replace(/^line \d+: /, '');
        if (line === undefined) throw bad(`unable to parse the body: ${reason}`);
        throw bad(`unable to parse '${excerpt(text, line)}': ${reason} (line ${line})`, line);
      }
      authorize(points, who, text, ends);
      const chunks = chunk(bytes, text, points, ends);
      const topic = writeTopic(precision, defaultDevice);
      const ids = o.spool.appendAll(chunks.map((c) => ({ topic, payload: c.payload, receivedAt })));
      if (isKapokError(ids)) throw ids;
      o.onSpooled(
        ids,
        chunks.map((c) => c.points),
      );
      written.inc(points.length);
      requests.inc({ api, result: 'ok' });
      return reply.code(204).send();
    };
  };

  /** Every point must be one the writer could publish over MQTT (least privilege: no more). */
  const authorize = (points: Point[], who: MqttIdentity, text: string, ends: number[]) => {
    const s = who.subject;
    const rights = o.acl.rightsOf(s);
    const seen = new Map<string, boolean>();
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as Point;
      const key = `${p.device}\0${p.measurement}`;
      let ok = seen.get(key);
      if (ok === undefined) {
        const where = () => lineAt(text, i === 0 ? 0 : (ends[i - 1] as number));
        if (NOT_A_LEVEL.test(p.device) || NOT_A_LEVEL.test(p.measurement)) {
          const line = where();
          throw bad(
            `unable to parse '${excerpt(text, line)}': device and measurement may not contain / + # (line ${line})`,
            line,
          );
        }
        ok =
          (s.kind !== 'device' || p.device === s.device) &&
          (!o.acl.enabled || canPublish(rights, topicOf(p.device, p.measurement)));
        seen.set(key, ok);
        if (!ok) {
          const line = where();
          const name =
            s.kind === 'device' ? `device ${s.device}` : s.kind === 'user' ? `user ${s.user}` : 'anonymous';
          throw new KapokError(
            'KAPOK_EDGE_WRITE_FORBIDDEN',
            `${name} may not write measurement ${p.measurement.slice(0, 64)} of device ${p.device.slice(0, 64)} (line ${line}; topic ${topicOf(p.device, p.measurement).slice(0, 200)}): grant it in edge.acl, or write only your own device`,
            { details: { line } },
          );
        }
      }
    }
  };

  const route = { bodyLimit: o.maxBodyBytes };
  app.post('/write', route, handle('v1'));
  app.post('/api/v2/write', route, handle('v2'));
}

function parsePrecision(api: WriteApi, v: string | undefined): Precision {
  if (v === undefined || v === '') return 'ns';
  const p = (api === 'v1' ? V1_PRECISION : V2_PRECISION)[v];
  if (!p)
    throw bad(
      `precision=${v.slice(0, 20)} is not supported: use ${Object.keys(api === 'v1' ? V1_PRECISION : V2_PRECISION).join(', ')}`,
    );
  return p;
}

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

/** The body as text; native checks (simdutf) make the usual ASCII body a plain latin1 copy. */
function utf8(b: Buffer): string {
  if (isAscii(b)) return b.toString('latin1');
  if (!isUtf8(b)) throw bad('unable to parse the body: it is not valid UTF-8');
  // A BOM is not part of the first line (TextDecoder drops it; so does this).
  const bom = b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  return b.toString('utf8', bom);
}

/**
 * The one error catalogue. Every error Kapok raises has a stable code `KAPOK_<AREA>_<WHAT>`, an HTTP
 * status and a message that says what to do. Foreign errors (SQL, Redis, upstream HTTP, ...) are
 * turned into one of these at the adapter boundary; protocols keep their own wire shape (OpenAI's for
 * /v1, OIP's for /v2) but carry these codes. Every code is documented in docs/errors.md (a test checks).
 */

export interface ErrorSpec {
  readonly status: number;
  /** What the code means, for docs/errors.md and as a default message. */
  readonly summary: string;
}

export const ERROR_CATALOGUE = {
  // Configuration (exit code 2 at start).
  KAPOK_CONFIG_INVALID: {
    status: 500,
    summary: 'A configuration value is missing, of the wrong type or out of range.',
  },
  KAPOK_CONFIG_UNKNOWN_KEY: {
    status: 500,
    summary: 'The configuration names a key the schema does not have.',
  },
  KAPOK_CONFIG_PARSE: { status: 500, summary: 'The configuration file is not valid YAML.' },
  KAPOK_CONFIG_FILE: { status: 500, summary: 'The configuration file cannot be read.' },
  KAPOK_CONFIG_ENV: {
    status: 500,
    summary: 'A KAPOK_* environment variable names no configuration key or has a bad value.',
  },
  KAPOK_CONFIG_PROFILE: {
    status: 500,
    summary: 'The `gov` profile was chosen outside a production government environment.',
  },
  KAPOK_CONFIG_DECRYPT: {
    status: 500,
    summary:
      'An encrypted config value (`enc:sm4gcm:v1:...`) cannot be decrypted: altered, truncated, moved to another key path or sealed under another key.',
  },
  KAPOK_CONFIG_KEY_UNKNOWN: {
    status: 500,
    summary:
      'An encrypted config value names a key id that KAPOK_CONFIG_KEYS / KAPOK_CONFIG_KEYS_FILE does not hold.',
  },
  KAPOK_CONFIG_KEYS: {
    status: 500,
    summary:
      'KAPOK_CONFIG_KEYS or the key file is malformed (`keyId=<32 hex digits>`, one per line or comma).',
  },
  // Start-up (exit code 1).
  KAPOK_START_PORT_IN_USE: {
    status: 500,
    summary: 'A port Kapok must listen on is taken by another process.',
  },
  KAPOK_START_DATA_DIR: { status: 500, summary: 'The data directory cannot be created or written.' },
  KAPOK_START_FAILED: { status: 500, summary: 'A component failed to start.' },
  // HTTP surface.
  KAPOK_HTTP_NOT_FOUND: { status: 404, summary: 'No route matches the method and path.' },
  KAPOK_HTTP_BODY_TOO_LARGE: { status: 413, summary: 'The request body exceeds http.bodyLimitBytes.' },
  KAPOK_HTTP_BAD_REQUEST: {
    status: 400,
    summary: 'The request is malformed (bad JSON, wrong content type, invalid parameters).',
  },
  KAPOK_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    summary: 'The request content type is not accepted by this endpoint.',
  },
  KAPOK_HTTP_TIMEOUT: {
    status: 408,
    summary: 'The request did not arrive completely within http.requestTimeoutMs.',
  },
  KAPOK_HTTP_HEADERS_TOO_LARGE: { status: 431, summary: 'The request headers exceed 16 KiB.' },
  KAPOK_HTTP_UNAUTHORIZED: { status: 401, summary: 'The request lacks valid credentials for an admin API.' },
  KAPOK_HTTP_ADMIN_DISABLED: {
    status: 403,
    summary:
      'No admin token is configured: the admin API answers loopback clients only (profile default) or no one (profile gov).',
  },
  KAPOK_HTTP_FORBIDDEN: {
    status: 403,
    summary: 'The admin token is known but its role is too low for this act (viewer < operator < admin).',
  },
  KAPOK_HTTP_CSRF: {
    status: 403,
    summary:
      'A request authorised by the console session cookie came from another origin, or changes something without the session CSRF token (X-Kapok-CSRF).',
  },
  KAPOK_CONSOLE_LOGIN_FAILED: {
    status: 401,
    summary: 'The console login was refused: the token is not one of admin.tokens.',
  },
  KAPOK_CONSOLE_NOT_BUILT: {
    status: 503,
    summary: 'The console front end is not built (dist/console is missing): run npm run build.',
  },
  KAPOK_HTTP_SHUTTING_DOWN: { status: 503, summary: 'Kapok is draining for shutdown and takes no new work.' },
  KAPOK_INTERNAL: {
    status: 500,
    summary: 'An unexpected error; the log line with the same request id has the detail.',
  },
  // Outgoing HTTP.
  KAPOK_UPSTREAM_UNAVAILABLE: {
    status: 502,
    summary: 'An outgoing HTTP call could not connect or timed out.',
  },
  // LLM gateway (/v1 answers in OpenAI's error shape with these codes; /api/gateway in Kapok's).
  KAPOK_GATEWAY_AUTH_MISSING: {
    status: 401,
    summary: 'A /v1 request carried no API key or bearer token.',
  },
  KAPOK_GATEWAY_AUTH_INVALID: {
    status: 401,
    summary: 'The API key or JWT is unknown, revoked, expired or fails verification.',
  },
  KAPOK_GATEWAY_BAD_REQUEST: {
    status: 400,
    summary: 'The request body is not a valid OpenAI request (missing or mistyped parameter).',
  },
  KAPOK_GATEWAY_MODEL_NOT_FOUND: { status: 404, summary: 'The requested model is not configured.' },
  KAPOK_GATEWAY_MODEL_FORBIDDEN: { status: 403, summary: 'This key or token may not use the model.' },
  KAPOK_GATEWAY_PREFERENCE_INVALID: {
    status: 400,
    summary: 'The model preference header holds a value outside gateway.preference.allowed.',
  },
  KAPOK_GATEWAY_RATE_LIMITED: {
    status: 429,
    summary: 'The key or subject is over its requests-per-minute or tokens-per-minute limit.',
  },
  KAPOK_GATEWAY_REQUEST_TOO_LARGE: {
    status: 429,
    summary: 'The request alone needs more tokens than the tokens-per-minute limit allows.',
  },
  KAPOK_GATEWAY_QUOTA_UNAVAILABLE: {
    status: 503,
    summary: 'The quota backend (KV) cannot be reached and gateway.limits.failOpen is false.',
  },
  KAPOK_GATEWAY_NO_TARGET: {
    status: 503,
    summary: 'Every target and fallback of the model has an open circuit or weight 0.',
  },
  KAPOK_GATEWAY_UPSTREAM_FAILED: {
    status: 502,
    summary: 'Every upstream attempt failed (connection, 429 or 5xx) within the retry budget.',
  },
  KAPOK_GATEWAY_UPSTREAM_TIMEOUT: {
    status: 504,
    summary: 'The upstream did not answer within its timeoutMs.',
  },
  KAPOK_GATEWAY_UPSTREAM_REJECTED: {
    status: 400,
    summary:
      'The upstream refused the request itself (e.g. context too long); its status and message are passed on.',
  },
  KAPOK_GATEWAY_STREAM_INTERRUPTED: {
    status: 502,
    summary:
      'The upstream stream broke off after data was sent; the client stream ends with this error event.',
  },
  KAPOK_GATEWAY_UNSUPPORTED: {
    status: 400,
    summary: 'The endpoint is not offered by the provider type behind this model.',
  },
  KAPOK_GATEWAY_KEY_NOT_FOUND: { status: 404, summary: 'No API key has that id or name.' },
  // Edge telemetry.
  KAPOK_EDGE_BAD_QUERY: {
    status: 400,
    summary: 'An /api/edge query has a bad parameter (range, aggregation, window or filter).',
  },
  KAPOK_EDGE_TOO_MANY_POINTS: {
    status: 400,
    summary: 'The query would return more windows or points than edge.query.maxPoints.',
  },
  KAPOK_EDGE_SPOOL_FULL: {
    status: 503,
    summary: 'The spool reached edge.spool.maxBytes with onFull reject; messages are not acknowledged.',
  },
  KAPOK_EDGE_SPOOL: { status: 500, summary: 'The on-disk spool cannot be opened or written.' },
  KAPOK_EDGE_SINK: { status: 502, summary: 'A sink write failed; the batch is retried with backoff.' },
  KAPOK_EDGE_MQTT: {
    status: 502,
    summary: 'The MQTT broker (embedded or external) failed to start or the connection broke.',
  },
  KAPOK_EDGE_NOT_AUTHORIZED: {
    status: 401,
    summary: "An MQTT client authenticated as one device published to another device's topic.",
  },
  KAPOK_EDGE_WRITE_INVALID: {
    status: 400,
    summary:
      'An InfluxDB write (/write, /api/v2/write) has a malformed line, parameter or gzip stream; nothing of it is stored.',
  },
  KAPOK_EDGE_WRITE_UNAUTHORIZED: {
    status: 401,
    summary:
      'An InfluxDB write carries no valid edge credentials (user, device token, or anonymous when allowed).',
  },
  KAPOK_EDGE_WRITE_FORBIDDEN: {
    status: 403,
    summary:
      "An InfluxDB write holds points the writer may not publish (edge.acl, or another device's points).",
  },
  KAPOK_EDGE_WRITE_TOO_LARGE: {
    status: 413,
    summary:
      'An InfluxDB write inflates past edge.write.maxBodyBytes, has a line over edge.write.maxLineBytes, or more than 100,000 lines.',
  },
  // V2X engine.
  KAPOK_V2X_DECODE: {
    status: 400,
    summary: 'A V2X message (UPER or JSON) does not decode as a CSAE 53 MessageFrame.',
  },
  KAPOK_V2X_ENCODE: {
    status: 400,
    summary: 'A value cannot be encoded as a CSAE 53 MessageFrame (missing field, wrong type, out of range).',
  },
  // Inference server (/v2 answers in OIP's {"error": "..."} shape; gRPC with status codes).
  KAPOK_INFERENCE_MODEL_NOT_FOUND: {
    status: 404,
    summary: 'No model, or no such version of it, is in the model repository.',
  },
  KAPOK_INFERENCE_MODEL_NOT_READY: {
    status: 503,
    summary: 'The model version exists but is not loaded (loading, failed to load, or unloaded).',
  },
  KAPOK_INFERENCE_BAD_REQUEST: {
    status: 400,
    summary:
      'An inference request does not match the model: input name, datatype, shape, element count or value.',
  },
  KAPOK_INFERENCE_QUEUE_FULL: {
    status: 429,
    summary: "The model version's queue holds maxQueue requests; retry later or add instances.",
  },
  KAPOK_INFERENCE_TIMEOUT: {
    status: 504,
    summary: 'The request did not finish within its deadline (timeoutMs); a queued request is dropped.',
  },
  KAPOK_INFERENCE_WORKER_CRASHED: {
    status: 500,
    summary: 'The worker running the request died; it is replaced and other requests continue.',
  },
  KAPOK_INFERENCE_RUN_FAILED: { status: 500, summary: 'ONNX Runtime failed to run the model on this input.' },
  KAPOK_INFERENCE_LOAD_FAILED: {
    status: 500,
    summary: 'A model version failed to load or warm up; the previous version keeps serving.',
  },
  KAPOK_INFERENCE_CHECKSUM: {
    status: 500,
    summary: "A model file's SHA-256 differs from config.yaml or model.onnx.sha256; it is not loaded.",
  },
  KAPOK_INFERENCE_MODEL_CONFIG: {
    status: 500,
    summary: "A model's config.yaml is not valid YAML or has a bad key; the model keeps its old settings.",
  },
  // Store port (SQL).
  KAPOK_STORE_UNAVAILABLE: { status: 503, summary: 'The SQL store cannot be reached or opened.' },
  KAPOK_STORE_QUERY: { status: 500, summary: 'A SQL statement failed.' },
  KAPOK_STORE_CONFLICT: { status: 409, summary: 'A write violates a uniqueness or foreign-key constraint.' },
  KAPOK_STORE_MIGRATION: {
    status: 500,
    summary: 'A schema migration failed or the applied history does not match the code.',
  },
  KAPOK_STORE_CLOSED: { status: 503, summary: 'The store was used after it was closed.' },
  // KV port.
  KAPOK_KV_UNAVAILABLE: { status: 503, summary: 'The key-value backend cannot be reached.' },
  KAPOK_KV_COMMAND: { status: 500, summary: 'A key-value command or script failed.' },
  KAPOK_KV_TYPE: {
    status: 500,
    summary: 'A key holds a value of another type than the operation needs (e.g. incr on text).',
  },
  KAPOK_KV_CLOSED: { status: 503, summary: 'The key-value store was used after it was closed.' },
  // Event bus port.
  KAPOK_EVENTS_UNKNOWN_TYPE: {
    status: 400,
    summary: 'An event type is not in the closed list of the event bus.',
  },
  KAPOK_EVENTS_INVALID: {
    status: 400,
    summary: 'An event or subscription is malformed (data not a JSON object, no handler).',
  },
  KAPOK_EVENTS_TOO_LARGE: { status: 413, summary: 'An event is larger than events.maxPayloadBytes.' },
  KAPOK_EVENTS_OUTBOX_FULL: {
    status: 503,
    summary:
      'The event outbox holds events.nats.outboxMax events not yet accepted by NATS; publishing is refused.',
  },
  KAPOK_EVENTS_CLOSED: { status: 503, summary: 'The event bus was used after it was closed.' },
  // GM national cryptography (SM2/SM3/SM4/SM9).
  KAPOK_GM_INVALID_INPUT: {
    status: 400,
    summary: 'A GM crypto input is malformed (bad hex, wrong length, unknown mode or encoding).',
  },
  KAPOK_GM_INVALID_KEY: {
    status: 400,
    summary: 'A GM key is malformed, of the wrong length or not a valid point or scalar.',
  },
  KAPOK_GM_INVALID_SIGNATURE: {
    status: 400,
    summary: 'A GM signature cannot be decoded (bad DER, wrong length, point not on the curve).',
  },
  KAPOK_GM_VERIFY_FAILED: {
    status: 401,
    summary: 'A signature does not verify for the given key or ID and message.',
  },
  KAPOK_GM_DECRYPT_FAILED: {
    status: 400,
    summary: 'Authenticated decryption failed: the tag does not match the key, nonce, data and AAD.',
  },
  KAPOK_GM_POOL_CLOSED: { status: 503, summary: 'The SM9 worker pool was used after it was closed.' },
  KAPOK_GM_KEK_MISMATCH: {
    status: 500,
    summary: 'The key-encryption key does not decrypt the KGC master keys in the store.',
  },
  KAPOK_GM_KEK_FILE: {
    status: 500,
    summary: 'gm.kekFile cannot be read or does not hold 32 hex digits.',
  },
  KAPOK_GM_DEVICE_EXISTS: {
    status: 409,
    summary: 'A device with this serial is already registered.',
  },
  KAPOK_GM_VEHICLE_TAKEN: {
    status: 409,
    summary: 'Another active device is already bound to this vehicle id.',
  },
  KAPOK_GM_DEVICE_UNKNOWN: {
    status: 404,
    summary: 'No device with this serial is registered.',
  },
  KAPOK_GM_DEVICE_REVOKED: {
    status: 403,
    summary: 'The device was revoked; it can neither authenticate nor use its tokens.',
  },
  KAPOK_GM_AUTH_FAILED: {
    status: 401,
    summary: 'Device authentication failed: unknown serial or a signature that does not verify.',
  },
  KAPOK_GM_CLOCK_SKEW: {
    status: 401,
    summary: "The device's timestamp is outside gm.authWindowSeconds of the server clock.",
  },
  KAPOK_GM_NONCE_REPLAYED: {
    status: 401,
    summary: 'The nonce was already used: the request is a replay.',
  },
  KAPOK_GM_TOKEN_INVALID: {
    status: 401,
    summary: 'The device token is malformed or its SM2 signature does not verify.',
  },
  KAPOK_GM_TOKEN_EXPIRED: {
    status: 401,
    summary: 'The device token has expired.',
  },
  KAPOK_GM_KEY_RETIRED: {
    status: 401,
    summary: "The device's key comes from a KGC key retired longer ago than gm.rotationOverlapSeconds.",
  },
  KAPOK_GM_POOL_BUSY: { status: 503, summary: 'Too many SM9 verifications are queued.' },
  // Audit trail (docs/audit.md).
  KAPOK_AUDIT_INVALID_RECORD: {
    status: 500,
    summary:
      'An audit record is malformed (missing actor, an action that is not a dotted name, a bad outcome).',
  },
  KAPOK_AUDIT_BAD_QUERY: {
    status: 400,
    summary: 'An audit query or command has a malformed parameter (time, seq, cursor, limit, order).',
  },
  KAPOK_AUDIT_RANGE_TOO_LARGE: {
    status: 400,
    summary: 'An audit query asks for more than one page may hold (limit or time range over the maximum).',
  },
  KAPOK_AUDIT_CHAIN_BROKEN: {
    status: 500,
    summary:
      'The audit chain does not verify: an entry was edited, deleted, moved or truncated, or a checkpoint is forged.',
  },
  KAPOK_AUDIT_KEK_MISMATCH: {
    status: 500,
    summary: 'audit.kek does not open the checkpoint signing key in the Store.',
  },
  KAPOK_AUDIT_KEK_FILE: {
    status: 500,
    summary: 'audit.kekFile or audit.ship.keyFile cannot be read or does not hold 32 hex digits.',
  },
  KAPOK_AUDIT_CLOSED: { status: 503, summary: 'The audit trail was used after it was closed.' },
  KAPOK_AUDIT_EXPORT_INVALID: {
    status: 400,
    summary: 'An audit export file is malformed (not JSON lines, no header, a field of the wrong type).',
  },
  KAPOK_AUDIT_SHIP_FAILED: {
    status: 502,
    summary: 'The audit centre did not accept a sealed batch; it is retried with backoff.',
  },
  // Control plane (config sources, hot reload).
  KAPOK_CONTROL_ETCD_UNAVAILABLE: {
    status: 503,
    summary: 'etcd (control.etcd.endpoints) does not answer.',
  },
  KAPOK_CONTROL_ETCD_FAILED: { status: 502, summary: 'etcd refused a request of the control plane.' },
  KAPOK_CONTROL_BAD_KEY: {
    status: 400,
    summary:
      'A key under control.etcd.prefix is not a config path (empty segment, `.` or `..`, not a key of the schema).',
  },
  KAPOK_CONTROL_VALUE_TOO_LARGE: { status: 413, summary: 'A config value in etcd is larger than 1 MiB.' },
  KAPOK_CONTROL_RELOAD_REFUSED: {
    status: 409,
    summary: 'A capability refused a configuration change it cannot apply; the running configuration stays.',
  },
  KAPOK_CONTROL_CONFLICT: {
    status: 409,
    summary:
      'A config push was refused: the etcd prefix changed after the revision it was based on (compare-and-swap).',
  },
  KAPOK_CONTROL_SELECTOR: {
    status: 400,
    summary: 'A label selector is malformed (expected key=value pairs joined with commas).',
  },
  KAPOK_CONTROL_REVISION_UNKNOWN: {
    status: 404,
    summary: 'A rollback names a revision that is neither in the push history nor still held by etcd.',
  },
  // Job scheduler (/api/jobs, kapok jobs).
  KAPOK_JOBS_INVALID_SPEC: {
    status: 400,
    summary:
      'A job spec is malformed or refused (unknown field, cycle, unknown or duplicate task, limits, a past deadline, a task no worker can hold); the message names the task path.',
  },
  KAPOK_JOBS_NOT_FOUND: { status: 404, summary: 'No job (or no task of the job) has this id or name.' },
  KAPOK_JOBS_BAD_QUERY: { status: 400, summary: 'A jobs listing parameter is malformed.' },
  KAPOK_JOBS_CONFLICT: {
    status: 409,
    summary: "The act does not apply in the job's state (retrying a job that is still running).",
  },
  KAPOK_JOBS_QUEUE_FULL: {
    status: 429,
    summary: 'Accepting the job would put more than jobs.maxPendingTasks tasks in the queue.',
  },
  KAPOK_JOBS_WORKERS_DISABLED: {
    status: 403,
    summary: 'Pull workers are off here: jobs.workerTokens lists no token.',
  },
  KAPOK_JOBS_WORKER_BAD_REQUEST: {
    status: 400,
    summary: 'A pull worker request is malformed (a kapok worker of another version?).',
  },
  KAPOK_JOBS_LEASE_LOST: {
    status: 409,
    summary: 'The attempt a pull worker reports on is no longer its own (lease ran out, cancelled, settled).',
  },
  KAPOK_JOBS_CHECKPOINT_INVALID: {
    status: 400,
    summary: 'A reported checkpoint is over 1 MiB inline, or a URI without a valid SM3 digest.',
  },
  // Kubernetes operator (docs/operator.md).
  KAPOK_OPERATOR_API: {
    status: 502,
    summary: 'The Kubernetes API server refused a request of the operator or could not be reached.',
  },
  // Saga coordinator (docs/saga.md).
  KAPOK_SAGA_INVALID: {
    status: 400,
    summary:
      'A saga transaction or query is malformed (missing field, duplicate branch id, a step without compensation).',
  },
  KAPOK_SAGA_URL_REFUSED: {
    status: 400,
    summary: 'A branch URL is not http(s):// or nats://, or lies outside saga.targets (the allow-list).',
  },
  KAPOK_SAGA_TIMEOUT_ORDER: {
    status: 400,
    summary: 'Timeouts break branch < coordinator < global, and the branch declares no lateConfirm.',
  },
  KAPOK_SAGA_GID_CONFLICT: {
    status: 409,
    summary: 'The gid already names a transaction with another body.',
  },
  KAPOK_SAGA_NOT_FOUND: { status: 404, summary: 'No transaction (or operation) has this gid (branch, op).' },
  KAPOK_SAGA_STATE: {
    status: 409,
    summary: 'The transaction is not in a state that allows this (submit, retry, skip, compensate).',
  },
  KAPOK_SAGA_BRANCH_REFUSED: {
    status: 409,
    summary: 'A branch answered that it will not do the operation (409/4xx, or a failure in a 2xx body).',
  },
  KAPOK_SAGA_BRANCH_UNAVAILABLE: {
    status: 503,
    summary: 'A branch could not be reached or answered 5xx/408/429; the call is retried with backoff.',
  },
  KAPOK_SAGA_BRANCH_TIMEOUT: {
    status: 504,
    summary: "A branch did not answer within its time limit (the target's, at most the coordinator's).",
  },
  KAPOK_SAGA_BARRIER_HANGING: {
    status: 409,
    summary: 'The barrier refused an action that arrived after its compensation (a hanging action).',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface KapokErrorOptions {
  /** Overrides the catalogue status (rarely needed: a catalogue code should mean one status). */
  status?: number;
  cause?: unknown;
  /** Structured detail safe to show to a client (never secrets). */
  details?: Record<string, unknown>;
}

export class KapokError extends Error {
  override readonly name = 'KapokError';
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message?: string, options: KapokErrorOptions = {}) {
    super(
      message ?? ERROR_CATALOGUE[code].summary,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.status = options.status ?? ERROR_CATALOGUE[code].status;
    this.details = options.details;
  }

  toJSON(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) },
    };
  }
}

export function isKapokError(err: unknown, code?: ErrorCode): err is KapokError {
  return err instanceof KapokError && (code === undefined || err.code === code);
}

/** Message of an unknown thrown value, without assuming it is an Error. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

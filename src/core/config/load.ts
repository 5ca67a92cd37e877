import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { z } from 'zod';
import { type ErrorCode, KapokError } from '../errors.js';
import type { PlatformConfig } from './platform.js';
import { fieldsOf, unwrap, upperSnake } from './walk.js';

/** Environment variables with the KAPOK_ prefix that are not config overrides. */
const RESERVED_ENV = /^KAPOK_(CONFIG|CONFIG_KEYS|CONFIG_KEYS_FILE|REQUIRE_SERVICES|TEST_.*|BENCH_.*)$/;
const ENV_PREFIX = 'KAPOK_';
const MAX_FILE_BYTES = 1024 * 1024;

export interface LoadedConfig<C extends PlatformConfig = PlatformConfig> {
  config: C;
  /** The file read, or null when running on defaults (+ environment). */
  file: string | null;
  /** Environment variables applied, by config path (`http.port` → `KAPOK_HTTP__PORT`). */
  envOverrides: Map<string, string>;
  /** Key paths whose value was encrypted (`enc:...`): never shown, logged or echoed in errors. */
  sealed?: readonly string[];
}

export interface LoadOptions {
  /** Explicit --config path; must exist. */
  file?: string | undefined;
  /**
   * Raw trees (the config sources' layers: file, then etcd) merged in order, used instead of
   * reading the file; the file path still names where values came from and anchors dataDir.
   */
  layers?: ReadonlyArray<Record<string, unknown>>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** A configuration schema as the loader takes it: the composed zod schema and its env references. */
export interface ConfigSpec<C extends PlatformConfig> {
  schema: z.ZodType<C>;
  /**
   * Keys that name an environment variable (`apiKeyEnv`) get their value here, after validation:
   * the loader hands over the environment so that only core/config reads `process.env`.
   */
  resolveEnvRefs?: (config: C, env: NodeJS.ProcessEnv) => void;
  /**
   * Decrypts sealed values (`enc:...`) of the merged raw tree in place before validation and returns
   * their key paths; given by the top (src/config.ts) so that core needs no cipher.
   */
  decrypt?: (raw: Record<string, unknown>, env: NodeJS.ProcessEnv) => string[];
}

export class ConfigError extends KapokError {
  constructor(code: ErrorCode, message: string, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
  }
}

/** Reads YAML + KAPOK_* overrides, validates against the composed schema, applies profile rules. */
export function loadConfig<C extends PlatformConfig>(
  spec: ConfigSpec<C>,
  opts: LoadOptions = {},
): LoadedConfig<C> {
  const { schema } = spec;
  const env = opts.env ?? process.env;
  const cwd = opts.cwd ?? process.cwd();
  const explicit = opts.file ?? env.KAPOK_CONFIG;
  let file: string | null = null;
  if (explicit) {
    file = resolve(cwd, explicit);
    // With layers given the file was read already (a reload keeps its last good layer).
    if (!opts.layers && !existsSync(file)) {
      throw new ConfigError(
        'KAPOK_CONFIG_FILE',
        `config file ${file} does not exist: check the --config path`,
      );
    }
  } else if (existsSync(resolve(cwd, 'kapok.yaml'))) {
    file = resolve(cwd, 'kapok.yaml');
  }
  const raw = opts.layers ? mergeLayers(opts.layers) : file ? readYaml(file) : {};
  const envOverrides = applyEnv(schema, raw, env);
  const sealed = spec.decrypt?.(raw, env) ?? [];
  // The host check first: on a wrong host the rest of a gov config is beside the point.
  if (raw.profile === 'gov' && env.GOVERNMENT_ENV !== 'prod') throw profileError(env);
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    throw new ConfigError(
      issueCode(parsed.error.issues),
      formatIssues(schema, parsed.error.issues, envOverrides, file, new Set(sealed)),
    );
  }
  const config = parsed.data;
  spec.resolveEnvRefs?.(config, env);
  if (config.profile === 'gov' && env.GOVERNMENT_ENV !== 'prod') throw profileError(env);
  return { config, file, envOverrides, sealed };
}

const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Later layers win; mappings merge key by key, anything else replaces. Inputs stay untouched. */
function mergeLayers(layers: ReadonlyArray<Record<string, unknown>>): Record<string, unknown> {
  const merge = (base: Record<string, unknown>, over: Record<string, unknown>) => {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) {
      if (k === '__proto__') continue;
      const cur = out[k];
      out[k] = isMapping(cur) && isMapping(v) ? merge(cur, v) : v;
    }
    return out;
  };
  // A copy: the KAPOK_* overrides are set into the result, never into a source's layer.
  return structuredClone(layers.reduce<Record<string, unknown>>((acc, l) => merge(acc, l), {}));
}

function profileError(env: NodeJS.ProcessEnv | Record<string, string | undefined>): ConfigError {
  return new ConfigError(
    'KAPOK_CONFIG_PROFILE',
    `profile: "gov" runs only where GOVERNMENT_ENV=prod (found ${env.GOVERNMENT_ENV ? JSON.stringify(env.GOVERNMENT_ENV) : 'unset'}); set GOVERNMENT_ENV=prod on a production government host or use profile: default`,
  );
}

/** The file's YAML as a raw tree (at most 1 MiB, a mapping at the top), not yet validated. */
export function readConfigFile(file: string): Record<string, unknown> {
  return readYaml(file);
}

function readYaml(file: string): Record<string, unknown> {
  let text: string;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      'KAPOK_CONFIG_FILE',
      `config file ${file} cannot be read: ${(err as Error).message}`,
      err,
    );
  }
  let doc: unknown;
  try {
    // uniqueKeys: a key given twice is a mistake, not "last wins"; aliases are capped against bombs.
    doc = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100, prettyErrors: false });
  } catch (err) {
    const where = err instanceof YAMLParseError ? locate(text, err.pos[0]) : '';
    const what = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err);
    throw new ConfigError(
      'KAPOK_CONFIG_PARSE',
      `config file ${file} is not valid YAML${where}: ${what}`,
      err,
    );
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(
      'KAPOK_CONFIG_PARSE',
      `config file ${file}: expected a mapping of keys at the top level, found ${describe(doc)}`,
    );
  }
  return doc as Record<string, unknown>;
}

/** ` at line L, column C near "key"`; only an identifier-like key is quoted, never a value (it may be a secret). */
function locate(text: string, offset: number): string {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - before.lastIndexOf('\n');
  const key = /^[A-Za-z_][\w.-]{0,63}(?=\s*:)/.exec(text.slice(offset))?.[0];
  return ` at line ${line}, column ${col}${key ? ` near "${key}"` : ''}`;
}

/** Applies KAPOK_A__B_C=value onto raw (a.bC), mapping each part through the schema's own keys. */
function applyEnv(
  root: z.ZodType,
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Map<string, string> {
  const applied = new Map<string, string>();
  const names = Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX) && !RESERVED_ENV.test(n))
    .sort();
  for (const name of names) {
    const value = env[name] as string;
    const parts = name.slice(ENV_PREFIX.length).split('__');
    let schema: z.ZodType = root;
    const path: string[] = [];
    for (const part of parts) {
      const fields = fieldsOf(schema);
      const key = fields && Object.keys(fields).find((k) => upperSnake(k) === part);
      if (!fields || !key) {
        const where = path.length ? `under ${path.join('.')}` : 'at the top level';
        const known = fields
          ? Object.keys(fields).map((k) => `${[...path.map(upperSnake), upperSnake(k)].join('__')}`)
          : [];
        throw new ConfigError(
          'KAPOK_CONFIG_ENV',
          `environment variable ${name} names no config key (no "${part}" ${where})${known.length ? `; known: ${known.map((k) => ENV_PREFIX + k).join(', ')}` : ''}`,
        );
      }
      path.push(key);
      schema = fields[key] as z.ZodType;
    }
    setPath(raw, path, envValue(name, value, schema));
    applied.set(path.join('.'), name);
  }
  return applied;
}

/** Strings stay as given; other kinds are read as a YAML scalar or flow collection ("8080", "[a, b]"). */
function envValue(name: string, value: string, schema: z.ZodType): unknown {
  const leaf = unwrap(schema);
  if (leaf.nullable && (value === '' || value === 'null')) return null;
  if (leaf.kind === 'string' || leaf.kind === 'enum') return value;
  try {
    return parseYaml(value, { maxAliasCount: 0 });
  } catch {
    throw new ConfigError(
      'KAPOK_CONFIG_ENV',
      `environment variable ${name}: cannot read ${JSON.stringify(value)} as a ${leaf.kind}`,
    );
  }
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1] as string] = value;
}

type Issue = z.core.$ZodIssue & { input?: unknown };

function issueCode(issues: readonly Issue[]): ErrorCode {
  return issues.every((i) => i.code === 'unrecognized_keys')
    ? 'KAPOK_CONFIG_UNKNOWN_KEY'
    : 'KAPOK_CONFIG_INVALID';
}

/** Stands for a secret's value in messages. */
const HIDDEN = Symbol('hidden');
const found = (v: unknown): string => (v === HIDDEN ? 'a value that is not shown (a secret)' : describe(v));

/** One line: `http.port: expected an integer <= 65535, found 70000 (from KAPOK_HTTP__PORT)`; issues joined by "; ". */
export function formatIssues(
  root: z.ZodType,
  issues: readonly Issue[],
  env: Map<string, string>,
  file: string | null,
  sealed: ReadonlySet<string> = new Set(),
): string {
  const lines = issues.map((issue) => {
    const path = issue.path.map(String);
    const key = path.join('.') || '(top level)';
    // Never echo what was found under a secret key (a mistyped password is still a password).
    // A cross-field check (superRefine) reports its parent object as the input: it found no value
    // at this key to show. A secret's value is never shown; nothing set is said as nothing.
    const own = issue.code === 'custom' && typeof issue.input === 'object' ? undefined : issue.input;
    const hide = (isSecretPath(root, path) || sealed.has(key)) && own != null;
    const shown = { ...issue, input: hide ? HIDDEN : own } as Issue;
    let text: string;
    switch (shown.code) {
      case 'unrecognized_keys':
        return shown.keys
          .map((k) => `${[...path, k].join('.')}: unknown key${suggest(root, path, k)}`)
          .join('; ');
      case 'invalid_type':
        text = `expected ${shown.expected === 'int' ? 'an integer' : shown.expected}, found ${found(shown.input)}`;
        break;
      case 'too_big':
        text = `expected ${shown.origin === 'array' ? 'at most' : shown.inclusive ? '<=' : '<'} ${shown.maximum}${shown.origin === 'array' ? ' items' : ''}, found ${found(shown.input)}`;
        break;
      case 'too_small':
        text = `expected ${shown.origin === 'string' ? 'a non-empty string' : `${shown.inclusive ? '>=' : '>'} ${shown.minimum}`}, found ${found(shown.input)}`;
        break;
      case 'invalid_value':
        text = `expected one of ${shown.values.map((v) => JSON.stringify(v)).join(', ')}, found ${found(shown.input)}`;
        break;
      case 'invalid_format':
        text = `expected a ${shown.format === 'url' ? 'http(s) URL' : shown.format}, found ${found(shown.input)}`;
        break;
      default:
        text = shown.input === undefined ? shown.message : `${shown.message}, found ${found(shown.input)}`;
    }
    const from = env.get(key);
    return `${key}: ${text}${from ? ` (from ${from})` : file ? ` (in ${file})` : ''}`;
  });
  return lines.join('; ');
}

function isSecretPath(root: z.ZodType, path: string[]): boolean {
  let schema = root;
  for (const p of path) {
    const f = fieldsOf(schema)?.[p];
    if (!f) return false;
    if (unwrap(f).secret) return true;
    schema = f;
  }
  return false;
}

function suggest(root: z.ZodType, path: string[], key: string): string {
  let schema = root;
  for (const p of path) {
    const f = fieldsOf(schema)?.[p];
    if (!f) return '';
    schema = f;
  }
  const known = Object.keys(fieldsOf(schema) ?? {});
  const near = known.find((k) => k.toLowerCase() === key.toLowerCase() || levenshtein(k, key) <= 2);
  return near ? ` (did you mean "${near}"?)` : known.length ? ` (expected one of: ${known.join(', ')})` : '';
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number;
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length] as number;
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

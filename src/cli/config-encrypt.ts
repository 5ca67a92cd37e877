import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { Command } from 'commander';
import { isPair, isScalar, isSeq, parseDocument, visit } from 'yaml';
import { KapokError } from '../core/errors.js';
import {
  type ConfigKeys,
  configKeysFromEnv,
  decryptConfigValue,
  encryptConfigValue,
  isSealed,
  sealedKeyId,
} from '../crypto/config-values.js';
import { fail } from './exit.js';

const MAX_VALUE_BYTES = 1024 * 1024;
const SEGMENT = /^(?:[A-Za-z_][A-Za-z0-9_-]*|0|[1-9][0-9]*)$/;

function requireKeys(): ConfigKeys {
  const keys = configKeysFromEnv(process.env);
  if (!keys)
    throw new KapokError(
      'KAPOK_CONFIG_KEYS',
      'no config keys: set KAPOK_CONFIG_KEYS=<keyId>=<32 hex digits> (several comma-separated, the first is current) or KAPOK_CONFIG_KEYS_FILE',
    );
  return keys;
}

function checkPath(path: string): string {
  if (!path.split('.').every((s) => SEGMENT.test(s) && s !== '__proto__'))
    throw new KapokError(
      'KAPOK_CONFIG_INVALID',
      `--path ${JSON.stringify(path.slice(0, 200))}: expected a config key path such as gateway.providers.0.apiKey (dot-separated names and array indexes, no empty segment)`,
    );
  return path;
}

export function encryptCommand(): Command {
  return new Command('encrypt')
    .description('read a value from stdin and print it encrypted for one key path (enc:sm4gcm:v1:...)')
    .requiredOption('--path <path>', 'the config key path the value is for, e.g. gateway.providers.0.apiKey')
    .option('--key <keyId>', 'key id to seal under (default: the first of KAPOK_CONFIG_KEYS)')
    .action((opts: { path: string; key?: string }) => {
      try {
        const path = checkPath(opts.path);
        const keys = requireKeys();
        const keyId = opts.key ?? ([...keys.keys()][0] as string);
        const input = readFileSync(0);
        if (input.length > MAX_VALUE_BYTES)
          throw new KapokError(
            'KAPOK_CONFIG_INVALID',
            `stdin holds ${input.length} bytes; a config value is at most 1 MiB`,
          );
        // One trailing newline is the shell's (`echo`, a here-string), not the value's.
        const value = input.toString('utf8').replace(/\r?\n$/, '');
        if (value === '')
          throw new KapokError('KAPOK_CONFIG_INVALID', 'stdin is empty: pipe the value to encrypt');
        process.stdout.write(`${encryptConfigValue(keys, keyId, path, value)}\n`);
      } catch (err) {
        fail(err);
      }
    });
}

/** The config key path of a scalar from the YAML ancestors the visitor hands over. */
function keyPath(ancestors: readonly unknown[], node: unknown): string {
  const parts: string[] = [];
  ancestors.forEach((a, i) => {
    const next = ancestors[i + 1] ?? node;
    if (isPair(a)) parts.push(String(isScalar(a.key) ? a.key.value : a.key));
    else if (isSeq(a)) parts.push(String(a.items.indexOf(next as never)));
  });
  return parts.join('.');
}

/** Re-seals every enc: scalar of a YAML document under `to`; `base` is the path of the document's root. */
function reseal(
  doc: ReturnType<typeof parseDocument>,
  base: string[],
  keys: ConfigKeys,
  to: string,
  changed: Array<{ path: string; from: string }>,
): void {
  visit(doc, {
    Scalar(_key, node, ancestors) {
      if (!isSealed(node.value)) return;
      const path = [...base, keyPath(ancestors, node)].filter((p) => p !== '').join('.');
      const plain = decryptConfigValue(keys, path, node.value);
      changed.push({ path, from: sealedKeyId(node.value) });
      node.value = encryptConfigValue(keys, to, path, plain);
    },
  });
}

/** `--etcd`: every key under the prefix, written back in one compare-and-swap (a history entry). */
async function reencryptEtcd(opts: { to: string; json?: boolean; config?: string }, keys: ConfigKeys) {
  const { openConfigAdmin } = await import('../app.js');
  const { splitKey, TOMBSTONE } = await import('../ports/config-overlay.js');
  const { cliActor, cliConfig } = await import('./context.js');
  const a = await openConfigAdmin(cliConfig(opts));
  try {
    const base = await a.admin.read();
    const next = new Map(base.keys);
    const changed: Array<{ path: string; from: string; key: string }> = [];
    // Everything is decrypted before anything is written: one bad value leaves etcd as it was.
    for (const [key, text] of base.keys) {
      if (text.trim() === TOMBSTONE) continue;
      const doc = parseDocument(text);
      if (doc.errors.length)
        throw new KapokError('KAPOK_CONFIG_PARSE', `${a.admin.prefix}${key} is not valid YAML`);
      const found: Array<{ path: string; from: string }> = [];
      reseal(doc, splitKey(key, a.admin.prefix + key).path, keys, opts.to, found);
      if (found.length) next.set(key, doc.toString());
      changed.push(...found.map((f) => ({ ...f, key })));
    }
    const r = await a.admin.commit(base, next, {
      by: cliActor(),
      action: 'reencrypt',
      note: `to ${opts.to}`,
    });
    if (opts.json)
      process.stdout.write(
        `${JSON.stringify({ prefix: a.admin.prefix, to: opts.to, revision: r.revision, values: changed })}\n`,
      );
    else
      process.stdout.write(
        `${changed.length} encrypted value(s) under ${a.admin.prefix} now under key ${opts.to}${changed.length ? ` (revision ${r.revision}): ${changed.map((c) => c.path).join(', ')}` : ''}\n`,
      );
  } finally {
    a.close();
  }
}

export function reencryptCommand(): Command {
  return new Command('reencrypt')
    .description(
      're-encrypt every enc: value of a YAML file, or of the etcd prefix, under another key (key rotation)',
    )
    .requiredOption('--to <keyId>', 'the key id to seal under; it must be among the configured keys')
    .argument('[file]', 'YAML config file, rewritten in place (comments kept)')
    .option('--etcd', 'rewrite the keys under control.etcd.prefix instead (compare-and-swap, in the history)')
    .option('-c, --config <file>', 'YAML config file naming control.etcd (with --etcd)')
    .option('--json', 'print the result as JSON')
    .action(
      async (
        file: string | undefined,
        opts: { to: string; json?: boolean; etcd?: boolean; config?: string },
      ) => {
        try {
          const keys = requireKeys();
          if (!keys.has(opts.to))
            throw new KapokError(
              'KAPOK_CONFIG_KEY_UNKNOWN',
              `--to ${opts.to}: not among the configured keys (${[...keys.keys()].join(', ')}); add it to KAPOK_CONFIG_KEYS first`,
            );
          if (opts.etcd) {
            await reencryptEtcd(opts, keys);
            return;
          }
          if (!file)
            throw new KapokError(
              'KAPOK_CONFIG_INVALID',
              'give a YAML file to rewrite, or --etcd for the etcd prefix',
            );
          let text: string;
          try {
            text = readFileSync(file, 'utf8');
          } catch (err) {
            throw new KapokError('KAPOK_CONFIG_FILE', `${file} cannot be read: check the path`, {
              cause: err,
            });
          }
          const doc = parseDocument(text);
          if (doc.errors.length)
            throw new KapokError(
              'KAPOK_CONFIG_PARSE',
              `${file} is not valid YAML: ${doc.errors[0]?.message.split('\n')[0]}`,
            );
          const changed: Array<{ path: string; from: string }> = [];
          // Everything is decrypted before anything is written: one bad value leaves the file as it was.
          reseal(doc, [], keys, opts.to, changed);
          if (changed.length) {
            const tmp = `${file}.kapok-tmp`;
            writeFileSync(tmp, doc.toString(), { mode: statSync(file).mode & 0o777 });
            renameSync(tmp, file);
          }
          if (opts.json) process.stdout.write(`${JSON.stringify({ file, to: opts.to, values: changed })}\n`);
          else
            process.stdout.write(
              `${changed.length} encrypted value(s) in ${file} now under key ${opts.to}${changed.length ? `: ${changed.map((c) => c.path).join(', ')}` : ''}\n`,
            );
        } catch (err) {
          fail(err);
        }
      },
    );
}

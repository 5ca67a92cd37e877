import { readFileSync } from 'node:fs';
import { Argument, Command, Option } from 'commander';
import type { KapokConfig } from '../config.js';
import { KapokError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Keyring, Registration } from '../gm/index.js';
import type { EventBus } from '../ports/events.js';
import type { Store } from '../ports/store.js';
import { type CliAct, withCliEvents } from './context.js';
import { fail } from './exit.js';

/**
 * `kapok device register|revoke|simulate`: the device identity chain from the command line. Works
 * against the configured store whether or not a `kapok up` is running on it (SQLite WAL or
 * PostgreSQL); needs gm.kek (or gm.kekFile) like `kapok up` with gm enabled.
 */

type Opts = {
  config?: string;
  json?: boolean;
  group?: string;
  vehicle?: string;
  url?: string;
  registration?: string;
};

async function withGm<T>(
  opts: Opts,
  fn: (ctx: {
    config: KapokConfig;
    store: Store;
    gm: typeof import('../gm/index.js');
    keyring: Keyring;
    kek: Uint8Array;
    announce: (
      type: 'gm.device.revoked' | 'gm.token_key.rotated',
      data: Record<string, unknown>,
    ) => Promise<void>;
  }) => Promise<T>,
  act?: CliAct,
): Promise<T> {
  const gm = await import('../gm/index.js');
  return withCliEvents(
    opts,
    async ({ config, store, events, logger, dataDir }) => {
      const kek = gm.readKek(config.gm, { dataDir, logger });
      const keyring = await gm.Keyring.open(store, kek);
      return fn({ config, store, gm, keyring, kek, announce: announcer(events, logger) });
    },
    act,
  );
}

/**
 * Publishes a change the command made to running instances (docs/events.md). The change stands
 * when this fails: the error is reported and instances fall back to their Store poll or reload.
 */
function announcer(events: EventBus, logger: Logger) {
  return async (type: 'gm.device.revoked' | 'gm.token_key.rotated', data: Record<string, unknown>) => {
    await events.publish(type, data).then(
      () => undefined,
      (err: unknown) =>
        logger.error(
          { type, code: (err as { code?: string }).code, reason: (err as Error).message },
          'event not published; running instances learn of the change by their fallback',
        ),
    );
  };
}

const configOption = () =>
  new Option('-c, --config <file>', 'YAML config file (default ./kapok.yaml if present)');

export function deviceCommand(): Command {
  const cmd = new Command('device').description('register, revoke and simulate devices (SM9 identities)');

  cmd
    .command('register')
    .description('register a device; prints its registration (the SM9 signing key, wrapped)')
    .argument('<serial>', 'device serial: 1..64 of A-Z a-z 0-9 . _ : -')
    .option('-g, --group <group>', 'device group', 'default')
    .option('--vehicle <id>', 'vehicle (V2X station) id it speaks for: its BSM id (default: the serial)')
    .addOption(configOption())
    .option('--json', 'compact JSON (default: indented)')
    .action(async (serial: string, opts: Opts) => {
      try {
        const reg = await withGm(
          opts,
          async ({ config, store, gm, keyring }) =>
            new gm.DeviceRegistry(store, keyring, config.gm).register(
              serial,
              opts.group,
              opts.vehicle ?? serial,
            ),
          { action: 'gm.device.register', target: serial },
        );
        process.stdout.write(`${JSON.stringify(reg, null, opts.json ? 0 : 2)}\n`);
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('revoke')
    .description('revoke a device: its authentications and tokens are refused from now on')
    .argument('<serial>', 'device serial')
    .addOption(configOption())
    .option('--json', 'print JSON')
    .action(async (serial: string, opts: Opts) => {
      try {
        const d = await withGm(
          opts,
          async ({ config, store, gm, keyring, announce }) => {
            const dev = await new gm.DeviceRegistry(store, keyring, config.gm).revoke(serial);
            await announce('gm.device.revoked', { serial: dev.serial });
            return dev;
          },
          { action: 'gm.device.revoke', target: serial },
        );
        process.stdout.write(opts.json ? `${JSON.stringify(d)}\n` : `revoked ${d.serial}\n`);
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('reissue')
    .description('issue a new key for an active device from the current KGC sign key (after rotate-key sign)')
    .argument('<serial>', 'device serial')
    .addOption(configOption())
    .option('--json', 'compact JSON (default: indented)')
    .action(async (serial: string, opts: Opts) => {
      try {
        const reg = await withGm(
          opts,
          async ({ config, store, gm, keyring }) =>
            new gm.DeviceRegistry(store, keyring, config.gm).reissue(serial),
          { action: 'gm.device.reissue', target: serial },
        );
        process.stdout.write(`${JSON.stringify(reg, null, opts.json ? 0 : 2)}\n`);
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('rotate-key')
    .description(
      'rotate a KGC key: sign (device keys; old one kept for gm.rotationOverlapSeconds), enc, or token',
    )
    .addArgument(new Argument('<kind>', 'which key').choices(['sign', 'enc', 'token']))
    .addOption(configOption())
    .option('--json', 'print JSON')
    .action(async (kind: 'sign' | 'enc' | 'token', opts: Opts) => {
      try {
        const id = await withGm(
          opts,
          async ({ store, gm, kek, announce }) => {
            const made = await gm.rotateMasterKey(store, kek, kind);
            await announce('gm.token_key.rotated', { kind, id: made });
            return made;
          },
          { action: 'gm.kgc.rotate', target: kind },
        );
        process.stdout.write(
          opts.json ? `${JSON.stringify({ kind, id })}\n` : `rotated ${kind}: new key ${id}\n`,
        );
      } catch (err) {
        fail(err);
      }
    });

  cmd
    .command('simulate')
    .description(
      'act as the device: unwrap its key, authenticate, and call /api/gm/devices/me with the token',
    )
    .argument('<serial>', 'device serial')
    .requiredOption('-r, --registration <file>', 'the JSON `kapok device register` printed')
    .option('-u, --url <url>', 'Kapok base URL (default http://127.0.0.1:<http.port> from the config)')
    .addOption(configOption())
    .option('--json', 'print JSON')
    .action(async (serial: string, opts: Opts) => {
      try {
        const reg = readRegistration(opts.registration as string, serial);
        // The simulator stands in for the device: it takes the device's unwrapping key from the KGC
        // (kem) or the factory secret from the configuration (pbkdf2), which a real device holds.
        const { signKey, mqttPort, httpPort } = await withGm(opts, async ({ config, gm, keyring }) => {
          // The MQTT hint only where this config runs the embedded broker.
          const embedded = config.edge.enabled && config.edge.mqtt.mode === 'embedded';
          const ports = { mqttPort: embedded ? config.edge.mqtt.port : null, httpPort: config.http.port };
          // A kem registration was made to whichever enc key was active then: try each.
          const factory = config.gm.factorySecret ? { factorySecret: config.gm.factorySecret } : {};
          let last: unknown;
          for (const e of keyring.loaded.encKeys.values()) {
            try {
              const key = gm.unwrapDeviceKey(reg.signKey, serial, {
                encKey: e.key.extract(serial),
                ...factory,
              });
              return { signKey: key, ...ports };
            } catch (err) {
              last = err;
            }
          }
          throw last;
        });
        const gm = await import('../gm/index.js');
        const creds = {
          serial,
          signKey,
          signMasterPublicKey: gm.fromHex(reg.signMasterPublicKey, 'signMasterPublicKey'),
        };
        const url = opts.url ?? `http://127.0.0.1:${httpPort}`;
        const auth = await gm.authenticateDevice(url, creds);
        const res = await fetch(new URL('/api/gm/devices/me', url), {
          headers: { authorization: `Bearer ${auth.token}` },
        });
        if (!res.ok) throw new KapokError('KAPOK_GM_TOKEN_INVALID', `the token was refused (${res.status})`);
        const out = {
          serial,
          group: auth.group,
          token: auth.token,
          expiresAt: auth.expiresAt,
          accepted: true,
        };
        process.stdout.write(
          opts.json
            ? `${JSON.stringify(out)}\n`
            : `authenticated ${serial}; token accepted, expires ${new Date(auth.expiresAt * 1000).toISOString()}\n${mqttPort === null ? `token ${auth.token}\n` : mqttHint(serial, auth.token, new URL(url).hostname, mqttPort)}`,
        );
      } catch (err) {
        fail(err);
      }
    });

  return cmd;
}

function readRegistration(file: string, serial: string): Registration {
  let reg: Registration;
  try {
    reg = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `--registration ${file}: not readable JSON`, {
      cause: err,
    });
  }
  if (reg?.serial !== serial || !reg.signKey || typeof reg.signMasterPublicKey !== 'string')
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `--registration ${file}: not a registration of ${serial}`);
  return reg;
}

/**
 * The token and how to use it as an MQTT password (username = the serial, docs/gm.md), with the
 * Mosquitto client and with Node alone (the `mqtt` package Kapok depends on), ready to paste.
 */
export function mqttHint(serial: string, token: string, host: string, port: number): string {
  const topic = `telemetry/${serial}/env`;
  const node = [
    `const c=require("mqtt").connect("mqtt://${host}:${port}",{username:"${serial}",password:process.argv[1],reconnectPeriod:0});`,
    `c.on("error",(e)=>{console.error(e.message);process.exit(1)});`,
    `c.on("connect",()=>c.publish("${topic}",JSON.stringify({temp:21.5}),{qos:1},(e)=>{c.end();process.exitCode=e?1:0}))`,
  ].join('');
  return [
    `token ${token}`,
    'publish with it as the MQTT password (username = the serial) until it expires, with the Mosquitto client:',
    `  mosquitto_pub -h ${host} -p ${port} -q 1 -u '${serial}' -P '${token}' -t '${topic}' -m '{"temp":21.5}'`,
    'or with Node alone (from the Kapok folder, where the mqtt package is installed):',
    `  node -e '${node}' '${token}'`,
    '',
  ].join('\n');
}

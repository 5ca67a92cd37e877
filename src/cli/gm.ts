import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { KapokError } from '../core/errors.js';
import type { gmCrypto as GmCrypto } from '../gm/index.js';
import { fail } from './exit.js';

/**
 * `kapok gm sm3|sm4|sm2|sm9 …`: operator tools for the GM algorithms. Keys and signatures are hex;
 * a value `@FILE` is read from FILE (keeps keys out of `ps` and shell history). Messages come from a
 * file argument or stdin. Output is one hex line, or JSON with --json.
 */

type Opts = Record<string, string | boolean | undefined>;

// Loaded on first use: the curve tables cost tens of milliseconds that `kapok up` should not pay.
let g: typeof GmCrypto;

/** Hex from the option value or, for `@FILE`, from the file. Never echoes the value in errors. */
function hexOpt(opts: Opts, name: string, label: string, length?: number): Uint8Array {
  const v = opts[name];
  if (typeof v !== 'string' || v === '')
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `--${kebab(name)} is required (${label}, hex or @FILE)`);
  let text = v;
  if (v.startsWith('@')) {
    try {
      text = readFileSync(v.slice(1), 'utf8');
    } catch (err) {
      throw new KapokError('KAPOK_GM_INVALID_INPUT', `--${kebab(name)}: cannot read ${v.slice(1)}`, {
        cause: err,
      });
    }
  }
  return g.fromHex(text, `--${kebab(name)} (${label})`, length);
}

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function readInput(file: string | undefined): Uint8Array {
  try {
    return new Uint8Array(readFileSync(file ?? 0));
  } catch (err) {
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `cannot read ${file ?? 'stdin'}: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

function out(opts: Opts, json: Record<string, unknown>, line: string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(json)}\n` : `${line}\n`);
}

/** Wraps an action so every error leaves through `fail` (one line, catalogue code, exit code). */
const run =
  <A extends unknown[]>(fn: (...args: A) => void) =>
  async (...args: A): Promise<void> => {
    try {
      g ??= (await import('../gm/index.js')).gmCrypto;
      fn(...args);
    } catch (err) {
      fail(err);
    }
  };

function verdict(opts: Opts, ok: boolean, what: string): void {
  if (!ok) {
    if (opts.json) process.stdout.write(`${JSON.stringify({ valid: false })}\n`);
    throw new KapokError('KAPOK_GM_VERIFY_FAILED', `${what} signature does not verify`);
  }
  out(opts, { valid: true }, 'valid');
}

const json = () => new Option('--json', 'print JSON');

function sm3Command(): Command {
  return new Command('sm3')
    .description('SM3 hash of FILE (or stdin), hex')
    .argument('[file]', 'input file (default stdin)')
    .addOption(json())
    .action(
      run((file: string | undefined, opts: Opts) => {
        const digest = g.toHex(g.sm3(readInput(file)));
        out(opts, { sm3: digest }, digest);
      }),
    );
}

const modes = ['gcm', 'cbc', 'ctr', 'ecb'] as const;
type CliMode = (typeof modes)[number];

function sm4Command(): Command {
  const cmd = new Command('sm4').description('SM4 encryption (GCM by default)');
  const common = (c: Command) =>
    c
      .argument('[file]', 'input file (default stdin)')
      .requiredOption('-k, --key <hex>', '16-byte key, hex or @FILE')
      .addOption(new Option('-m, --mode <mode>', 'cipher mode').choices(modes).default('gcm'))
      .option('--aad <hex>', 'GCM additional authenticated data, hex')
      .addOption(json());
  common(cmd.command('encrypt'))
    .description('encrypt FILE (or stdin); prints hex nonce/IV || ciphertext || tag (GCM)')
    .option('--iv <hex>', 'nonce (GCM, 12 bytes) or IV (CBC/CTR, 16 bytes); random when absent')
    .action(
      run((file: string | undefined, opts: Opts) => {
        const key = hexOpt(opts, 'key', 'SM4 key', 16);
        const mode = opts.mode as CliMode;
        const data = readInput(file);
        const iv =
          typeof opts.iv === 'string'
            ? g.fromHex(opts.iv, '--iv')
            : mode === 'ecb'
              ? undefined
              : randomBytes(mode === 'gcm' ? 12 : 16);
        if (mode === 'gcm') {
          const aad = typeof opts.aad === 'string' ? g.fromHex(opts.aad, '--aad') : undefined;
          const { ciphertext, tag } = g.sm4GcmEncrypt(key, iv as Uint8Array, data, aad);
          const packed = g.toHex(iv as Uint8Array) + g.toHex(ciphertext) + g.toHex(tag);
          out(
            opts,
            { mode, iv: g.toHex(iv as Uint8Array), ciphertext: g.toHex(ciphertext), tag: g.toHex(tag) },
            packed,
          );
          return;
        }
        const ct = g.sm4Encrypt(mode as GmCrypto.Sm4Mode, key, iv, data);
        out(
          opts,
          { mode, iv: iv ? g.toHex(iv) : null, ciphertext: g.toHex(ct) },
          (iv ? g.toHex(iv) : '') + g.toHex(ct),
        );
      }),
    );
  common(cmd.command('decrypt'))
    .description('decrypt the hex that encrypt printed (FILE or stdin); writes the plaintext bytes')
    .action(
      run((file: string | undefined, opts: Opts) => {
        const key = hexOpt(opts, 'key', 'SM4 key', 16);
        const mode = opts.mode as CliMode;
        const packed = g.fromHex(new TextDecoder().decode(readInput(file)), 'input (hex from sm4 encrypt)');
        const ivLen = mode === 'gcm' ? 12 : mode === 'ecb' ? 0 : 16;
        const tagLen = mode === 'gcm' ? 16 : 0;
        if (packed.length < ivLen + tagLen)
          throw new KapokError(
            'KAPOK_GM_INVALID_INPUT',
            `input: ${packed.length} bytes is too short for SM4-${mode.toUpperCase()} (needs at least ${ivLen + tagLen})`,
          );
        const iv = packed.subarray(0, ivLen);
        const body = packed.subarray(ivLen, packed.length - tagLen);
        let pt: Uint8Array;
        if (mode === 'gcm') {
          const aad = typeof opts.aad === 'string' ? g.fromHex(opts.aad, '--aad') : undefined;
          pt = g.sm4GcmDecrypt(key, iv, body, packed.subarray(packed.length - tagLen), aad);
        } else pt = g.sm4Decrypt(mode as GmCrypto.Sm4Mode, key, ivLen ? iv : undefined, body);
        if (opts.json) out(opts, { plaintext: g.toHex(pt) }, '');
        else process.stdout.write(pt);
      }),
    );
  return cmd;
}

function sm2Command(): Command {
  const cmd = new Command('sm2').description('SM2 signatures');
  cmd
    .command('keygen')
    .description('new key pair: private (32 bytes) and public (04||x||y) hex')
    .addOption(json())
    .action(
      run((opts: Opts) => {
        const kp = g.sm2GenerateKeyPair();
        const [priv, pub] = [g.toHex(kp.privateKey), g.toHex(kp.publicKey)];
        out(opts, { privateKey: priv, publicKey: pub }, `private ${priv}\npublic ${pub}`);
      }),
    );
  cmd
    .command('sign')
    .description('sign FILE (or stdin) with Z over the ID; prints the signature hex')
    .argument('[file]', 'message file (default stdin)')
    .requiredOption('-k, --key <hex>', 'private key, hex or @FILE')
    .option('--id <id>', 'signer ID for Z', '1234567812345678')
    .addOption(new Option('--format <format>', 'signature encoding').choices(['der', 'raw']).default('der'))
    .addOption(json())
    .action(
      run((file: string | undefined, opts: Opts) => {
        const key = hexOpt(opts, 'key', 'SM2 private key', 32);
        const sig = g.toHex(
          g.sm2Sign(key, readInput(file), {
            id: opts.id as string,
            format: opts.format as GmCrypto.Sm2SignatureFormat,
          }),
        );
        out(opts, { signature: sig }, sig);
      }),
    );
  cmd
    .command('verify')
    .description('verify a signature over FILE (or stdin); exit 0 when valid, 1 when not')
    .argument('[file]', 'message file (default stdin)')
    .requiredOption('-p, --public-key <hex>', 'public key 04||x||y, hex or @FILE')
    .requiredOption('-s, --signature <hex>', 'signature (DER or raw r||s), hex or @FILE')
    .option('--id <id>', 'signer ID for Z', '1234567812345678')
    .addOption(json())
    .action(
      run((file: string | undefined, opts: Opts) => {
        const pub = hexOpt(opts, 'publicKey', 'SM2 public key');
        const sig = hexOpt(opts, 'signature', 'SM2 signature');
        verdict(opts, g.sm2Verify(pub, readInput(file), sig, { id: opts.id as string }), 'SM2');
      }),
    );
  return cmd;
}

const typeOption = () =>
  new Option('--type <type>', 'sign (hid 0x01) or enc (key encapsulation, hid 0x03)')
    .choices(['sign', 'enc'])
    .default('sign');

function sm9Command(): Command {
  const cmd = new Command('sm9').description('SM9 identity-based signatures and key encapsulation');
  cmd
    .command('master-keygen')
    .description('new KGC master key pair (private 32 bytes; public G2 point for sign, G1 for enc)')
    .addOption(typeOption())
    .addOption(json())
    .action(
      run((opts: Opts) => {
        const m = opts.type === 'enc' ? g.Sm9EncMasterKey.generate() : g.Sm9SignMasterKey.generate();
        const [priv, pub] = [g.toHex(m.toBytes()), g.toHex(m.publicKey.toBytes())];
        out(opts, { type: opts.type, privateKey: priv, publicKey: pub }, `private ${priv}\npublic ${pub}`);
      }),
    );
  cmd
    .command('extract')
    .description("derive an ID's private key from the master private key")
    .requiredOption('-m, --master-key <hex>', 'master private key, hex or @FILE')
    .requiredOption('--id <id>', 'the identity (e.g. a device serial)')
    .addOption(typeOption())
    .option('--hid <n>', 'hid byte (default 1 for sign, 3 for enc)')
    .addOption(json())
    .action(
      run((opts: Opts) => {
        const mk = hexOpt(opts, 'masterKey', 'SM9 master private key', 32);
        const hid = opts.hid === undefined ? undefined : parseHid(opts.hid as string);
        const id = opts.id as string;
        const key =
          opts.type === 'enc'
            ? g.Sm9EncMasterKey.fromBytes(mk).extract(id, hid)
            : g.Sm9SignMasterKey.fromBytes(mk).extract(id, hid);
        const hexKey = g.toHex(key.toBytes());
        out(opts, { type: opts.type, id, key: hexKey }, hexKey);
      }),
    );
  cmd
    .command('sign')
    .description('sign FILE (or stdin) with an ID key; prints the DER signature hex')
    .argument('[file]', 'message file (default stdin)')
    .requiredOption('-P, --master-public-key <hex>', 'sign master public key, hex or @FILE')
    .requiredOption('-k, --key <hex>', "the signer's SM9 sign key, hex or @FILE")
    .addOption(json())
    .action(
      run((file: string | undefined, opts: Opts) => {
        const master = g.Sm9SignMasterPublicKey.fromBytes(
          hexOpt(opts, 'masterPublicKey', 'SM9 master public key'),
        );
        const user = g.Sm9SignUserKey.fromBytes(hexOpt(opts, 'key', 'SM9 sign key'));
        const sig = g.toHex(g.sm9Sign(master, user, readInput(file)));
        out(opts, { signature: sig }, sig);
      }),
    );
  cmd
    .command('verify')
    .description('verify an SM9 signature by ID over FILE (or stdin); exit 0 when valid, 1 when not')
    .argument('[file]', 'message file (default stdin)')
    .requiredOption('-P, --master-public-key <hex>', 'sign master public key, hex or @FILE')
    .requiredOption('--id <id>', "the signer's identity")
    .requiredOption('-s, --signature <hex>', 'DER signature, hex or @FILE')
    .option('--hid <n>', 'hid byte', '1')
    .addOption(json())
    .action(
      run((file: string | undefined, opts: Opts) => {
        const master = g.Sm9SignMasterPublicKey.fromBytes(
          hexOpt(opts, 'masterPublicKey', 'SM9 master public key'),
        );
        const sig = hexOpt(opts, 'signature', 'SM9 signature');
        const ok = g.sm9Verify(master, opts.id as string, readInput(file), sig, {
          hid: parseHid(opts.hid as string),
        });
        verdict(opts, ok, 'SM9');
      }),
    );
  cmd
    .command('encap')
    .description('make a fresh key for an ID: prints the key and the encapsulation C')
    .requiredOption('-P, --master-public-key <hex>', 'enc master public key, hex or @FILE')
    .requiredOption('--id <id>', "the recipient's identity")
    .option('--length <bytes>', 'key length in bytes', '16')
    .addOption(json())
    .action(
      run((opts: Opts) => {
        const master = g.Sm9EncMasterPublicKey.fromBytes(
          hexOpt(opts, 'masterPublicKey', 'SM9 enc master public key'),
        );
        const r = g.sm9Encapsulate(master, opts.id as string, parseLength(opts.length as string));
        const [key, c] = [g.toHex(r.key), g.toHex(r.encapsulation)];
        out(opts, { key, encapsulation: c }, `key ${key}\nencapsulation ${c}`);
      }),
    );
  cmd
    .command('decap')
    .description('recover the key from an encapsulation C with the ID key')
    .requiredOption('-k, --key <hex>', "the recipient's SM9 enc key, hex or @FILE")
    .requiredOption('--id <id>', "the recipient's identity")
    .requiredOption('-c, --encapsulation <hex>', 'C from encap, hex or @FILE')
    .option('--length <bytes>', 'key length in bytes', '16')
    .addOption(json())
    .action(
      run((opts: Opts) => {
        const user = g.Sm9EncUserKey.fromBytes(hexOpt(opts, 'key', 'SM9 enc key'));
        const c = hexOpt(opts, 'encapsulation', 'SM9 encapsulation', 65);
        const key = g.toHex(g.sm9Decapsulate(user, opts.id as string, c, parseLength(opts.length as string)));
        out(opts, { key }, key);
      }),
    );
  return cmd;
}

function parseHid(v: string): number {
  const n = Number(v);
  if (!/^(0x[0-9a-f]{1,2}|\d{1,3})$/i.test(v) || n > 255)
    throw new KapokError(
      'KAPOK_GM_INVALID_INPUT',
      `--hid: expected a byte (0..255 or 0x00..0xff), found ${v}`,
    );
  return n;
}

function parseLength(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < 1 || n > 65536)
    throw new KapokError('KAPOK_GM_INVALID_INPUT', `--length: expected 1..65536 bytes, found ${v}`);
  return n;
}

export function gmCommand(): Command {
  return new Command('gm')
    .description('national cryptography tools: SM3 hash, SM4 encryption, SM2 and SM9 keys and signatures')
    .addCommand(sm3Command())
    .addCommand(sm4Command())
    .addCommand(sm2Command())
    .addCommand(sm9Command());
}

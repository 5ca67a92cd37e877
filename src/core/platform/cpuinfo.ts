/**
 * Which CPU this is, from the text of /proc/cpuinfo. ARM kernels print no model name, only the
 * implementer and part numbers (arch/arm64/include/asm/cputype.h), so the domestic server CPUs are
 * recognised by those: Kunpeng (HiSilicon 0x48, part 0xd01) and Phytium (0x70, parts 0x662, 0x663,
 * 0x862). x86 domestic CPUs (Hygon, Zhaoxin) by vendor_id. Never throws: unreadable or garbled
 * input gives an `unknown` CPU, and the caller falls back to what Node.js reports.
 */

export interface CpuInfo {
  arch: 'arm64' | 'x64' | 'unknown';
  /** e.g. HiSilicon, Phytium, Intel, AMD, Hygon, Zhaoxin; null when not recognised. */
  vendor: string | null;
  /** e.g. "Kunpeng 920", "Phytium D2000 / FT-2000/4 (FTC663)", or x86's model name. */
  model: string | null;
  /** Kunpeng, Phytium, Hygon or Zhaoxin. */
  domestic: boolean;
  /** Logical CPUs listed (processor entries); 0 when none could be read. */
  logicalCpus: number;
}

const ARM_VENDORS: Record<number, { vendor: string; parts: Record<number, string> }> = {
  72: { vendor: 'HiSilicon', parts: { 3329: 'Kunpeng 920' } },
  112: {
    vendor: 'Phytium',
    parts: {
      1634: 'Phytium FT-2000+/64 (FTC662)',
      1635: 'Phytium D2000 / FT-2000/4 (FTC663)',
      2146: 'Phytium S2500 (FTC862)',
    },
  },
  65: { vendor: 'ARM', parts: {} },
};
const DOMESTIC = new Set(['HiSilicon', 'Phytium', 'Hygon', 'Zhaoxin']);

const X86_VENDORS: Record<string, string> = {
  GenuineIntel: 'Intel',
  AuthenticAMD: 'AMD',
  HygonGenuine: 'Hygon',
  CentaurHauls: 'Zhaoxin',
  Shanghai: 'Zhaoxin',
};

/** Parses "0x48" or "72"; null for anything else. */
function num(v: string | undefined): number | null {
  if (v === undefined) return null;
  const s = v.trim();
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(s)) return null;
  return Number.parseInt(s, s.toLowerCase().startsWith('0x') ? 16 : 10);
}

export function parseCpuinfo(text: string): CpuInfo {
  const first = new Map<string, string>();
  let logicalCpus = 0;
  for (const line of String(text).split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const key = line.slice(0, i).trim().toLowerCase();
    const value = line.slice(i + 1).trim();
    if (key === 'processor' && /^[0-9]+$/.test(value)) logicalCpus++;
    if (!first.has(key)) first.set(key, value);
  }
  const unknown: CpuInfo = { arch: 'unknown', vendor: null, model: null, domestic: false, logicalCpus };

  const implementer = num(first.get('cpu implementer'));
  if (implementer !== null) {
    const part = num(first.get('cpu part'));
    const known = ARM_VENDORS[implementer];
    const vendor = known?.vendor ?? `implementer 0x${implementer.toString(16)}`;
    const model =
      part === null ? null : (known?.parts[part] ?? `${vendor} part 0x${part.toString(16).padStart(3, '0')}`);
    return { arch: 'arm64', vendor, model, domestic: DOMESTIC.has(vendor), logicalCpus };
  }
  const vendorId = first.get('vendor_id');
  if (vendorId !== undefined) {
    const vendor = X86_VENDORS[vendorId.trim()] ?? null;
    if (vendor === null && !/^[\x20-\x7e]{1,32}$/.test(vendorId)) return unknown;
    const name = first.get('model name');
    const model = name && /^[\x20-\x7e]{1,128}$/.test(name) ? name.replace(/\s+/g, ' ') : null;
    return {
      arch: 'x64',
      vendor: vendor ?? vendorId,
      model,
      domestic: DOMESTIC.has(vendor ?? ''),
      logicalCpus,
    };
  }
  return unknown;
}

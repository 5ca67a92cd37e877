import type { ChatRequest, EmbeddingsRequest } from '../providers/types.js';

/**
 * Prompt token estimates with a real BPE tokenizer. gpt-tokenizer rather than js-tiktoken: same
 * o200k/cl100k ranks, but measured here it counts a 3,000-token prompt in 0.5 ms where js-tiktoken
 * takes 4.4 ms, and loads in 0.14 s / +65 MB instead of 0.65 s / +150 MB.
 *
 * Text past MAX_EXACT_CHARS is extrapolated from the exact count of its first part, so a 1 MiB
 * prompt costs the same bounded time (the estimate only reserves quota and picks degradation; real
 * usage settles the quota afterwards).
 *
 * The rank tables cost ~65 MB of RSS (half the gateway's), so they are loaded only for a model that
 * needs exact counts: one with `degrade` (the count picks the route) or an explicit `tokenizer`.
 * Every other model reserves quota on `estimate` (estimateTokens below): the reservation is settled
 * to the upstream's reported usage after the call, so only a call whose upstream reports none
 * (a client that left a stream, an upstream without usage) is charged the estimate.
 */
export type TokenizerName = 'o200k' | 'cl100k' | 'estimate';
type Count = (text: string, opts: { disallowedSpecial: Set<string> }) => number;

export const MAX_EXACT_CHARS = 32_768;
/** OpenAI's chat accounting: each message costs 3 tokens of framing, the reply is primed with 3. */
const PER_MESSAGE = 3;
const PRIMING = 3;
// Special-token text in a prompt ("<|endoftext|>") is counted as plain text instead of throwing.
const PLAIN = { disallowedSpecial: new Set<string>() };

export interface TokenCounter {
  chat(req: ChatRequest): number;
  embeddings(req: EmbeddingsRequest): number;
  text(text: string): number;
}

/** The tokenizer a model uses: its own, else exact o200k only where `degrade` needs the count. */
export function tokenizerFor(m: { tokenizer?: TokenizerName | undefined; degrade: unknown }): TokenizerName {
  return m.tokenizer ?? (m.degrade ? 'o200k' : 'estimate');
}

/**
 * Tokens without rank tables: a quarter token per ASCII character (English runs ~4 characters a
 * token in o200k/cl100k) and one per other UTF-16 unit (a CJK character is 1–1.5 in cl100k, less in
 * o200k), so the estimate errs high on most non-English text rather than under-reserving.
 */
export function estimateTokens(s: string): number {
  let ascii = 0;
  let other = 0;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) < 0x80) ascii++;
    else other++;
  }
  return Math.ceil(ascii / 4) + other;
}

export async function loadTokenCounter(name: TokenizerName): Promise<TokenCounter> {
  if (name === 'estimate') return counterFor(estimateTokens);
  const mod: { countTokens: Count } =
    name === 'cl100k'
      ? await import('gpt-tokenizer/encoding/cl100k_base')
      : await import('gpt-tokenizer/encoding/o200k_base');
  const count = mod.countTokens;
  // The encoder builds its tables on first use (~0.3 s): pay that at start, not on a first request.
  count('Kapok 木棉 warm-up', PLAIN);
  const text = (s: string): number => {
    if (s.length <= MAX_EXACT_CHARS) return count(s, PLAIN);
    const head = count(s.slice(0, MAX_EXACT_CHARS), PLAIN);
    return Math.ceil((head * s.length) / MAX_EXACT_CHARS);
  };
  return counterFor(text);
}

function counterFor(text: (s: string) => number): TokenCounter {
  return {
    text,
    chat(req) {
      const parts: string[] = [];
      for (const m of req.messages) collectMessage(m as unknown as Record<string, unknown>, parts);
      if (Array.isArray(req.tools)) parts.push(JSON.stringify(req.tools));
      return text(parts.join('\n')) + PER_MESSAGE * req.messages.length + PRIMING;
    },
    embeddings(req) {
      const input = req.input;
      if (typeof input === 'string') return text(input);
      if (!Array.isArray(input)) return 0;
      let n = 0;
      for (const x of input) {
        if (typeof x === 'string') n += text(x);
        else if (Array.isArray(x))
          n += x.length; // already token ids
        else n += 1;
      }
      return n;
    },
  };
}

function collectMessage(m: Record<string, unknown>, parts: string[]): void {
  const c = m.content;
  if (typeof c === 'string') parts.push(c);
  else if (Array.isArray(c)) {
    for (const p of c) {
      if (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string')
        parts.push((p as { text: string }).text);
      // Images are not counted: their cost depends on the upstream model.
    }
  }
  if (typeof m.name === 'string') parts.push(m.name);
  if (Array.isArray(m.tool_calls)) parts.push(JSON.stringify(m.tool_calls));
}

import type { Expectation, Scenario } from './scenario.js';

/** A warning (or a strategy's warning) as scoring sees it: type and vehicle ids (actor first). */
export interface Observed {
  type: string;
  vehicles: string[];
}

export interface Score {
  expected: number;
  detected: number;
  /** detected / expected (1 when nothing was expected). */
  recall: number;
  /** Distinct warnings (type and vehicles) observed. */
  warnings: number;
  /** Distinct warnings matching no expectation nor allowance. */
  falseWarnings: number;
  falseRate: number;
  missed: string[];
  unexpected: string[];
}

function key(o: Observed): string {
  const v = o.type === 'ICW' ? [...o.vehicles].sort() : o.vehicles;
  return `${o.type}|${v.join('|')}`;
}

/**
 * Recall over the scripted expectations and false-warning rate over distinct observed warnings.
 * `ids` maps `<scenario>:<vehicle>` to the BSM id used in the run.
 */
export function score(scenarios: Scenario[], ids: Map<string, string>, observed: Observed[]): Score {
  const distinct = new Map<string, Observed>();
  for (const o of observed) distinct.set(key(o), o);
  const matches = (e: Expectation, s: Scenario, o: Observed) => {
    const actor = ids.get(`${s.name}:${e.vehicle}`);
    const other = e.other ? ids.get(`${s.name}:${e.other}`) : undefined;
    if (o.type !== e.type || !actor) return false;
    if (e.type === 'ICW') return o.vehicles.includes(actor) && (!other || o.vehicles.includes(other));
    return o.vehicles[0] === actor && (!other || o.vehicles[1] === undefined || o.vehicles[1] === other);
  };
  let expected = 0;
  let detected = 0;
  const missed: string[] = [];
  for (const s of scenarios)
    for (const e of s.expect) {
      expected++;
      if ([...distinct.values()].some((o) => matches(e, s, o))) detected++;
      else missed.push(`${s.name}: ${e.type} for ${e.vehicle}`);
    }
  const unexpected: string[] = [];
  for (const [k, o] of distinct) {
    const ok = scenarios.some((s) => [...s.expect, ...s.allow].some((e) => matches(e, s, o)));
    if (!ok) unexpected.push(k);
  }
  return {
    expected,
    detected,
    recall: expected === 0 ? 1 : detected / expected,
    warnings: distinct.size,
    falseWarnings: unexpected.length,
    falseRate: distinct.size === 0 ? 0 : unexpected.length / distinct.size,
    missed,
    unexpected: unexpected.slice(0, 20),
  };
}

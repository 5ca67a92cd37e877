/**
 * Circuit breaker per target (provider/model). Closed: requests flow, consecutive failures counted.
 * At `failureThreshold` it opens: the target is skipped for `cooldownMs`. Then half-open: exactly one
 * probe is let through; its success closes the circuit, its failure opens it for another cool-down.
 */
export type CircuitState = 'closed' | 'open' | 'half_open';

export interface CircuitOptions {
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
  onChange?: (state: CircuitState) => void;
}

export class Circuit {
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;
  readonly #o: Required<Omit<CircuitOptions, 'onChange'>> & Pick<CircuitOptions, 'onChange'>;

  constructor(opts: CircuitOptions) {
    this.#o = { now: Date.now, ...opts };
  }

  get state(): CircuitState {
    if (this.#state === 'open' && this.#o.now() - this.#openedAt >= this.#o.cooldownMs) return 'half_open';
    return this.#state;
  }

  get consecutiveFailures(): number {
    return this.#failures;
  }

  /** Whether a request may go to this target now; in half-open state this claims the one probe. */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open') return false;
    if (this.#probing) return false;
    this.#set('half_open');
    this.#probing = true;
    return true;
  }

  /** Whether tryAcquire would let a request through (no probe claimed). */
  available(): boolean {
    const s = this.state;
    return s === 'closed' || (s === 'half_open' && !this.#probing);
  }

  success(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#set('closed');
  }

  failure(): void {
    this.#failures++;
    const wasProbe = this.#probing;
    this.#probing = false;
    if (wasProbe || this.#failures >= this.#o.failureThreshold) {
      this.#openedAt = this.#o.now();
      this.#set('open');
    }
  }

  /** The attempt ended without a verdict (client went away): free the probe slot. */
  release(): void {
    this.#probing = false;
  }

  #set(s: CircuitState): void {
    if (this.#state === s) return;
    this.#state = s;
    this.#o.onChange?.(s);
  }
}

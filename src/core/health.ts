/**
 * Readiness of every enabled capability and backend. Components register a check; /readyz runs them
 * all (in parallel, each bounded by a timeout) and answers 503 when any is not ready.
 */

export type ComponentKind = 'backend' | 'capability';
export type ComponentState = 'ready' | 'not_ready' | 'stopping';

export interface CheckResult {
  ready: boolean;
  /** Short, secret-free detail shown in /readyz (e.g. circuit states, model versions). */
  detail?: string | Record<string, unknown>;
}

export interface ComponentCheck {
  name: string;
  kind: ComponentKind;
  check(): Promise<CheckResult> | CheckResult;
}

export interface ComponentStatus {
  name: string;
  kind: ComponentKind;
  state: ComponentState;
  detail?: string | Record<string, unknown>;
}

export interface Readiness {
  status: 'ready' | 'not_ready' | 'stopping';
  components: ComponentStatus[];
}

export class Health {
  readonly #checks = new Map<string, ComponentCheck>();
  #stopping = false;

  constructor(private readonly timeoutMs = 2000) {}

  register(check: ComponentCheck): void {
    if (this.#checks.has(check.name)) throw new Error(`health check "${check.name}" registered twice`);
    this.#checks.set(check.name, check);
  }

  /** From now on /readyz answers 503 so load balancers stop sending work while we drain. */
  markStopping(): void {
    this.#stopping = true;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  async readiness(): Promise<Readiness> {
    const components = await Promise.all([...this.#checks.values()].map((c) => this.#run(c)));
    if (this.#stopping) {
      return {
        status: 'stopping',
        components: components.map((c) => ({ ...c, state: 'stopping' as const })),
      };
    }
    return { status: components.every((c) => c.state === 'ready') ? 'ready' : 'not_ready', components };
  }

  async #run(c: ComponentCheck): Promise<ComponentStatus> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<CheckResult>((resolve) => {
        timer = setTimeout(
          () => resolve({ ready: false, detail: `check timed out after ${this.timeoutMs} ms` }),
          this.timeoutMs,
        );
      });
      const r = await Promise.race([Promise.resolve().then(() => c.check()), timeout]);
      return {
        name: c.name,
        kind: c.kind,
        state: r.ready ? 'ready' : 'not_ready',
        ...(r.detail === undefined ? {} : { detail: r.detail }),
      };
    } catch (err) {
      return {
        name: c.name,
        kind: c.kind,
        state: 'not_ready',
        detail: err instanceof Error ? err.message : String(err),
      };
    } finally {
      clearTimeout(timer);
    }
  }
}

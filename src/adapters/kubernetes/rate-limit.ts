/**
 * A token bucket: `burst` requests at once, refilled at `qps` per second (client-go's defaults are
 * 5 and 10; Kueue#8564 shows what too low a limit costs a controller, so both are configurable).
 */
export function createRateLimiter(qps: number, burst: number): { take(): Promise<void> } {
  let tokens = burst;
  let last = performance.now();
  let queue = Promise.resolve();
  const refill = () => {
    const now = performance.now();
    tokens = Math.min(burst, tokens + ((now - last) / 1000) * qps);
    last = now;
  };
  return {
    take() {
      // Chained so waiters are served in order.
      const turn = queue.then(async () => {
        refill();
        if (tokens < 1) {
          await new Promise((ok) => setTimeout(ok, Math.ceil(((1 - tokens) / qps) * 1000)));
          refill();
        }
        tokens -= 1;
      });
      queue = turn;
      return turn;
    },
  };
}

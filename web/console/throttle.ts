/**
 * Coalesces a flood into at most `hz` draws a second: `mark()` as often as data arrives, `draw` runs
 * on the next animation frame once the interval has passed, with whatever is latest by then.
 */
export function drawThrottle(draw: () => void, hz = 10) {
  const gap = 1000 / hz;
  let last = 0;
  let pending = false;
  let timer: number | undefined;
  const run = () => {
    pending = false;
    last = performance.now();
    draw();
  };
  return {
    mark() {
      if (pending) return;
      pending = true;
      const wait = Math.max(0, gap - (performance.now() - last));
      timer = window.setTimeout(() => requestAnimationFrame(run), wait);
    },
    cancel() {
      window.clearTimeout(timer);
      pending = false;
    },
  };
}

/**
 * Coalesces a flood into at most `hz` draws a second: `mark()` as often as data arrives, `draw` runs
 * on the next animation frame once the interval has passed, with whatever is latest by then.
 * `frame: false` runs `draw` in its own timer task instead: a Preact render then does not share a
 * task with the frame's style, layout and paint (the edge page under a flood keeps each task short).
 */
export function drawThrottle(draw: () => void, hz = 10, frame = true) {
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
      timer = window.setTimeout(frame ? () => requestAnimationFrame(run) : run, wait);
    },
    cancel() {
      window.clearTimeout(timer);
      pending = false;
    },
  };
}

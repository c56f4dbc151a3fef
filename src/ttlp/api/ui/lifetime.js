// A view's lifetime: its timers stop, and their callbacks are skipped, once the view is gone
// (a request that answers after that changes nothing).

export function lifetime() {
  const timers = new Set();
  const life = {
    alive: true,
    /** ``fn`` once after ``ms``, while the view lives. */
    later(fn, ms) {
      const t = setTimeout(() => {
        timers.delete(t);
        if (life.alive) fn();
      }, ms);
      timers.add(t);
    },
    /** ``fn`` every ``ms``, while the view lives. */
    every(fn, ms) {
      const t = setInterval(() => life.alive && fn(), ms);
      timers.add(t);
    },
    end() {
      life.alive = false;
      for (const t of timers) {
        clearTimeout(t);
        clearInterval(t);
      }
    },
  };
  return life;
}

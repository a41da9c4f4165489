/**
 * Batches DOM work per animation frame: any number of schedule() calls between two frames run each
 * task once. A hidden tab gets no frames, so no work is done for it until it is shown again.
 */
const tasks = new Set<() => void>();
let requested = false;

export function schedule(task: () => void): void {
  tasks.add(task);
  if (!requested) {
    requested = true;
    requestAnimationFrame(run);
  }
}

function run(): void {
  requested = false;
  const list = [...tasks];
  tasks.clear();
  for (const t of list) {
    try {
      t();
    } catch (err) {
      console.error('frame task failed', err);
    }
  }
}

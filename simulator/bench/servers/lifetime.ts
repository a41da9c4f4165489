/**
 * Bench servers end with their orchestrator: they exit when their parent process is gone (their
 * parent PID changes) or after BENCH_MAX_LIFE_MS (default 120 s), whichever comes first. bench.ts
 * stops them by PID anyway; this covers an orchestrator that was killed.
 */
export function boundLifetime(): void {
  const parent = process.ppid;
  const maxLife = Number(process.env.BENCH_MAX_LIFE_MS ?? 120_000);
  setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 1000).unref();
  setTimeout(() => {
    process.stderr.write(`bench server: time limit of ${maxLife} ms reached, exiting\n`);
    process.exit(3);
  }, maxLife).unref();
  process.on('SIGTERM', () => process.exit(0));
}

import { parseArgs } from 'node:util';

/** The lock backends the demo can run on. */
export type BackendName = 'mmap' | 'shm' | 'sab';

/** What a demo run does, as parsed from the command line by {@link parseOptions}. */
export interface DemoOptions {
  /** `mmap` (default): forked children share a memfd; `shm`: a named lock file; `sab`: worker threads. */
  backend: BackendName;
  /** Participants (processes, or worker threads with `sab`). Default 64. */
  procs: number;
  /** Run for this many seconds after the start barrier (default 3), unless `iterations` is set. */
  seconds: number | null;
  /** Every participant takes the lock exactly this many times, then stops. */
  iterations: number | null;
  /** Run until Ctrl-C (SIGINT) or SIGTERM, like the recipe's `while True`. */
  forever: boolean;
  /** No per-acquisition ` ------ <pid> ------ ` lines. */
  quiet: boolean;
  /** Print the summary as one JSON document on stdout (implies `quiet`). */
  json: boolean;
  /** Write an SVG timeline to this file. */
  svg: string | null;
  /** Test hook: one participant dies while holding the lock (hidden from --help). */
  crashOne: boolean;
  help: boolean;
}

/** Thrown by {@link parseOptions} for a bad command line; the CLI prints it with the usage. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The text of `bakery-demo --help`. */
export const USAGE = `Usage: bakery-demo [options]

N participants take turns through one bakery lock: each, holding the lock, prints
" ------ <pid> ------ " and does a non-atomic read-yield-write of a shared counter.
The parent checks the counter, exclusion, fairness and ticket bound, and prints a summary.

Options:
  --backend mmap|shm|sab  mmap: forked processes share a memfd (default)
                          shm: forked processes open a named lock file by name
                          sab: worker threads share a SharedArrayBuffer
  --procs N               participants (default 64)
  --seconds S             run S seconds after all participants have opened the lock (default 3)
  --iterations N          instead: every participant takes the lock N times
  --forever               run until Ctrl-C (the recipe's endless loop)
  --quiet                 no per-acquisition lines (much faster on a terminal)
  --json                  print the summary as JSON on stdout (implies --quiet)
  --svg FILE              write a timeline picture (one row per participant)
  -h, --help              this text

Exit status: 0 when every check passed; 1 when a check failed or a participant crashed;
2 for a bad command line; 130 when interrupted before a bounded run finished.`;

function positiveInt(name: string, v: string | undefined, max: number): number | null {
  if (v === undefined) return null;
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > max)
    throw new UsageError(`--${name} must be an integer from 1 to ${max}, got "${v}"`);
  return Number(v);
}

/**
 * Parse the demo's command line (without `node` and the script).
 *
 * @throws UsageError on unknown options or bad values.
 * @example
 * ```ts
 * parseOptions(['--backend', 'sab', '--procs', '8', '--quiet']);
 * ```
 */
export function parseOptions(argv: string[]): DemoOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        backend: { type: 'string' },
        procs: { type: 'string' },
        seconds: { type: 'string' },
        iterations: { type: 'string' },
        forever: { type: 'boolean' },
        quiet: { type: 'boolean' },
        json: { type: 'boolean' },
        svg: { type: 'string' },
        'crash-one': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const backend = (values.backend as string | undefined) ?? 'mmap';
  if (backend !== 'mmap' && backend !== 'shm' && backend !== 'sab')
    throw new UsageError(`--backend must be mmap, shm or sab, got "${backend}"`);
  // The lock holds at most 4096 slots; one is the parent's.
  const procs = positiveInt('procs', values.procs as string | undefined, 4095) ?? 64;
  const iterations = positiveInt('iterations', values.iterations as string | undefined, 1e9);
  let seconds: number | null = null;
  if (values.seconds !== undefined) {
    seconds = Number(values.seconds);
    if (!(seconds > 0 && seconds <= 86_400))
      throw new UsageError(`--seconds must be a number in (0, 86400], got "${values.seconds}"`);
  }
  const forever = values.forever === true;
  const bounds = [seconds !== null, iterations !== null, forever].filter(Boolean).length;
  if (bounds > 1) throw new UsageError('use only one of --seconds, --iterations and --forever');
  if (bounds === 0) seconds = 3;
  const json = values.json === true;
  return {
    backend,
    procs,
    seconds,
    iterations,
    forever,
    quiet: json || values.quiet === true,
    json,
    svg: (values.svg as string | undefined) ?? null,
    crashOne: values['crash-one'] === true,
    help: values.help === true,
  };
}

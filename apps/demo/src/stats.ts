import type { DoneMessage } from './protocol.js';

/** What happened to one participant that did not finish normally. */
export interface Casualty {
  id: number;
  pid: number;
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: string | null;
  /** Its error message, when it reported one. */
  error: string | null;
  /** The demo killed it: it did not stop in time after a stop, or was waiting on a dead holder. */
  forced: boolean;
}

/** Everything the demo measured and checked; printed as text, or as JSON with `--json`. */
export interface Summary {
  /** Every check passed and nothing crashed. */
  ok: boolean;
  backend: string;
  /** How participants ran: processes or worker threads. */
  kind: string;
  participants: number;
  /** Slots in the lock: one per participant plus the parent's idle one. */
  slots: number;
  /** How the run was bounded. */
  bound: string;
  /** Start of the first participant until the last one had opened the lock. */
  startupMs: number;
  /** From the start barrier until the last participant stopped. */
  durationMs: number;
  acquisitions: number;
  /** The shared counter (one non-atomic increment per acquisition). */
  counter: number;
  /** acquisitions / duration. */
  perSecond: number;
  perParticipant: { min: number; median: number; max: number };
  /** Jain's fairness index of acquisitions per participant: 1 = perfectly even, 1/n = one hog. */
  jain: number;
  /**
   * How many acquisitions by others came between two of one participant's own; perfect FIFO
   * round-robin with everyone always queued gives participants − 1 every time.
   */
  turnsBetween: { min: number; median: number; max: number } | null;
  /** Time from calling lock() to holding it, ms. */
  waitMs: { p50: number; p99: number; max: number };
  /** Median time inside the critical section, µs. */
  holdUs: number;
  /** Largest ticket the lock ever issued (Black-White bakery: ≤ participants). */
  maxTicket: number;
  violations: {
    /** The occupancy cell found someone else inside. */
    occupancy: number;
    /** Recorded critical sections that overlap in time. */
    overlaps: number;
  };
  /** False when the per-participant sample cap was hit (statistics cover the kept samples). */
  allSampled: boolean;
  /** Set when the run was cut short. */
  stoppedBy: 'interrupt' | 'crash' | null;
  casualties: Casualty[];
  /** OS process ids of the participants (all the same for worker threads). */
  pids: number[];
  /** Human-readable reasons for `ok === false`. */
  problems: string[];
}

/** Inputs of {@link summarize}, gathered by the parent. */
export interface RunRecord {
  backend: string;
  kind: string;
  participants: number;
  slots: number;
  bound: string;
  startupMs: number;
  reports: DoneMessage[];
  counter: number;
  maxTicket: number;
  stoppedBy: 'interrupt' | 'crash' | null;
  casualties: Casualty[];
  pids: number[];
}

/** One critical section, flattened from the participants' samples (times in µs after go). */
export interface Section {
  id: number;
  enter: number;
  hold: number;
  wait: number;
}

/** All recorded critical sections in the order they happened. */
export function sections(reports: DoneMessage[]): Section[] {
  const out: Section[] = [];
  for (const r of reports) {
    const s = r.samples;
    for (let k = 0; k + 2 < s.length; k += 3)
      out.push({ id: r.id, enter: s[k]!, hold: s[k + 1]!, wait: s[k + 2]! });
  }
  return out.sort((a, b) => a.enter - b.enter);
}

function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))]!;
}

/** Jain's fairness index (Σx)² / (n·Σx²). */
export function jain(xs: number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const sq = xs.reduce((a, b) => a + b * b, 0);
  return sq === 0 ? 1 : (sum * sum) / (xs.length * sq);
}

/** Compute the {@link Summary} and its verdict from what the participants reported. */
export function summarize(run: RunRecord): Summary {
  const { reports } = run;
  const counts = reports.map((r) => r.acquisitions).sort((a, b) => a - b);
  // Participants that never reported count as 0 for fairness.
  while (counts.length < run.participants) counts.unshift(0);
  const acquisitions = counts.reduce((a, b) => a + b, 0);
  const secs = sections(reports);
  const waits = Float64Array.from(secs, (s) => s.wait).sort();
  const holds = Float64Array.from(secs, (s) => s.hold).sort();
  let overlaps = 0;
  let busyUntil = -Infinity;
  for (const s of secs) {
    if (s.enter < busyUntil) overlaps++;
    busyUntil = Math.max(busyUntil, s.enter + s.hold);
  }
  let turnsBetween: Summary['turnsBetween'] = null;
  const last = new Map<number, number>();
  const gaps: number[] = [];
  secs.forEach((s, k) => {
    const prev = last.get(s.id);
    if (prev !== undefined) gaps.push(k - prev - 1);
    last.set(s.id, k);
  });
  if (gaps.length > 0) {
    gaps.sort((a, b) => a - b);
    turnsBetween = { min: gaps[0]!, median: quantile(gaps, 0.5), max: gaps[gaps.length - 1]! };
  }
  const durationUs = reports.reduce((m, r) => Math.max(m, r.finishedUs), 0);
  const occupancy = reports.reduce((a, r) => a + r.violations, 0);
  const allSampled = reports.every((r) => r.samples.length / 3 === r.acquisitions);

  const problems: string[] = [];
  for (const c of run.casualties) {
    if (c.forced) continue;
    const how = c.signal !== null ? `was killed by ${c.signal}` : `exited with code ${c.code}`;
    problems.push(
      `participant ${c.id} (pid ${c.pid}) ${how}${c.error ? `: ${c.error.split('\n')[0]}` : ''}`,
    );
  }
  const forced = run.casualties.filter((c) => c.forced).length;
  if (forced > 0)
    problems.push(
      `${forced} participant${forced === 1 ? ' was' : 's were'} still waiting and had to be killed by the demo`,
    );
  if (run.casualties.length === 0 && run.counter !== acquisitions)
    problems.push(`counter is ${run.counter} but participants report ${acquisitions} acquisitions`);
  if (occupancy + overlaps > 0)
    problems.push(
      `${occupancy + overlaps} exclusion violations (${occupancy} occupancy, ${overlaps} overlaps)`,
    );
  if (run.maxTicket > run.participants)
    problems.push(`ticket ${run.maxTicket} exceeds the ${run.participants} participants`);
  if (run.casualties.length === 0 && acquisitions === 0) problems.push('no acquisitions at all');

  return {
    ok: problems.length === 0,
    backend: run.backend,
    kind: run.kind,
    participants: run.participants,
    slots: run.slots,
    bound: run.bound,
    startupMs: run.startupMs,
    durationMs: durationUs / 1e3,
    acquisitions,
    counter: run.counter,
    perSecond: durationUs > 0 ? acquisitions / (durationUs / 1e6) : 0,
    perParticipant: {
      min: counts[0] ?? 0,
      median: quantile(counts, 0.5),
      max: counts[counts.length - 1] ?? 0,
    },
    jain: jain(counts),
    turnsBetween,
    waitMs: {
      p50: quantile(waits, 0.5) / 1e3,
      p99: quantile(waits, 0.99) / 1e3,
      max: (waits[waits.length - 1] ?? 0) / 1e3,
    },
    holdUs: quantile(holds, 0.5),
    maxTicket: run.maxTicket,
    violations: { occupancy, overlaps },
    allSampled,
    stoppedBy: run.stoppedBy,
    casualties: run.casualties,
    pids: run.pids,
    problems,
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fix = (n: number, d: number) => n.toFixed(d);
const secs = (ms: number) => `${fix(ms / 1e3, 2)} s`;

/** The summary as aligned text lines (also the SVG's caption). */
export function summaryLines(s: Summary): string[] {
  const threads = s.kind.startsWith('worker');
  const who = threads ? 'threads' : 'processes';
  const one = threads ? 'thread' : 'process';
  const lines = [
    `bakery demo: ${s.participants} ${s.kind} over @bakery/${s.backend}, ${s.bound}`,
    `  startup      ${s.participants} ${who} opened the lock in ${secs(s.startupMs)}, then a start barrier let them all go at once`,
    `  acquisitions ${int(s.acquisitions)} in ${secs(s.durationMs)} = ${int(s.perSecond)}/s   shared counter ${int(s.counter)} ${s.counter === s.acquisitions ? '= sum of reports' : '≠ sum of reports'}${s.casualties.length > 0 ? ` (${s.casualties.length} did not report)` : ''}`,
    `  fairness     per ${one} min ${int(s.perParticipant.min)} · median ${int(s.perParticipant.median)} · max ${int(s.perParticipant.max)}   Jain's index ${fix(s.jain, 4)}`,
  ];
  if (s.turnsBetween !== null)
    lines.push(
      `  turn-taking  others served between two turns: median ${s.turnsBetween.median} (round-robin = ${s.participants - 1}), min ${s.turnsBetween.min}, max ${s.turnsBetween.max}`,
    );
  lines.push(
    `  wait         p50 ${fix(s.waitMs.p50, 2)} ms · p99 ${fix(s.waitMs.p99, 2)} ms · max ${fix(s.waitMs.max, 2)} ms   (hold median ${fix(s.holdUs, 0)} µs)`,
    `  tickets      largest ever issued ${s.maxTicket} (${s.participants} participants, ${s.slots} slots)`,
    `  exclusion    ${s.violations.occupancy + s.violations.overlaps} violations (occupancy probe ${s.violations.occupancy}, overlapping critical sections ${s.violations.overlaps})`,
  );
  if (!s.allSampled)
    lines.push(
      '  note         sample cap reached: timing statistics cover the first samples of each',
    );
  if (s.stoppedBy === 'interrupt')
    lines.push('  stopped      by a signal (Ctrl-C/SIGTERM); participants released and reaped');
  for (const p of s.problems) lines.push(`  PROBLEM      ${p}`);
  lines.push(`  result       ${s.ok ? 'OK' : 'FAILED'}`);
  return lines;
}

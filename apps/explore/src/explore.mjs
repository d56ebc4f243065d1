// The exploration loop, for the command line (cli.mjs) and the tests.
import { scenario as findScenario } from './scenarios.mjs';
import { Explorer } from './scheduler.mjs';
import {
  decodeTrace,
  encodeTrace,
  PreemptionBounded,
  pct,
  pos,
  randomWalk,
  replayTrace,
} from './strategies.mjs';

/** The strategy a seed names: `<scenario>/<strategy>/<value>`. */
export function strategyFor(sc, kind, value) {
  if (kind === 'random') return randomWalk(Number(value), sc.crashP);
  if (kind === 'pos') return pos(Number(value), sc.participants.length, sc.crashP);
  if (kind === 'posaba') return pos(Number(value), sc.participants.length, sc.crashP, 0.3);
  const m = /^pct(\d)$/.exec(kind);
  if (m) return pct(Number(value), sc.participants.length, Number(m[1]), sc.k ?? 500, sc.crashP);
  if (kind === 'trace') return replayTrace(decodeTrace(value));
  throw new Error(`unknown strategy ${kind} in the seed`);
}

export const fmt = (n) => n.toLocaleString('en-US');

/**
 * The strategies a scenario's schedules take in turn, unless it names its own: partial order
 * sampling most (it finds the most here), with and without stalls at compareExchanges, a
 * random walk, PCT of depth 2–4, and the preemption-bounded enumeration.
 */
const DEFAULT_TURNS = ['pos', 'random', 'posaba', 'pct', 'pos', 'dfs'];

/**
 * Explore one scenario on one build for `ms`: partial order sampling, a random walk, PCT of
 * depths 2–4 and the preemption-bounded enumeration (bound 1, then 2), taking turns. Stops at
 * the first violation.
 */
export async function exploreScenario(sc, core, ms, seedBase, log) {
  const ex = new Explorer(sc, core);
  ex.states = new Set();
  await ex.start();
  const t0 = performance.now();
  let runs = 0;
  let steps = 0;
  const totals = { entries: 0, crashes: 0, gaveUp: 0, waits: 0, sleeps: 0 };
  let dfs = new PreemptionBounded(1);
  const turns = sc.strategies ?? DEFAULT_TURNS;
  const dfsDone = [];
  let found = null;
  try {
    for (let i = 0; performance.now() - t0 < ms; i++) {
      let seed;
      let res;
      const kind = turns[i % turns.length];
      if (kind === 'dfs' && dfs !== null) {
        res = ex.run(dfs.chooser());
        seed = `${sc.name}/trace/${encodeTrace(res.trace)}`;
        if (!dfs.advance(res.steps)) {
          dfsDone.push(`bound ${dfs.bound}: all ${fmt(dfs.runs)} schedules`);
          dfs = dfs.bound < 2 ? new PreemptionBounded(dfs.bound + 1) : null;
        }
      } else {
        const k =
          kind === 'pct'
            ? `pct${2 + (Math.floor(i / turns.length) % 3)}`
            : kind === 'dfs'
              ? 'pos'
              : kind;
        const value = seedBase + i;
        res = ex.run(strategyFor(sc, k, value));
        seed = `${sc.name}/${k}/${value}`;
      }
      runs++;
      steps += res.steps;
      for (const k of Object.keys(totals)) totals[k] += res.stats[k];
      if (res.violation !== null) {
        found = { violation: res.violation, seed };
        break;
      }
    }
  } finally {
    await ex.stop();
  }
  const secs = (performance.now() - t0) / 1000;
  if (!turns.includes('dfs')) dfsDone.push('not used');
  else if (dfs !== null) dfsDone.push(`bound ${dfs.bound}: ${fmt(dfs.runs)} schedules so far`);
  log(
    `${sc.name.padEnd(16)} ${fmt(runs).padStart(7)} schedules ${(runs / secs).toFixed(0).padStart(5)}/s ` +
      `${fmt(steps).padStart(11)} steps ${fmt(ex.states.size).padStart(6)} protocol states  ` +
      `entries ${fmt(totals.entries)}, crashes ${fmt(totals.crashes)}, gave up ${fmt(totals.gaveUp)}, ` +
      `futex waits ${fmt(totals.waits)}, sleeps ${fmt(totals.sleeps)}; enumerated ${dfsDone.join(', ')}`,
  );
  return { found, runs, steps, secs, states: ex.states.size };
}

export async function replay(seedText, core, mutantName, all = false) {
  const [name, kind, ...rest] = seedText.split('/');
  const sc = findScenario(name);
  const ex = new Explorer(sc, core);
  ex.record = [];
  await ex.start();
  try {
    const res = ex.run(strategyFor(sc, kind, rest.join('/')));
    const tail = all ? ex.record : ex.record.slice(-60);
    console.log(
      `replay of ${seedText}${mutantName ? ` on mutant ${mutantName}` : ''}: ${res.steps} steps`,
    );
    if (tail.length > 0) console.log(`last ${tail.length} steps:\n${tail.join('\n')}`);
    if (res.violation === null) {
      console.log('no violation in this schedule');
      return 0;
    }
    console.log(`VIOLATION: ${res.violation}`);
    return 1;
  } finally {
    await ex.stop();
  }
}

/** Explore every given scenario within the budget (split evenly); the first violation ends it. */
export async function exploreAll(list, core, budgetS, seedBase, label) {
  console.log(
    `exploring ${label}: ${list.length} scenario(s), ${budgetS} s, base seed ${seedBase}`,
  );
  const t0 = performance.now();
  let runs = 0;
  let steps = 0;
  for (let k = 0; k < list.length; k++) {
    const left = budgetS * 1000 - (performance.now() - t0);
    const share = left / (list.length - k);
    const r = await exploreScenario(list[k], core, share, seedBase, (s) => console.log(`  ${s}`));
    runs += r.runs;
    steps += r.steps;
    if (r.found !== null) {
      const secs = (performance.now() - t0) / 1000;
      return { found: r.found, runs, steps, secs };
    }
  }
  return { found: null, runs, steps, secs: (performance.now() - t0) / 1000 };
}

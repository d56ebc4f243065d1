import { pathToFileURL } from 'node:url';
import { describe, expect, test } from 'vitest';
import { exploreScenario, replay, strategyFor } from '../src/explore.mjs';
import { buildMutant, coreDist, mutants } from '../src/mutants.mjs';
import { scenario, scenarios } from '../src/scenarios.mjs';
import { Explorer } from '../src/scheduler.mjs';

const realCore = pathToFileURL(`${coreDist()}/index.js`).href;
const quiet = () => {};

describe('the explorer', () => {
  test('every mutant patches the build in exactly the places it names (a stale pattern is an error)', () => {
    expect(mutants.length).toBeGreaterThanOrEqual(6);
    for (const m of mutants) {
      const built = buildMutant(m.name);
      built.cleanup();
    }
    expect(() => buildMutant('no-such-mutant')).toThrow(/no mutant named/);
  });

  test('a schedule is a function of its seed: the same seed gives the same steps and outcome', async () => {
    const sc = scenario('crash-recovery');
    const ex = new Explorer(sc, realCore);
    await ex.start();
    try {
      const a = ex.run(strategyFor(sc, 'pos', 4242));
      const b = ex.run(strategyFor(sc, 'pos', 4243));
      const c = ex.run(strategyFor(sc, 'pos', 4242));
      expect(a.violation).toBeNull();
      expect(c.trace).toEqual(a.trace);
      expect(c.stats).toEqual(a.stats);
      expect(b.trace).not.toEqual(a.trace);
    } finally {
      await ex.stop();
    }
  });

  test('it catches a broken lock (a mutant), and the seed it prints replays the violation', async () => {
    const m = buildMutant('exit-toggles-colour');
    try {
      const r = await exploreScenario(scenario('three-lockers'), m.url, 20_000, 1, quiet);
      expect(r.found).not.toBeNull();
      expect(r.found.violation).toMatch(/mutual exclusion|first-come-first-served/);
      const lines = [];
      const log = console.log;
      console.log = (s) => lines.push(String(s));
      let code;
      try {
        code = await replay(r.found.seed, m.url, m.name);
      } finally {
        console.log = log;
      }
      expect(code).toBe(1);
      expect(lines.at(-1)).toBe(`VIOLATION: ${r.found.violation}`);
      // The same schedule on the real build is fine.
      console.log = () => {};
      try {
        expect(await replay(r.found.seed, realCore)).toBe(0);
      } finally {
        console.log = log;
      }
    } finally {
      m.cleanup();
    }
  });

  test('the real build passes a short exploration of every scenario', async () => {
    for (const sc of scenarios) {
      const r = await exploreScenario(sc, realCore, 700, 77, quiet);
      expect(r.found, sc.name).toBeNull();
      expect(r.runs, sc.name).toBeGreaterThan(0);
    }
  });
});

#!/usr/bin/env node
// bakery's schedule explorer: the real @bakery/core under a controlled scheduler.
//   npm run explore                          every scenario, 60 s budget, exit 1 on a violation
//   npm run explore -- --budget 20 --scenario crash-recovery
//   npm run explore -- --mutants             the broken variants, one name a line
//   npm run explore -- --mutant <name>       explore that variant (exit 1 once caught)
//   npm run explore -- --all-mutants         every variant must be caught (exit 1 if one survives)
//   npm run explore -- --replay <seed> [--mutant <name>]   one schedule again, step by step
import { pathToFileURL } from 'node:url';
import { exploreAll, fmt, replay } from './explore.mjs';
import { buildMutant, coreDist, mutants } from './mutants.mjs';
import { scenario as findScenario, scenarios } from './scenarios.mjs';

function parse(argv) {
  const o = { budget: undefined, scenario: undefined, seed: undefined, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--budget') o.budget = Number(val());
    else if (a === '--scenario') o.scenario = val();
    else if (a === '--seed') o.seed = Number(val());
    else if (a === '--mutant') o.mutant = val();
    else if (a === '--mutants') o.listMutants = true;
    else if (a === '--all-mutants') o.allMutants = true;
    else if (a === '--scenarios') o.listScenarios = true;
    else if (a === '--replay') o.replay = val();
    else if (a === '--verbose') o.verbose = true;
    else if (a === '--help' || a === '-h') o.help = true;
    else throw new Error(`unknown option ${a} (--help)`);
  }
  if (o.budget !== undefined && !(o.budget > 0)) throw new Error('--budget must be seconds > 0');
  if (o.seed !== undefined && !Number.isInteger(o.seed))
    throw new Error('--seed must be an integer');
  return o;
}

async function main() {
  const o = parse(process.argv.slice(2));
  if (o.help) {
    console.log(
      'usage: explore [--budget S] [--scenario NAME] [--seed N] [--mutant NAME] [--replay SEED]\n       explore --mutants | --all-mutants | --scenarios',
    );
    return 0;
  }
  if (o.listMutants) {
    for (const m of mutants) console.log(m.name);
    return 0;
  }
  if (o.listScenarios) {
    for (const s of scenarios) console.log(`${s.name.padEnd(16)} ${s.about}`);
    return 0;
  }
  const seedBase = o.seed ?? (Date.now() % 1_000_000) * 1000;
  const realCore = pathToFileURL(`${coreDist()}/index.js`).href;
  if (o.replay !== undefined) {
    if (o.mutant === undefined) return replay(o.replay, realCore, undefined, o.verbose);
    const m = buildMutant(o.mutant);
    try {
      return await replay(o.replay, m.url, o.mutant, o.verbose);
    } finally {
      m.cleanup();
    }
  }
  const pick = (names) =>
    o.scenario !== undefined ? [findScenario(o.scenario)] : names.map(findScenario);
  if (o.mutant !== undefined || o.allMutants) {
    const names = o.allMutants ? mutants.map((m) => m.name) : [o.mutant];
    const survivors = [];
    for (const name of names) {
      const def = mutants.find((m) => m.name === name);
      if (def === undefined) throw new Error(`no mutant named ${name} (--mutants lists them)`);
      const budget = o.budget ?? def.budget ?? 30;
      const m = buildMutant(name);
      let r;
      try {
        r = await exploreAll(pick(def.scenarios), m.url, budget, seedBase, `mutant ${name}`);
      } finally {
        m.cleanup();
      }
      if (r.found === null) {
        console.log(
          `SURVIVED: mutant ${name} (${def.about}) — nothing found in ${r.secs.toFixed(1)} s`,
        );
        survivors.push(name);
        continue;
      }
      console.log(
        `caught mutant ${name} after ${fmt(r.runs)} schedules (${r.secs.toFixed(1)} s): ${r.found.violation}\n  replay: npm run explore -- --mutant ${name} --replay ${r.found.seed}`,
      );
    }
    if (o.allMutants) {
      console.log(
        survivors.length === 0
          ? `all ${names.length} mutants caught`
          : `${survivors.length} of ${names.length} mutants survived: ${survivors.join(', ')}`,
      );
      return survivors.length === 0 ? 0 : 1;
    }
    return survivors.length === 0 ? 1 : 0;
  }
  const r = await exploreAll(
    pick(scenarios.map((s) => s.name)),
    realCore,
    o.budget ?? 60,
    seedBase,
    'the build of @bakery/core',
  );
  console.log(
    `${fmt(r.runs)} schedules, ${fmt(r.steps)} steps in ${r.secs.toFixed(1)} s: ${(r.runs / r.secs).toFixed(0)} schedules/s, ${(r.steps / r.secs / 1000).toFixed(1)}k steps/s`,
  );
  if (r.found !== null) {
    console.log(
      `VIOLATION: ${r.found.violation}\n  replay: npm run explore -- --replay ${r.found.seed}`,
    );
    return 1;
  }
  console.log('no violation found');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err?.stack ?? err);
    process.exit(2);
  },
);

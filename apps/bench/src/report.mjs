// The outputs: markdown tables (detail and summary; the PostgreSQL rows against their peer), the
// targets of issues 7, 12 and 15 as ratios from the same run, and an SVG chart (acquisitions/s vs P, log scales; Jain's fairness
// vs P).
import { DEFAULT_MAX_BATCH, KIND_NAMES, SUBJECTS } from './subjects.mjs';

const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const fmtRate = (x) => {
  if (!Number.isFinite(x)) return '–';
  if (x >= 100) return fmtInt(x);
  if (x >= 1) return x.toFixed(1);
  return x.toFixed(2);
};
export const fmtNs = (ns) => {
  if (!Number.isFinite(ns)) return '–';
  if (ns < 1e3) return `${ns.toFixed(0)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 2 : 1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
};
const fmtCpu = (x) => (Number.isFinite(x) ? (x >= 0.01 ? x.toFixed(3) : x.toPrecision(2)) : '–');
const fmtRatio = (x) =>
  Number.isFinite(x) ? (x >= 10 ? x.toFixed(0) : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2)) : '–';
const fmtEntries = (e) => {
  if (!e) return '–';
  if (e.from === 'call') return `${fmtInt(e.max)} from the call`;
  return `${fmtInt(e.max)} / ${fmtInt(e.bound)}${e.over ? ' ⚠ over' : ''}`;
};
/** The uncontended figure, marked when it is wall time (a lock in a server) rather than CPU. */
const fmtUnc = (r) => `${fmtNs(r.uncontendedNs)}${r.uncontendedClock === 'wall' ? ' wall' : ''}`;

/** The peers each of our subjects is compared with at the same P: the strict-FIFO limit and the
 * barging lock people use (`multiprocessing.Lock`). */
export const PEERS = { 'c-fifo': 'C FIFO', mplock: 'mplock' };

/**
 * Adds to every subject's row `vs`: for each peer of PEERS and for the subject's own `peer` (the
 * PostgreSQL rows: advisory-lock over the same transport) measured at the same P, this subject's
 * acquisitions/s (`rate`) and CPU per acquisition (`cpu`) as multiples of the peer's. Rows of a
 * re-rendered run (`--from`) get them recomputed.
 */
export function compare(results, meta) {
  for (const s of SUBJECTS) {
    const r = results[s.id];
    if (!r?.byP) continue;
    for (const p of meta.procs) {
      const x = r.byP[p];
      if (!x) continue;
      x.vs = {};
      for (const peer of [...Object.keys(PEERS), ...(s.peer ? [s.peer] : [])]) {
        const y = results[peer]?.byP?.[p];
        if (!y || peer === s.id) continue;
        x.vs[peer] = { rate: x.rate / y.rate, cpu: x.cpuPer1k / y.cpuPer1k };
      }
    }
  }
  return results;
}
export function caption(meta) {
  const m = meta.machine;
  return (
    `${meta.date} · ${m.cpuModel} × ${m.cpus} · ${m.os} · Node ${m.node}` +
    (m.python ? ` · ${m.python}` : '') +
    ` · load average at start ${m.loadavg.map((x) => x.toFixed(2)).join(' / ')}` +
    ` · ${meta.mode} run: window ${meta.windowMs} ms after ${meta.warmupMs} ms of warm-up (recipe ${meta.recipeWindowMs} ms),` +
    ` median of ${meta.runs} run${meta.runs > 1 ? 's' : ''}, critical section ≈ ${meta.workUs} µs` +
    (meta.pg
      ? ` · PostgreSQL rows: ${meta.pg.version ?? 'server'} (${meta.pg.server}), window ${Math.max(meta.windowMs, meta.pgWindowMs)} ms, P ≤ 16`
      : '') +
    (meta.cFifo
      ? ` · c-fifo built by ${meta.cFifo.compiler} ${meta.cFifo.flags}, spin ${meta.cFifo.spin}`
      : '')
  );
}

/** One row per subject and P. */
export function detailTable(results, meta) {
  const peers = Object.entries(PEERS);
  const heads = [
    'subject',
    'participants',
    'P',
    'acquisitions/s',
    ...peers.map(([, name]) => `× ${name}`),
    'uncontended lock+unlock',
    'per participant min / max',
    'Jain',
    'wait p50',
    'wait p99',
    'CPU s / 1k acq',
    ...peers.map(([, name]) => `CPU/acq × ${name}`),
    'entries while waiting max / bound',
    'lost updates',
  ];
  const lines = [
    `| ${heads.join(' | ')} |`,
    `|---|---|${heads
      .slice(2)
      .map(() => '--:')
      .join('|')}|`,
  ];
  const skippedRow = (s, p, why) =>
    `| ${s.label} | ${KIND_NAMES[s.kind]} | ${p} | skipped: ${why} ${'|'.repeat(heads.length - 3)}`;
  for (const s of SUBJECTS) {
    const r = results[s.id];
    if (!r) continue;
    if (r.skipped) {
      lines.push(skippedRow(s, '–', r.skipped));
      continue;
    }
    for (const p of meta.procs) {
      const x = r.byP[p];
      if (!x) continue;
      if (x.skipped) {
        lines.push(skippedRow(s, p, x.skipped));
        continue;
      }
      const vs = (key) => peers.map(([peer]) => fmtRatio(x.vs?.[peer]?.[key]));
      const cells = [
        s.label,
        KIND_NAMES[s.kind],
        p,
        fmtRate(x.rate),
        ...vs('rate'),
        p === 1 ? fmtUnc(r) : '',
        `${fmtInt(x.min)} / ${fmtInt(x.max)}`,
        Number.isFinite(x.jain) ? x.jain.toFixed(3) : '–',
        fmtNs(x.p50),
        fmtNs(x.p99),
        fmtCpu(x.cpuPer1k),
        ...vs('cpu'),
        fmtEntries(x.entriesWhileWaiting),
        `${x.lost}${s.exclusive === false && x.lost ? ' (expected)' : ''}`,
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  return lines.join('\n');
}

/**
 * The PostgreSQL rows against their peer, one line per transport and P: @bakery/pg and
 * advisory-lock on the same server in the same run. Empty when neither was measured.
 */
export function pgTable(results, meta) {
  const rows = SUBJECTS.filter((s) => s.group === 'pg' && s.peer);
  const lines = [
    '| PostgreSQL | P | bakery pg acq/s | advisory-lock acq/s | × advisory-lock | wait p50 / p99 bakery pg | wait p50 / p99 advisory-lock | CPU ms / acq bakery pg (clients + server) | CPU ms / acq advisory-lock (clients + server) | CPU/acq × advisory-lock | Jain bakery pg / advisory-lock | entries while waiting from the call, max: bakery pg / advisory-lock |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  let any = false;
  const ms = (x, key) => fmtCpu(x?.[key]); // s per 1k acquisitions = ms per acquisition
  const cpu = (x) =>
    x && Number.isFinite(x.serverCpuPer1k)
      ? `${ms(x, 'cpuPer1k')} (${ms(x, 'clientCpuPer1k')} + ${ms(x, 'serverCpuPer1k')})`
      : `${ms(x, 'cpuPer1k')} (clients only)`;
  for (const s of rows) {
    const [a, b] = [results[s.id], results[s.peer]];
    if (!a && !b) continue;
    const over = s.transport === 'socket' ? 'unix socket' : 'TCP';
    for (const why of [a?.skipped, b?.skipped].filter(Boolean)) {
      any = true;
      lines.push(`| ${over} | – | skipped: ${why} |||||||||||`);
    }
    if (a?.skipped || b?.skipped) continue;
    for (const p of meta.procs) {
      const [x, y] = [a?.byP?.[p], b?.byP?.[p]];
      if (!x && !y) continue;
      any = true;
      const waits = (z) => (z ? `${fmtNs(z.p50)} / ${fmtNs(z.p99)}` : '–');
      const jainOf = (z) => (Number.isFinite(z?.jain) ? z.jain.toFixed(3) : '–');
      const ew = (z) => fmtInt(z?.entriesWhileWaiting?.max);
      lines.push(
        `| ${over} | ${p} | ${fmtRate(x?.rate)} | ${fmtRate(y?.rate)} | ${fmtRatio(x?.vs?.[s.peer]?.rate)} | ` +
          `${waits(x)} | ${waits(y)} | ${cpu(x)} | ${cpu(y)} | ${fmtRatio(x?.vs?.[s.peer]?.cpu)} | ` +
          `${jainOf(x)} / ${jainOf(y)} | ${ew(x)} / ${ew(y)} |`,
      );
    }
  }
  return any ? lines.join('\n') : '';
}

/** One row per subject: uncontended ns, acquisitions/s per P, fairness at the largest P. */
export function summaryTable(results, meta) {
  const top = meta.procs.at(-1);
  const lines = [
    `| subject | uncontended lock+unlock | ${meta.procs.map((p) => `P=${p} acq/s`).join(' | ')} | ${Object.values(
      PEERS,
    )
      .map((name) => `× ${name} P=${top}`)
      .join(' | ')} | Jain P=${top} | lost updates (all P) |`,
    `|---|--:|${meta.procs.map(() => '--:').join('|')}|${Object.keys(PEERS)
      .map(() => '--:')
      .join('|')}|--:|--:|`,
  ];
  for (const s of SUBJECTS) {
    const r = results[s.id];
    if (!r) continue;
    if (r.skipped) {
      lines.push(
        `| ${s.label} | skipped: ${r.skipped} |${[...meta.procs, ...Object.keys(PEERS)].map(() => '').join('|')}|||`,
      );
      continue;
    }
    const lost = meta.procs.reduce((a, p) => a + (r.byP[p]?.lost ?? 0), 0);
    lines.push(
      `| ${s.label} | ${fmtUnc(r)} | ${meta.procs.map((p) => fmtRate(r.byP[p]?.rate)).join(' | ')} | ` +
        `${Object.keys(PEERS)
          .map((peer) => fmtRatio(r.byP[top]?.vs?.[peer]?.rate))
          .join(' | ')} | ` +
        `${Number.isFinite(r.byP[top]?.jain) ? r.byP[top].jain.toFixed(3) : '–'} | ${lost} |`,
    );
  }
  return lines.join('\n');
}

/**
 * A targets table's rows builder. `add(what, measured, ratio, inputs, ok)`: `inputs` are the
 * numbers the row rests on; when one is missing (subject skipped, P not run) the row is "not
 * measured" and `ok` is not called.
 */
function rowsOf(results) {
  const rows = [];
  const has = (inputs) => inputs.every((x) => Number.isFinite(x) && x >= 0);
  const add = (what, measured, ratio, inputs, ok) => {
    const measuredAll = has(inputs);
    rows.push({
      what,
      measured: measuredAll ? measured : undefined,
      goal: measuredAll ? ratio : '–',
      ok: measuredAll ? Boolean(ok()) : null,
    });
  };
  const g = (id, p, key = 'rate') => results[id]?.byP?.[p]?.[key];
  const u = (id) => results[id]?.uncontendedNs;
  return { rows, add, g, u };
}

/** The targets of issue 7 (the first release), each as measured / goal from this run. */
function issue7(results) {
  const { rows, add, g, u } = rowsOf(results);
  for (const id of ['sab-sync', 'mmap-sync']) {
    const v = u(id);
    add(
      `P=1 ${id} uncontended ≤ 100 ns`,
      fmtNs(v),
      `${(v / 100).toFixed(1)}× the limit`,
      [v],
      () => v <= 100,
    );
  }
  const shm = u('shm-sync');
  add(
    'P=1 shm-sync uncontended ≤ 5 µs',
    fmtNs(shm),
    `${(shm / 5000).toFixed(2)}× the limit`,
    [shm],
    () => shm <= 5000,
  );
  const vs = (a, b) => `${fmtRate(a)} vs ${fmtRate(b)} acq/s`;
  const [m4, l4] = [g('mmap-sync', 4), g('mplock', 4)];
  add(
    'P=4 mmap-sync ≥ multiprocessing.Lock',
    vs(m4, l4),
    `${(m4 / l4).toFixed(2)}× (goal ≥ 1)`,
    [m4, l4],
    () => m4 / l4 >= 1,
  );
  const j4 = g('mmap-sync', 4, 'jain');
  add('P=4 mmap-sync fairness ≥ 0.95', j4?.toFixed(3), 'Jain', [j4], () => j4 >= 0.95);
  const [m64, l64] = [g('mmap-sync', 64), g('mplock', 64)];
  add(
    'P=64 mmap-sync ≥ 0.5 × multiprocessing.Lock',
    vs(m64, l64),
    `${(m64 / l64).toFixed(2)}× (goal ≥ 0.5)`,
    [m64, l64],
    () => m64 / l64 >= 0.5,
  );
  const j64 = g('mmap-sync', 64, 'jain');
  add('P=64 mmap-sync fairness ≥ 0.9', j64?.toFixed(3), 'Jain', [j64], () => j64 >= 0.9);
  const [s64, f64] = [g('shm-sync', 64), g('proper-lockfile', 64)];
  add(
    'P=64 shm-sync ≥ 10 × proper-lockfile',
    vs(s64, f64),
    `${(s64 / f64).toFixed(1)}× (goal ≥ 10)`,
    [s64, f64],
    () => s64 / f64 >= 10,
  );
  const r64 = g('recipe', 64);
  add(
    'P=64 shm-sync ≥ 10,000 × recipe',
    vs(s64, r64),
    `${r64 > 0 ? fmtInt(s64 / r64) : '∞'}× (goal ≥ 10,000)`,
    [s64, r64],
    () => s64 / r64 >= 10000,
  );
  return rows;
}

/**
 * The targets of issue 12 (shm's mapped path), each as measured / goal from this run: the
 * mapped shm lock against mmap (the same cells and wake-ups, reached by name instead of an
 * inherited fd) and against flock(2), the file lock it replaces.
 */
function issue12(results) {
  const { rows, add, g, u } = rowsOf(results);
  const [su, mu, fu] = [u('shm-sync'), u('mmap-sync'), u('flock')];
  add(
    'P=1 shm-sync uncontended ≤ 1.2 × mmap-sync',
    `${fmtNs(su)} vs ${fmtNs(mu)}`,
    `${(su / mu).toFixed(2)}× (goal ≤ 1.2)`,
    [su, mu],
    () => su / mu <= 1.2,
  );
  for (const p of [4, 16, 64]) {
    const [s, m] = [g('shm-sync', p), g('mmap-sync', p)];
    add(
      `P=${p} shm-sync ≥ 0.9 × mmap-sync`,
      `${fmtRate(s)} vs ${fmtRate(m)} acq/s`,
      `${(s / m).toFixed(2)}× (goal ≥ 0.9)`,
      [s, m],
      () => s / m >= 0.9,
    );
    const j = g('shm-sync', p, 'jain');
    add(`P=${p} shm-sync fairness ≥ 0.99`, j?.toFixed(3), 'Jain', [j], () => j >= 0.99);
    const [sc, mc] = [g('shm-sync', p, 'cpuPer1k'), g('mmap-sync', p, 'cpuPer1k')];
    add(
      `P=${p} shm-sync CPU per acquisition ≤ 1.2 × mmap-sync`,
      `${fmtCpu(sc)} vs ${fmtCpu(mc)} s / 1k acq`,
      `${(sc / mc).toFixed(2)}× (goal ≤ 1.2)`,
      [sc, mc],
      () => sc / mc <= 1.2,
    );
  }
  add(
    'P=1 shm-sync uncontended ≤ 0.25 × flock(2)',
    `${fmtNs(su)} vs ${fmtNs(fu)}`,
    `${(su / fu).toFixed(3)}× (goal ≤ 0.25)`,
    [su, fu],
    () => su / fu <= 0.25,
  );
  return rows;
}

/**
 * The targets of issue 15 (strict handoff against the strict-FIFO limit, and the opt-in batched
 * handoff against the barging multiprocessing.Lock), each as measured / goal from this run.
 */
function issue15(results) {
  const { rows, add, g, u } = rowsOf(results);
  const vs = (a, b) => `${fmtRate(a)} vs ${fmtRate(b)} acq/s`;
  for (const [p, goal] of [
    [4, 0.9],
    [64, 0.3],
  ]) {
    const [m, c] = [g('mmap-sync', p), g('c-fifo', p)];
    add(
      `P=${p} mmap-sync ≥ ${goal} × C FIFO`,
      vs(m, c),
      `${fmtRatio(m / c)}× (goal ≥ ${goal})`,
      [m, c],
      () => m / c >= goal,
    );
  }
  const [c4, c64] = [g('mmap-sync', 4, 'cpuPer1k'), g('mmap-sync', 64, 'cpuPer1k')];
  add(
    'P=64 mmap-sync CPU per acquisition ≤ 4 × P=4',
    `${fmtCpu(c64)} vs ${fmtCpu(c4)} s / 1k acq`,
    `${fmtRatio(c64 / c4)}× (goal ≤ 4)`,
    [c4, c64],
    () => c64 / c4 <= 4,
  );
  const j64 = g('mmap-sync', 64, 'jain');
  add('P=64 mmap-sync fairness ≥ 0.99', j64?.toFixed(3), 'Jain', [j64], () => j64 >= 0.99);

  const id = 'mmap-sync-batched';
  const [b64, l64] = [g(id, 64), g('mplock', 64)];
  add(
    `P=64 ${id} ≥ 0.5 × multiprocessing.Lock`,
    vs(b64, l64),
    `${fmtRatio(b64 / l64)}× (goal ≥ 0.5)`,
    [b64, l64],
    () => b64 / l64 >= 0.5,
  );
  const [lo, hi] = [g(id, 64, 'min'), g(id, 64, 'max')];
  add(
    `P=64 ${id} per-participant min / max ≥ 0.8`,
    `${fmtInt(lo)} / ${fmtInt(hi)}`,
    `${fmtRatio(lo / hi)} (goal ≥ 0.8)`,
    [lo, hi],
    () => lo / hi >= 0.8,
  );
  const e = g(id, 64, 'entriesWhileWaiting');
  add(
    `P=64 ${id} entries while waiting ≤ (P − 1) × (1 + maxBatch)`,
    e && `${fmtInt(e.max)} (bound ${fmtInt(e.bound)}, maxBatch ${DEFAULT_MAX_BATCH})`,
    e ? `${fmtRatio(e.max / e.bound)}× the bound` : '–',
    [e?.max, e?.bound],
    () => !e.over,
  );
  const [b4, l4] = [g(id, 4), g('mplock', 4)];
  add(
    `P=4 ${id} ≥ multiprocessing.Lock`,
    vs(b4, l4),
    `${fmtRatio(b4 / l4)}× (goal ≥ 1)`,
    [b4, l4],
    () => b4 / l4 >= 1,
  );

  for (const [sid, limit] of [
    ['sab-sync', 100],
    ['mmap-sync', 100],
    ['sab-sync-batched', 50],
    ['mmap-sync-batched', 50],
  ]) {
    const v = u(sid);
    add(
      `P=1 ${sid} uncontended lock+release ≤ ${limit} ns`,
      fmtNs(v),
      `${(v / limit).toFixed(1)}× the limit`,
      [v],
      () => v <= limit,
    );
  }
  return rows;
}

/** Every issue's targets: `{ 'issue 7': rows, 'issue 12': rows, 'issue 15': rows }`. */
export function targets(results) {
  return {
    'issue 7': issue7(results),
    'issue 12': issue12(results),
    'issue 15': issue15(results),
  };
}

/** One Markdown table per issue, in order. */
export function targetsTable(byIssue) {
  return Object.entries(byIssue)
    .map(([issue, rows]) => {
      const lines = [`| target (${issue}) | measured | ratio | met |`, '|---|--:|--:|:-:|'];
      for (const r of rows) {
        const met = r.ok === null ? 'not measured' : r.ok ? 'yes' : 'no';
        lines.push(`| ${r.what} | ${r.measured ?? '–'} | ${r.goal} | ${met} |`);
      }
      return lines.join('\n');
    })
    .join('\n\n');
}

// ---- SVG ------------------------------------------------------------------------------------

const COLOURS = {
  'sab-sync': '#1f77b4',
  'sab-async': '#1f77b4',
  'mmap-sync': '#d62728',
  'mmap-async': '#d62728',
  'shm-sync': '#2ca02c',
  'shm-async': '#2ca02c',
  'shm-js-sync': '#bcbd22',
  'shm-js-async': '#bcbd22',
  'proper-lockfile': '#9467bd',
  flock: '#8c564b',
  mplock: '#ff7f0e',
  'c-fifo': '#000000',
  'sab-sync-batched': '#6baed6',
  'mmap-sync-batched': '#fc9272',
  'mmap-async-batched': '#fc9272',
  'shm-sync-batched': '#74c476',
  'async-mutex': '#17becf',
  recipe: '#7f7f7f',
  'pg-socket': '#e377c2',
  'pg-tcp': '#f7b6d2',
  'advisory-lock-socket': '#7b4173',
  'advisory-lock-tcp': '#ce6dbd',
};
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function svgChart(results, meta) {
  const W = 1180;
  // Tall enough for the legend (a row per subject, then three lines of notes) and the footer.
  const H = Math.max(540, 90 + SUBJECTS.filter((s) => results[s.id]).length * 20 + 80);
  const plots = [
    { x: 70, y: 80, w: 470, h: 380, title: 'acquisitions/s (log scale)', key: 'rate', log: true },
    { x: 610, y: 80, w: 230, h: 380, title: "Jain's fairness index", key: 'jain', log: false },
  ];
  const ps = meta.procs;
  const xAt = (pl, p) =>
    pl.x +
    (ps.length === 1
      ? pl.w / 2
      : ((Math.log2(p) - Math.log2(ps[0])) / (Math.log2(ps.at(-1)) - Math.log2(ps[0]))) * pl.w);
  const rates = [];
  for (const s of SUBJECTS)
    for (const p of ps) {
      const v = results[s.id]?.byP?.[p]?.rate;
      if (v > 0) rates.push(v);
    }
  const lo = 10 ** Math.floor(Math.log10(Math.min(...rates, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...rates, 10)));
  const yAt = (pl, v) =>
    pl.log
      ? pl.y + pl.h - ((Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * pl.h
      : pl.y + pl.h - v * pl.h;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    '<title>bakery-bench: acquisitions/s and fairness vs participants</title>',
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">bakery-bench: P participants loop lock → read–work–write a shared counter → unlock</text>`,
    `<text x="${W / 2}" y="40" text-anchor="middle" fill="#555">${esc(`${meta.date.slice(0, 10)} · ${meta.machine.cpus} × ${meta.machine.cpuModel} · Node ${meta.machine.node} · load ${meta.machine.loadavg[0].toFixed(2)} at start · ${meta.mode} run`)}</text>`,
  ];
  for (const pl of plots) {
    out.push(
      `<rect x="${pl.x}" y="${pl.y}" width="${pl.w}" height="${pl.h}" fill="none" stroke="#999"/>`,
    );
    out.push(
      `<text x="${pl.x + pl.w / 2}" y="${pl.y - 0}" dy="-4" text-anchor="middle" font-weight="bold">${pl.title}</text>`,
    );
    // y grid
    if (pl.log) {
      for (let e = Math.log10(lo); e <= Math.log10(hi); e++) {
        const y = yAt(pl, 10 ** e);
        out.push(`<line x1="${pl.x}" x2="${pl.x + pl.w}" y1="${y}" y2="${y}" stroke="#eee"/>`);
        const label = e >= 6 ? `${10 ** (e - 6)}M` : e >= 3 ? `${10 ** (e - 3)}k` : `${10 ** e}`;
        out.push(`<text x="${pl.x - 6}" y="${y + 4}" text-anchor="end">${label}</text>`);
      }
    } else {
      for (let v = 0; v <= 1.0001; v += 0.2) {
        const y = yAt(pl, v);
        out.push(`<line x1="${pl.x}" x2="${pl.x + pl.w}" y1="${y}" y2="${y}" stroke="#eee"/>`);
        out.push(`<text x="${pl.x - 6}" y="${y + 4}" text-anchor="end">${v.toFixed(1)}</text>`);
      }
    }
    for (const p of ps) {
      const x = xAt(pl, p);
      out.push(`<line x1="${x}" x2="${x}" y1="${pl.y}" y2="${pl.y + pl.h}" stroke="#eee"/>`);
      out.push(`<text x="${x}" y="${pl.y + pl.h + 16}" text-anchor="middle">${p}</text>`);
    }
    out.push(
      `<text x="${pl.x + pl.w / 2}" y="${pl.y + pl.h + 34}" text-anchor="middle">participants P</text>`,
    );
    for (const s of SUBJECTS) {
      const r = results[s.id];
      if (!r || r.skipped) continue;
      const pts = ps
        .map((p) => [p, r.byP[p]?.[pl.key]])
        .filter(([, v]) => Number.isFinite(v) && (!pl.log || v > 0))
        .map(([p, v]) => [xAt(pl, p), yAt(pl, v)]);
      if (pts.length === 0) continue;
      const dash = s.mode === 'async' ? ' stroke-dasharray="6 4"' : '';
      out.push(
        `<polyline fill="none" stroke="${COLOURS[s.id]}" stroke-width="2"${dash} points="${pts.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ')}"/>`,
      );
      for (const [x, y] of pts) {
        const shape = s.ours
          ? `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="3.5" fill="${COLOURS[s.id]}"/>`
          : `<rect x="${(x - 3.5).toFixed(1)}" y="${(y - 3.5).toFixed(1)}" width="7" height="7" fill="${COLOURS[s.id]}"/>`;
        out.push(shape);
      }
    }
  }
  // legend
  let ly = 90;
  const lx = 870;
  out.push(`<text x="${lx}" y="${ly - 12}" font-weight="bold">subjects</text>`);
  for (const s of SUBJECTS) {
    const r = results[s.id];
    if (!r) continue;
    const dash = s.mode === 'async' ? ' stroke-dasharray="6 4"' : '';
    out.push(
      `<line x1="${lx}" x2="${lx + 26}" y1="${ly}" y2="${ly}" stroke="${COLOURS[s.id]}" stroke-width="2"${dash}/>`,
    );
    out.push(
      `<text x="${lx + 32}" y="${ly + 4}"${r.skipped ? ' fill="#999"' : ''}>${esc(s.label)}${r.skipped ? ' (skipped)' : ''}</text>`,
    );
    ly += 20;
  }
  out.push(
    `<text x="${lx}" y="${ly + 10}" fill="#555">solid: lockSync · dashed: await lock()</text>`,
    `<text x="${lx}" y="${ly + 26}" fill="#555">circles: bakery · squares: peers</text>`,
    `<text x="${lx}" y="${ly + 42}" fill="#555">lighter: batched handoff · black: C FIFO</text>`,
    `<text x="70" y="${H - 20}" fill="#555">Medians of runs. A first-come-first-served lock hands over to the next ticket even when its owner is descheduled (P &gt; cores).</text>`,
    '</svg>',
  );
  return out.join('\n');
}

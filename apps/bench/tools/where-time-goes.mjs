// Where an uncontended lockSync + release spends its time: counts the shared-cell accesses
// core makes (through a counting wrapper around the reference memory), then times the same
// number of bare Atomics operations next to the real thing on sab, mmap and shm (both paths).
//   node tools/where-time-goes.mjs
import { openOn } from '@bakery/core';
import { createReferenceCells } from '@bakery/core/reference';
import * as mmap from '@bakery/mmap';
import * as sab from '@bakery/sab';
import * as shm from '@bakery/shm';
import { median } from '../src/stats.mjs';

const inner = createReferenceCells(2);
const count = { load: 0, store: 0, cas: 0 };
const counting = {
  get length() {
    return inner.length;
  },
  load(i) {
    count.load++;
    return inner.load(i);
  },
  store(i, v) {
    count.store++;
    inner.store(i, v);
  },
  compareExchange(i, e, r) {
    count.cas++;
    return inner.compareExchange(i, e, r);
  },
};
const m = openOn({ cells: counting }, {});
m.lockSync().release(); // warm
for (const k of Object.keys(count)) count[k] = 0;
const N = 1000;
for (let k = 0; k < N; k++) m.lockSync().release();
const per = Object.fromEntries(Object.entries(count).map(([k, v]) => [k, v / N]));
console.log('cell accesses per uncontended lockSync+release:', per);
m.close();

const time = (fn, iters) => {
  const s = [];
  for (let r = 0; r < 7; r++) {
    const t = process.hrtime.bigint();
    fn(iters);
    s.push(Number(process.hrtime.bigint() - t) / iters);
  }
  return median(s);
};
const ia = new Int32Array(new SharedArrayBuffer(256));
const loads = Math.round(per.load);
const stores = Math.round(per.store);
const bare = time((n) => {
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < loads; j++) Atomics.load(ia, j & 31);
    for (let j = 0; j < stores; j++) Atomics.store(ia, j & 31, k);
  }
}, 200_000);
console.log(
  `the same ${loads} Atomics.load + ${stores} Atomics.store, bare: ${bare.toFixed(0)} ns`,
);
const one = time((n) => {
  for (let k = 0; k < n; k++) Atomics.store(ia, 0, k);
}, 2_000_000);
console.log(`one Atomics.store (xchg): ${one.toFixed(1)} ns`);

const shmOpen = (access) => () =>
  shm.openMutex(`wtg-${process.pid}-${access}`, { slots: 2, access });
for (const [name, mk, iters] of [
  ['sab', () => sab.createMutex({ slots: 2 }), 300_000],
  ['mmap', () => mmap.createMutex({ slots: 2 }), 300_000],
  ['shm (mapped)', shmOpen('mapped'), 300_000],
  ['shm (pure JS)', shmOpen('pure-js'), 20_000],
]) {
  const mu = mk();
  const ns = time((n) => {
    for (let k = 0; k < n; k++) mu.lockSync().release();
  }, iters);
  console.log(`${name}: lockSync+release ${ns.toFixed(0)} ns`);
  mu.close();
  if (name.startsWith('shm')) shm.removeMutex(`wtg-${process.pid}-${mu.access}`);
}

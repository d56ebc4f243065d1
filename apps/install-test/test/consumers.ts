// The consumer programs the install test writes into each fresh project. Each one is a real
// user of one backend: participant A (this thread/process) holds the lock while participant B
// (a worker, a forked child, or a second process that opens the lock by name) first times out,
// then queues, and gets the lock only after A releases. B tells A how it reached the lock (its
// `access` and `inspect().backend`). A then prints that, its own, and where its imports resolved
// and which files of @bakery/native the process loaded, so the test can prove which path ran and
// that nothing came from the monorepo.

/** The backends a user picks from. */
export type Backend = 'sab' | 'mmap' | 'shm';

interface Parts {
  /** Imports besides the backend's own. */
  esmImports: string;
  cjsImports: string;
  /** The backend's names this program uses. */
  names: string;
  isMain: string;
  createA: string;
  /** Start participant B; `self` is this file's path (or URL for ESM workers). */
  startB: (self: string) => string;
  openB: string;
  send: string;
  /** B's last words (a child must drop its IPC channel to exit). */
  endB: string;
}

const parts: Record<Backend, Parts> = {
  sab: {
    esmImports: `import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';`,
    cjsImports: `const { isMainThread, parentPort, Worker, workerData } = require('node:worker_threads');`,
    names: 'createMutex, isBakeryError, openMutex',
    isMain: 'isMainThread',
    createA: 'createMutex({ slots: 4 })',
    startB: (self) => `new Worker(${self}, { workerData: a.handle })`,
    openB: 'openMutex(workerData)',
    send: '(m) => parentPort.postMessage(m)',
    endB: '',
  },
  mmap: {
    esmImports: `import { fork } from 'node:child_process';`,
    cjsImports: `const { fork } = require('node:child_process');`,
    names: 'createMutex, isBakeryError, openMutex',
    isMain: `process.argv[2] !== 'child'`,
    createA: 'createMutex({ slots: 4 })',
    startB: () => `fork(process.argv[1], ['child'], a.forkOptions())`,
    openB: 'openMutex()',
    send: '(m) => process.send(m)',
    endB: 'process.disconnect();',
  },
  shm: {
    esmImports: `import { fork } from 'node:child_process';`,
    cjsImports: `const { fork } = require('node:child_process');`,
    names: 'isBakeryError, openMutex',
    isMain: `process.argv[2] !== 'child'`,
    createA: `openMutex(process.env.LOCK_NAME, { slots: 4 })`,
    // A second process that knows only the name (no fd, no handle is passed).
    startB: () => `fork(process.argv[1], ['child'])`,
    openB: 'openMutex(process.env.LOCK_NAME)',
    send: '(m) => process.send(m)',
    endB: 'process.disconnect();',
  },
};

function body(p: Parts, backend: Backend, self: string, report: string): string {
  return `
/** Files of @bakery/native (its JS, its node-gyp-build, the .node binary) this process loaded. */
function nativeFiles() {
  return Object.keys(requireCache()).filter((f) => /[\\/]node_modules[\\/](@bakery[\\/]native|node-gyp-build)[\\/]/.test(f));
}

function said(peer) {
  const seen = [];
  const waiting = [];
  peer.on('message', (m) => {
    seen.push(m);
    for (const f of waiting.splice(0)) f();
  });
  return (m) =>
    new Promise((resolve) => {
      const check = () => (seen.includes(m) ? resolve() : waiting.push(check));
      check();
    });
}

async function main() {
  if (${p.isMain}) {
    const a = ${p.createA};
    const lease = a.lockSync();
    const peer = ${p.startB(self)};
    const exited = new Promise((resolve) => peer.once('exit', resolve));
    let peerSaw = null;
    peer.on('message', (m) => {
      if (typeof m === 'string' && m.startsWith('saw:')) peerSaw = JSON.parse(m.slice(4));
    });
    const heard = said(peer);
    let released = false;
    let gotWhileHeld = false;
    const got = heard('got').then(() => {
      gotWhileHeld = !released;
    });
    await heard('waiting');
    await new Promise((r) => setTimeout(r, 100));
    released = true;
    lease.release();
    await got;
    const code = await exited;
    if (code !== 0) throw new Error('participant B exited with ' + code);
    if (gotWhileHeld) throw new Error('B entered while A held the lock');
    const again = a.lockSync({ timeout: 5000 });
    again.release();
    const snap = a.inspect();
    a.close();
    console.log(
      JSON.stringify({
        backend: '${backend}',
        acquisitions: snap.acquisitions,
        access: a.access ?? null,
        described: snap.backend,
        peer: peerSaw,
        native: nativeFiles(),
        ${report},
      }),
    );
  } else {
    const send = ${p.send};
    const b = ${p.openB};
    send('saw:' + JSON.stringify({ access: b.access ?? null, described: b.inspect().backend }));
    try {
      b.lockSync({ timeout: 100 });
      throw new Error('B got the lock while A held it');
    } catch (err) {
      if (!isBakeryError(err, 'BAKERY_TIMEOUT')) throw err;
    }
    send('waiting');
    const lease = await b.lock({ timeout: 20000 });
    send('got');
    lease.release();
    b.close();
    ${p.endB}
  }
}
`;
}

/** An ES module program (`.mjs`). */
export function esmProgram(backend: Backend): string {
  const p = parts[backend];
  return `import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
${p.esmImports}
import { ${p.names} } from '@bakery/${backend}';
${body(
  p,
  backend,
  'new URL(import.meta.url)',
  `resolved: [fileURLToPath(import.meta.resolve('@bakery/${backend}')), fileURLToPath(import.meta.resolve('@bakery/core'))]`,
)}
// The backends load @bakery/native with require (shm through createRequire): one shared cache.
function requireCache() {
  return createRequire(import.meta.url).cache;
}
await main();
`;
}

/** A CommonJS program (`.cjs`): the package's `require` condition and its .cjs build. */
export function cjsProgram(backend: Backend): string {
  const p = parts[backend];
  return `'use strict';
${p.cjsImports}
const { ${p.names} } = require('@bakery/${backend}');
${body(
  p,
  backend,
  '__filename',
  `resolved: [require.resolve('@bakery/${backend}'), require.resolve('@bakery/core')], loaded: Object.keys(require.cache)`,
)}
function requireCache() {
  return require.cache;
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;
}

/**
 * TypeScript consumers, one ES module and one CommonJS, type-checked against the installed
 * declarations (`import` → .d.ts, `require` → .d.cts). Includes lines that must NOT compile.
 */
export function tsPrograms(backend: Backend): Record<string, string> {
  const create =
    backend === 'shm' ? `openMutex('typed', { slots: 2 })` : `createMutex({ slots: 2 })`;
  const open =
    backend === 'sab'
      ? 'openMutex(a.handle)'
      : backend === 'mmap'
        ? 'openMutex({ fd: a.fd })'
        : `openMutex('typed')`;
  const names = backend === 'shm' ? 'openMutex' : 'createMutex, openMutex';
  const code = (importLine: string) => `${importLine}

const a = ${create};
const asMutex: Mutex = a;
void asMutex;
const b: Mutex = ${open};
export async function twoParticipants(): Promise<number> {
  const lease: Lease = a.lockSync();
  const none: Lease | null = b.tryLock();
  try {
    b.lockSync({ timeout: 10 });
  } catch (err) {
    if (!isBakeryError(err, 'BAKERY_TIMEOUT')) throw err;
    const code: BakeryErrorCode = err.code;
    void code;
  }
  lease.release();
  const second = await b.lock({ timeout: 1000, signal: AbortSignal.timeout(2000) });
  const died: boolean = second.ownerDied;
  second.release();
  const snap: Snapshot = a.inspect();
  const result = await a.withLock(async (l) => (l.ownerDied || died || none !== null ? -1 : snap.capacity));
  a.close();
  b.close();
  return result;
}
// @ts-expect-error lockSync takes no AbortSignal
a.lockSync({ signal: AbortSignal.timeout(1) });
// @ts-expect-error a lease cannot be made up
const fake: Lease = { release() {} };
void fake;
`;
  const typeNames = `${names}, type BakeryErrorCode, isBakeryError, type Lease, type Mutex, type Snapshot`;
  return {
    'typed.mts': code(`import { ${typeNames} } from '@bakery/${backend}';`),
    'typed.cts': code(`import { ${typeNames} } from '@bakery/${backend}';`),
  };
}

// The binding's test cases, in plain JavaScript with node:assert so that one set runs under two
// runners: vitest on the build machine (test/native.test.ts, the binding from src/) and node:test
// under a real arm64 Node in qemu (test/arm64/native.arm64.mjs, the built package), where vitest
// cannot run. The caller hands in its runner's functions and the loaded binding.
import assert from 'node:assert/strict';
import { fork, spawnSync } from 'node:child_process';
import { closeSync, promises as fsp, ftruncateSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const fixture = (name) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const BYTES = 4096;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function codeOf(fn) {
  try {
    fn();
  } catch (err) {
    return err?.code;
  }
  return 'no error';
}

function caught(fn) {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('no error');
}

/** Collects the messages of a forked child; `next()` resolves with the next one. */
function messagesOf(child) {
  const queue = [];
  const waiting = [];
  child.on('message', (m) => {
    const w = waiting.shift();
    if (w) w(m);
    else queue.push(m);
  });
  return {
    next: () =>
      queue.length > 0 ? Promise.resolve(queue.shift()) : new Promise((r) => waiting.push(r)),
  };
}

const exitOf = (child) => new Promise((resolve) => child.on('exit', (code) => resolve(code)));

/**
 * Registers every case. `execPath` is the node that child processes run (the running one, or a
 * wrapper that starts the arm64 node under qemu: a process running under qemu-user cannot exec
 * a foreign binary itself); `slowdown` scales the pauses that give another thread or process
 * time to reach a futex, and the child timeouts.
 *
 * @param {import('./native-cases.d.mts').NativeCaseOptions} options
 */
export function nativeCases({
  test,
  describe,
  afterEach,
  native,
  SEAL,
  BakeryError,
  execPath = process.execPath,
  slowdown = 1,
}) {
  const opened = [];
  function createFd(bytes = BYTES) {
    const fd = native.create(bytes);
    opened.push(fd);
    return fd;
  }
  afterEach(() => {
    native.cancelWaits();
    for (const fd of opened.splice(0)) {
      try {
        closeSync(fd);
      } catch {}
    }
  });

  describe('handles', () => {
    test('a closed or never-opened fd is BAKERY_BAD_HANDLE', () => {
      assert.equal(
        codeOf(() => native.map(987_654, BYTES)),
        'BAKERY_BAD_HANDLE',
      );
      assert.equal(
        codeOf(() => native.size(987_654)),
        'BAKERY_BAD_HANDLE',
      );
      assert.equal(
        codeOf(() => native.reopen(987_654)),
        'BAKERY_BAD_HANDLE',
      );
      assert.equal(
        codeOf(() => native.close(987_654)),
        'BAKERY_BAD_HANDLE',
      );
    });

    test('mapping with the wrong size is BAKERY_BAD_HANDLE', () => {
      const fd = createFd();
      assert.equal(native.size(fd), BYTES);
      assert.equal(
        codeOf(() => native.map(fd, BYTES * 2)),
        'BAKERY_BAD_HANDLE',
      );
      assert.equal(
        codeOf(() => native.map(fd, BYTES - 4)),
        'BAKERY_BAD_HANDLE',
      );
    });

    test('an fd that is not shared memory is BAKERY_BAD_HANDLE', () => {
      // A pipe is never a tmpfs regular file.
      const r = spawnSync(
        execPath,
        [
          '-e',
          `const n = require('node-gyp-build')(${JSON.stringify(packageRoot)}); try { n.map(0, 4096) } catch (e) { console.log(e.code) }`,
        ],
        { input: '', encoding: 'utf8', cwd: packageRoot },
      );
      assert.equal(r.stdout.trim(), 'BAKERY_BAD_HANDLE', r.stderr);
    });

    test('bad arguments are TypeError/RangeError with BAKERY_INVALID_ARGUMENT', () => {
      const fd = createFd();
      const buffer = native.map(fd, BYTES);
      const call = (fn) => {
        try {
          fn();
        } catch (err) {
          return [err.constructor.name, err.code];
        }
        return 'no error';
      };
      const type = ['TypeError', 'BAKERY_INVALID_ARGUMENT'];
      const range = ['RangeError', 'BAKERY_INVALID_ARGUMENT'];
      assert.deepEqual(
        call(() => native.create('4096')),
        type,
      );
      assert.deepEqual(
        call(() => native.create(0)),
        range,
      );
      assert.deepEqual(
        call(() => native.map(-1, BYTES)),
        range,
      );
      assert.deepEqual(
        call(() => native.wait(buffer, BYTES / 4, 0, 0)),
        range,
      );
      assert.deepEqual(
        call(() => native.wait(buffer, 0, 0, Number.NaN)),
        range,
      );
      assert.deepEqual(
        call(() => native.wake(new Uint32Array(buffer), 0, 1)),
        type,
      );
      assert.deepEqual(
        call(() => native.wake(buffer, 0, -1)),
        range,
      );
    });

    test('a buffer that is not one of our mappings is BAKERY_BAD_HANDLE', () => {
      assert.equal(
        codeOf(() => native.wait(new ArrayBuffer(64), 0, 0, 0)),
        'BAKERY_BAD_HANDLE',
      );
      assert.equal(
        codeOf(() => native.wake(new Int32Array(16), 0, 1)),
        'BAKERY_BAD_HANDLE',
      );
    });

    test('a system-call failure is BAKERY_IO with the errno name and a Node-style cause', () => {
      // Run out of fds in a child limited to 64 of them: memfd_create fails with EMFILE.
      const script = `
        const n = require('node-gyp-build')(${JSON.stringify(packageRoot)});
        try { for (;;) n.create(64) } catch (e) {
          console.log(JSON.stringify({ plain: e.constructor === Error, code: e.code, message: e.message, cause: { code: e.cause.code, errno: e.cause.errno, syscall: e.cause.syscall } }));
        }`;
      const r = spawnSync(
        '/bin/sh',
        ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', execPath, script],
        {
          encoding: 'utf8',
          cwd: packageRoot,
        },
      );
      // Loaded with node-gyp-build directly, nobody handed over BakeryError: a plain coded Error.
      assert.deepEqual(JSON.parse(r.stdout), {
        plain: true,
        code: 'BAKERY_IO',
        message: 'memfd_create failed: EMFILE',
        cause: { code: 'EMFILE', errno: -24, syscall: 'memfd_create' },
      });
    });
  });

  describe('errors are BakeryErrors', () => {
    test('a BAKERY_BAD_HANDLE from the binding is a BakeryError with the same code and message', () => {
      const err = caught(() => native.size(987_654));
      assert.ok(err instanceof BakeryError);
      assert.equal(err.name, 'BakeryError');
      assert.equal(err.code, 'BAKERY_BAD_HANDLE');
      assert.equal(err.message, 'fd 987654 is not an open file descriptor');
      assert.equal('cause' in err, false);
      // The stack starts at the native call, like any error thrown there.
      assert.ok(err.stack.includes('BakeryError: fd 987654 is not an open file descriptor'));
      const wait = caught(() => native.wait(new ArrayBuffer(64), 0, 0, 0));
      assert.ok(wait instanceof BakeryError);
      assert.equal(wait.code, 'BAKERY_BAD_HANDLE');
    });

    test('a BAKERY_IO from the binding is a BakeryError whose cause is the Node-style system error', () => {
      const fd = createFd();
      const a = native.reopen(fd);
      const b = native.reopen(fd);
      opened.push(a, b);
      native.leaseTake(a, 3);
      const err = caught(() => native.leaseTake(b, 3));
      assert.ok(err instanceof BakeryError);
      assert.equal(err.code, 'BAKERY_IO');
      assert.equal(err.message, 'lease busy: byte 3 is locked: EAGAIN');
      const cause = err.cause;
      assert.ok(cause instanceof Error);
      assert.ok(!(cause instanceof BakeryError));
      assert.deepEqual(
        { code: cause.code, errno: cause.errno, syscall: cause.syscall, message: cause.message },
        {
          code: 'EAGAIN',
          errno: -11,
          syscall: 'fcntl(F_OFD_SETLK)',
          message: 'EAGAIN: Resource temporarily unavailable, fcntl(F_OFD_SETLK)',
        },
      );
    });

    test('argument errors stay TypeError/RangeError', () => {
      const err = caught(() => native.size(-1));
      assert.ok(err instanceof RangeError);
      assert.ok(!(err instanceof BakeryError));
      assert.equal(err.code, 'BAKERY_INVALID_ARGUMENT');
      const bad = caught(() => native.setErrorClass('BakeryError'));
      assert.ok(bad instanceof TypeError);
      assert.equal(bad.code, 'BAKERY_INVALID_ARGUMENT');
    });

    test('without a class, or with one whose constructor throws, errors are plain coded Errors', () => {
      try {
        native.setErrorClass(null);
        const plain = caught(() => native.size(987_654));
        assert.equal(plain.constructor, Error);
        assert.equal(plain.code, 'BAKERY_BAD_HANDLE');
        assert.equal(plain.message, 'fd 987654 is not an open file descriptor');
        native.setErrorClass(
          class Broken extends Error {
            constructor() {
              super('broken');
              throw new Error('broken');
            }
          },
        );
        const fallback = caught(() => native.size(987_654));
        assert.equal(fallback.constructor, Error);
        assert.equal(fallback.code, 'BAKERY_BAD_HANDLE');
      } finally {
        native.setErrorClass(BakeryError);
      }
      assert.ok(caught(() => native.size(987_654)) instanceof BakeryError);
    });
  });

  describe('memory', () => {
    test('the memfd is sealed: it can be neither shrunk nor grown', () => {
      const fd = createFd();
      const seals = native.seals(fd);
      assert.equal(seals & (SEAL.SHRINK | SEAL.GROW), SEAL.SHRINK | SEAL.GROW);
      assert.equal(seals & SEAL.SEAL, SEAL.SEAL);
      assert.equal(
        codeOf(() => ftruncateSync(fd, 0)),
        'EPERM',
      );
      assert.equal(
        codeOf(() => ftruncateSync(fd, BYTES * 2)),
        'EPERM',
      );
      assert.equal(native.size(fd), BYTES);
    });

    test('a fresh memfd is zero-filled', () => {
      const cells = new Int32Array(native.map(createFd(), BYTES));
      assert.ok(cells.every((v) => v === 0));
    });

    test('two mappings of one fd see the same memory', () => {
      const fd = createFd();
      const a = new Int32Array(native.map(fd, BYTES));
      const b = new Int32Array(native.map(fd, BYTES));
      Atomics.store(a, 7, 0x524b4142);
      assert.equal(Atomics.load(b, 7), 0x524b4142);
      assert.equal(Atomics.compareExchange(b, 7, 0x524b4142, -1), 0x524b4142);
      assert.equal(Atomics.load(a, 7), -1);
    });

    test('a reopened fd is a new description of the same memory, and the mapping outlives the fd', () => {
      const fd = createFd();
      const again = native.reopen(fd);
      assert.notEqual(again, fd);
      assert.equal(native.size(again), BYTES);
      const a = new Int32Array(native.map(fd, BYTES));
      const b = new Int32Array(native.map(again, BYTES));
      native.close(again);
      Atomics.store(b, 3, 99);
      assert.equal(Atomics.load(a, 3), 99);
    });
  });

  describe('futex', () => {
    test('a wait on an unchanged cell times out', () => {
      const cells = new Int32Array(native.map(createFd(), BYTES));
      const t0 = performance.now();
      assert.equal(native.wait(cells, 1, 0, 30), 'timed-out');
      assert.ok(performance.now() - t0 >= 29);
      assert.equal(native.wait(cells, 1, 0, 0), 'timed-out');
    });

    test('a wait on a cell that holds another value returns not-equal at once', () => {
      const cells = new Int32Array(native.map(createFd(), BYTES));
      Atomics.store(cells, 1, 5);
      assert.equal(native.wait(cells, 1, 4, Number.POSITIVE_INFINITY), 'not-equal');
      // expected is compared as int32, like Atomics.wait
      Atomics.store(cells, 1, -1);
      assert.equal(native.wait(cells, 1, 0xffffffff, 0), 'timed-out');
    });

    test('wake with nobody waiting wakes nobody', () => {
      const cells = new Int32Array(native.map(createFd(), BYTES));
      assert.equal(native.wake(cells, 0, Number.POSITIVE_INFINITY), 0);
    });

    test('waitAsync times out and reports not-equal like wait', async () => {
      const cells = new Int32Array(native.map(createFd(), BYTES));
      Atomics.store(cells, 2, 1);
      assert.equal(await native.waitAsync(cells, 2, 0, 1000), 'not-equal');
      assert.equal(await native.waitAsync(cells, 2, 1, 20), 'timed-out');
    });

    test('a wake through a second mapping reaches a waiter on the first', async () => {
      const fd = createFd();
      const a = new Int32Array(native.map(fd, BYTES));
      const b = native.map(fd, BYTES);
      const pending = native.waitAsync(a, 9, 0, 30_000);
      let woken = 0;
      for (let i = 0; i < 1000 && woken === 0; i++) {
        await sleep(2 * slowdown);
        woken = native.wake(b, 9, 1);
      }
      assert.equal(woken, 1);
      assert.equal(await pending, 'ok');
    });

    test('cancelWaits ends pending async waits with ok', async () => {
      const cells = new Int32Array(native.map(createFd(), BYTES));
      const pending = [0, 1, 2].map((i) => native.waitAsync(cells, i, 0, Number.POSITIVE_INFINITY));
      assert.equal(native.cancelWaits(), 3);
      assert.deepEqual(await Promise.all(pending), ['ok', 'ok', 'ok']);
    });

    test('fs keeps working while 16 async waits are pending, and all of them are then woken', async () => {
      const cells = new Int32Array(native.map(createFd(), BYTES));
      const settled = [];
      const pending = Array.from({ length: 16 }, (_, i) =>
        native.waitAsync(cells, 16 + i, 0, 60_000).then((r) => {
          settled.push(r);
          return r;
        }),
      );
      // libuv's pool has 4 threads: if each wait held one, this read would never run.
      const text = await Promise.race([
        fsp.readFile(fileURLToPath(import.meta.url), 'utf8'),
        new Promise((_, reject) => setTimeout(() => reject(new Error('fs starved')), 10_000)),
      ]);
      assert.ok(text.includes('fs keeps working'));
      assert.deepEqual(settled, []);
      // Wake until every waiter has been reached (a thread may not be in the futex yet).
      let total = 0;
      for (let round = 0; round < 1000 && total < 16; round++) {
        for (let i = 0; i < 16; i++) total += native.wake(cells, 16 + i, 1);
        if (total < 16) await sleep(2 * slowdown);
      }
      assert.equal(total, 16);
      assert.deepEqual(await Promise.all(pending), Array(16).fill('ok'));
    });
  });

  describe('across processes', () => {
    const forkChild = (fd) =>
      fork(fixture('native-child.cjs'), [], {
        execPath,
        stdio: ['inherit', 'inherit', 'inherit', 'ipc', fd],
        env: { ...process.env, BAKERY_TEST_FD: '4' },
      });

    test('a forked child maps the memfd from its stdio and wakes the parent waiting in waitAsync', async () => {
      const fd = createFd();
      const cells = new Int32Array(native.map(fd, BYTES));
      Atomics.store(cells, 0, 0x524b4142);
      const child = forkChild(fd);
      const exited = exitOf(child);
      const { next } = messagesOf(child);
      assert.deepEqual(await next(), { ready: true, bytes: BYTES });
      const woke = native.waitAsync(cells, 5, 0, 30_000);
      // Give the waiter thread time to sleep so the child's wake has someone to count.
      await sleep(50 * slowdown);
      const reply = next();
      child.send({ op: 'store-and-wake', index: 5, value: 1 });
      assert.deepEqual(await reply, { bytes: BYTES, seen: 0x524b4142, woken: 1 });
      assert.equal(await woke, 'ok');
      assert.equal(Atomics.load(cells, 5), 1);
      assert.equal(await exited, 0);
    });

    test('three forked children blocked in a synchronous wait on one cell are woken by the parent, one wake each', async () => {
      const fd = createFd();
      const cells = new Int32Array(native.map(fd, BYTES));
      const children = [0, 1, 2].map(() => forkChild(fd));
      try {
        const exits = children.map(exitOf);
        const inboxes = children.map(messagesOf);
        for (const inbox of inboxes)
          assert.deepEqual(await inbox.next(), { ready: true, bytes: BYTES });
        const results = inboxes.map((inbox) => inbox.next());
        for (const child of children) child.send({ op: 'wait', index: 11, expected: 0 });
        // Each child blocks its main thread in futex(FUTEX_WAIT) on the shared page; the cell stays
        // 0, so only a wake ends a wait. Wake one at a time until all three have been reached.
        let total = 0;
        for (let round = 0; round < 5000 && total < 3; round++) {
          total += native.wake(cells, 11, 1);
          if (total < 3) await sleep(2 * slowdown);
        }
        assert.equal(total, 3);
        assert.deepEqual(await Promise.all(results), [
          { waited: 'ok' },
          { waited: 'ok' },
          { waited: 'ok' },
        ]);
        assert.deepEqual(await Promise.all(exits), [0, 0, 0]);
      } finally {
        for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      }
    });

    const lifecycle = (scenario) =>
      spawnSync(execPath, [fixture('native-lifecycle.cjs'), scenario], {
        encoding: 'utf8',
        timeout: 30_000 * slowdown,
      });

    test('a pending waitAsync keeps the process alive until it settles; idle threads do not', () => {
      const r = lifecycle('keeps-alive');
      assert.equal(r.stderr, '');
      assert.equal(r.stdout.trim(), 'result timed-out');
      assert.equal(r.status, 0);
    });

    test('process.exit with pending waits exits cleanly', () => {
      const r = lifecycle('exit-while-waiting');
      assert.equal(r.signal, null);
      assert.equal(r.status, 0);
    });

    test('terminating a worker with pending waits neither hangs nor crashes', () => {
      const r = lifecycle('worker-terminated-while-waiting');
      assert.equal(r.signal, null);
      assert.equal(r.stdout.trim(), 'terminated');
      assert.equal(r.status, 0);
    });

    test('a worker that exits while holding a mapping tears down cleanly', () => {
      const r = lifecycle('worker-exits-with-live-mapping');
      assert.equal(r.signal, null);
      assert.equal(r.stdout.trim(), 'worker exit 0 cell 7');
      assert.equal(r.status, 0);
    });
  });
}

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BAD_SLOT_COUNTS } from '@bakery/conformance';
import { bytesFor, H, LAYOUT_VERSION, S, slotBase } from '@bakery/core';
import { pidNamespace, processIdentity } from '@bakery/core/node';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { openMutex, removeMutex, ShmCells, SLOTS_RULE } from '../src/index.js';
import { entryOwner, holderIsDead, ownerEntry } from '../src/registry.js';
import { codeOf, distEntry, freshDir, messageOf } from './helpers.js';

let dir: string;
beforeEach(() => {
  dir = freshDir();
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Every entry of the lock directory with its type and bytes, to prove nothing changed. */
function listing(d = dir): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of fs.readdirSync(d).sort()) {
    const p = path.join(d, e);
    const st = fs.lstatSync(p);
    out[e] = st.isSymbolicLink()
      ? `symlink -> ${fs.readlinkSync(p)}`
      : st.isFile()
        ? `file ${st.mode.toString(8)} ${st.uid} ${fs.readFileSync(p).toString('hex')}`
        : `other ${st.mode.toString(8)}`;
  }
  return out;
}

/** A valid 4-slot lock file, closed again; returns its path. */
function makeLock(name: string, slots = 4): string {
  const m = openMutex(name, { slots, dir });
  m.close();
  return m.path;
}

/** Rewrite one 32-bit cell of a file in place. */
function poke(file: string, cell: number, value: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(4);
  b.writeInt32LE(value, 0);
  fs.writeSync(fd, b, 0, 4, cell * 4);
  fs.closeSync(fd);
}

for (const access of ['mapped', 'pure-js'] as const) {
  // Every case runs on both paths; openMutex takes its default access from the environment,
  // and the processes some cases spawn inherit it.
  describe(`${access} path`, () => {
    const saved = process.env.BAKERY_SHM_ACCESS;
    beforeEach(() => {
      process.env.BAKERY_SHM_ACCESS = access;
    });
    afterEach(() => {
      if (saved === undefined) delete process.env.BAKERY_SHM_ACCESS;
      else process.env.BAKERY_SHM_ACCESS = saved;
    });

    describe('names', () => {
      const bad: [string, unknown][] = [
        ['empty', ''],
        ['leading dot', '.x'],
        ['dot-dot', '..'],
        ['single dot', '.'],
        ['slash', 'a/b'],
        ['path escape', '../etc'],
        ['NUL byte', 'a\0b'],
        ['201 characters', 'n'.repeat(201)],
        ['unicode', 'schlöss'],
        ['space', 'a b'],
        ['not a string', 42],
      ];
      for (const [what, name] of bad) {
        test(`a name with ${what} is BAKERY_BAD_NAME and creates nothing`, () => {
          const before = listing();
          expect(codeOf(() => openMutex(name as string, { slots: 4, dir }))).toBe(
            'BAKERY_BAD_NAME',
          );
          expect(codeOf(() => removeMutex(name as string, { dir }))).toBe('BAKERY_BAD_NAME');
          expect(listing()).toEqual(before);
          expect(listing(path.dirname(dir))[path.basename(dir)]).toBeDefined();
        });
      }

      test('200 characters of [A-Za-z0-9._-] is a good name', () => {
        const name = `A-z_0.9${'n'.repeat(193)}`;
        const m = openMutex(name, { slots: 2, dir });
        expect(path.basename(m.path)).toBe(`bakery.${name}`);
        m.close();
        expect(removeMutex(name, { dir })).toBe(true);
      });
    });

    describe('planted symlinks', () => {
      test('a symlink at the lock path pointing at a file of ours fails with a coded error and leaves the file byte-for-byte unchanged', () => {
        const outside = freshDir();
        try {
          const precious = path.join(outside, 'precious.txt');
          fs.writeFileSync(precious, 'do not touch\n'.repeat(10));
          fs.symlinkSync(precious, path.join(dir, 'bakery.victim'));
          const target = listing(outside);
          const before = listing();
          for (const options of [{ slots: 4 }, {}, { slots: 4, create: false }]) {
            expect(codeOf(() => openMutex('victim', { ...options, dir }))).toBe(
              'BAKERY_BAD_LAYOUT',
            );
          }
          expect(listing(outside)).toEqual(target);
          expect(listing()).toEqual(before);
        } finally {
          fs.rmSync(outside, { recursive: true, force: true });
        }
      });

      test('a symlink at the lock path pointing at a valid lock of ours is refused too, and that lock is untouched', () => {
        const real = makeLock('real');
        fs.symlinkSync(real, path.join(dir, 'bakery.alias'));
        const before = listing();
        expect(codeOf(() => openMutex('alias', { slots: 4, dir }))).toBe('BAKERY_BAD_LAYOUT');
        expect(listing()).toEqual(before);
      });

      test(
        access === 'pure-js'
          ? 'a symlink planted at the registry path fails the slot claim with a coded error and leaves its target untouched'
          : 'a symlink planted at the registry path is never followed: a mapped lock claims slots by compareExchange and leaves it alone',
        () => {
          const real = makeLock('reg');
          const outside = freshDir();
          try {
            fs.writeFileSync(path.join(outside, 'keep'), 'keep');
            fs.symlinkSync(outside, path.join(dir, '.bakery.reg.registry'));
            const target = listing(outside);
            const lockBytes = fs.readFileSync(real);
            if (access === 'pure-js') {
              expect(codeOf(() => openMutex('reg', { dir }))).toBe('BAKERY_BAD_LAYOUT');
              expect(fs.readFileSync(real)).toEqual(lockBytes);
            } else {
              const m = openMutex('reg', { dir });
              m.lockSync().release();
              m.close();
              expect(fs.readlinkSync(path.join(dir, '.bakery.reg.registry'))).toBe(outside);
            }
            expect(listing(outside)).toEqual(target);
          } finally {
            fs.rmSync(outside, { recursive: true, force: true });
          }
        },
      );

      test('removeMutex unlinks a planted symlink, never its target', () => {
        const outside = freshDir();
        try {
          fs.writeFileSync(path.join(outside, 'precious'), 'x');
          fs.symlinkSync(path.join(outside, 'precious'), path.join(dir, 'bakery.gone'));
          const target = listing(outside);
          expect(removeMutex('gone', { dir })).toBe(true);
          expect(listing(outside)).toEqual(target);
          expect(listing()).toEqual({});
        } finally {
          fs.rmSync(outside, { recursive: true, force: true });
        }
      });
    });

    describe('ownership and permissions', () => {
      test('a lock file owned by another uid is BAKERY_FOREIGN_OWNER and untouched; allowForeignOwner: true opens it', () => {
        const file = makeLock('theirs');
        fs.chownSync(file, 65534, 65534);
        const before = listing();
        expect(codeOf(() => openMutex('theirs', { dir }))).toBe('BAKERY_FOREIGN_OWNER');
        expect(codeOf(() => openMutex('theirs', { slots: 4, dir }))).toBe('BAKERY_FOREIGN_OWNER');
        expect(listing()).toEqual(before);
        const m = openMutex('theirs', { dir, allowForeignOwner: true });
        m.lockSync().release();
        m.close();
        expect(fs.statSync(file).uid).toBe(65534);
      });

      test('a new lock file has mode 0600 by default', () => {
        const m = openMutex('private', { slots: 2, dir });
        expect(fs.statSync(m.path).mode & 0o777).toBe(0o600);
        expect(fs.statSync(m.path).size).toBe(bytesFor(2));
        m.close();
      });

      test('the mode option is applied exactly, whatever the umask', () => {
        const old = process.umask(0o077);
        try {
          const a = openMutex('group', { slots: 2, dir, mode: 0o660 });
          expect(fs.statSync(a.path).mode & 0o777).toBe(0o660);
          a.close();
        } finally {
          process.umask(old);
        }
        const b = openMutex('readable', { slots: 2, dir, mode: 0o644 });
        expect(fs.statSync(b.path).mode & 0o777).toBe(0o644);
        b.close();
        expect(codeOf(() => openMutex('bad-mode', { slots: 2, dir, mode: 0o4777 }))).toBe(
          'BAKERY_INVALID_ARGUMENT',
        );
        expect(fs.existsSync(path.join(dir, 'bakery.bad-mode'))).toBe(false);
      });

      test('attaching never changes the mode or owner of an existing file', () => {
        const file = makeLock('keep-mode');
        fs.chmodSync(file, 0o640);
        openMutex('keep-mode', { dir, mode: 0o600 }).close();
        expect(fs.statSync(file).mode & 0o777).toBe(0o640);
      });
    });

    describe('bad layouts are refused and left untouched', () => {
      const cases: [string, (file: string) => void][] = [
        ['wrong magic', (f) => poke(f, H.MAGIC, 0x12345678)],
        ['wrong layout version', (f) => poke(f, H.VERSION, LAYOUT_VERSION + 1)],
        ['a lock of an earlier release (layout version 1)', (f) => poke(f, H.VERSION, 1)],
        [
          'a lock of the previous release (layout version 2: no retained flag)',
          (f) => poke(f, H.VERSION, 2),
        ],
        ['an impossible access mode', (f) => poke(f, H.ACCESS, 7)],
        ['a capacity that disagrees with the size', (f) => poke(f, H.CAPACITY, 3)],
        ['an impossible capacity', (f) => poke(f, H.CAPACITY, 0)],
        ['an init state that is not ready', (f) => poke(f, H.INIT, 1)],
        ['an impossible high-water mark', (f) => poke(f, H.HIGH_WATER, 9)],
        ['a truncated file', (f) => fs.truncateSync(f, bytesFor(4) - 64)],
        ['a file cut inside the header', (f) => fs.truncateSync(f, 40)],
        ['a zero-length file', (f) => fs.truncateSync(f, 0)],
        ['a size that is not a multiple of 4', (f) => fs.truncateSync(f, bytesFor(4) + 2)],
        ['trailing bytes', (f) => fs.appendFileSync(f, Buffer.alloc(64))],
        [
          'a text file',
          (f) => {
            fs.rmSync(f);
            fs.writeFileSync(f, 'hello world\n'.repeat(30), { mode: 0o600 });
          },
        ],
        [
          'a directory',
          (f) => {
            fs.rmSync(f);
            fs.mkdirSync(f);
          },
        ],
      ];
      for (const [what, damage] of cases) {
        test(`${what} is BAKERY_BAD_LAYOUT and the file is unchanged`, () => {
          const file = makeLock('damaged');
          damage(file);
          const before = listing();
          expect(codeOf(() => openMutex('damaged', { dir }))).toBe('BAKERY_BAD_LAYOUT');
          expect(codeOf(() => openMutex('damaged', { slots: 4, dir }))).toBe('BAKERY_BAD_LAYOUT');
          expect(listing()).toEqual(before);
        });
      }

      test('attaching with a slots option that differs from the file is BAKERY_BAD_LAYOUT and the file is unchanged', () => {
        makeLock('sized', 4);
        const before = listing();
        expect(codeOf(() => openMutex('sized', { slots: 8, dir }))).toBe('BAKERY_BAD_LAYOUT');
        // The message names the lock, both capacities and the ways out.
        expect(messageOf(() => openMutex('sized', { slots: 8, dir }))).toMatch(
          /^openMutex\("sized", \{ slots: 8 \}\): .*sized is a lock of 4 slots, not 8;.*\{ slots: 4 \} or without slots.*`bakery rm sized`/,
        );
        expect(listing()).toEqual(before);
        openMutex('sized', { slots: 4, dir }).close();
        openMutex('sized', { dir }).close();
      });

      test('a missing lock without slots, or with create: false, is a coded error and creates nothing', () => {
        expect(codeOf(() => openMutex('absent', { dir }))).toBe('BAKERY_INVALID_ARGUMENT');
        expect(codeOf(() => openMutex('absent', { dir, slots: 4, create: false }))).toBe(
          'BAKERY_NOT_FOUND',
        );
        expect(messageOf(() => openMutex('absent', { dir, create: false }))).toMatch(
          /^openMutex\("absent", \{ create: false \}\): there is no lock named absent in /,
        );
        expect(codeOf(() => openMutex('absent', { dir, slots: 0 }))).toBe(
          'BAKERY_INVALID_ARGUMENT',
        );
        expect(listing()).toEqual({});
      });
    });

    describe('slots out of range', () => {
      for (const slots of BAD_SLOT_COUNTS) {
        test(`slots ${String(slots)} is BAKERY_INVALID_ARGUMENT, whether creating or attaching, and nothing changes`, () => {
          const empty = listing();
          expect(codeOf(() => openMutex('fresh', { dir, slots: slots as number }))).toBe(
            'BAKERY_INVALID_ARGUMENT',
          );
          expect(listing()).toEqual(empty);
          // One statement of the limits, for both paths, in every such message.
          expect(messageOf(() => openMutex('fresh', { dir, slots: slots as number }))).toBe(
            `${SLOTS_RULE}; got ${String(slots)}`,
          );
          makeLock('existing', 4);
          const before = listing();
          expect(codeOf(() => openMutex('existing', { dir, slots: slots as number }))).toBe(
            'BAKERY_INVALID_ARGUMENT',
          );
          expect(listing()).toEqual(before);
        });
      }
    });

    describe('mutex options are checked before anything is created', () => {
      // Core's rules: spin a non-negative integer, staleAfterMs a positive number, robust
      // 'manual' or 'auto', claim 'open' or 'lock' (null or undefined: the default).
      const bad: [string, Record<string, unknown>][] = [
        ...[-1, -16, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '4', true, {}, [], -0.5].map(
          (spin): [string, Record<string, unknown>] => ['spin', { spin }],
        ),
        ...[0, -0, -1, Number.NaN, Number.NEGATIVE_INFINITY, '250', true, {}, [], 0n].map(
          (staleAfterMs): [string, Record<string, unknown>] => ['staleAfterMs', { staleAfterMs }],
        ),
        ...['', 'Auto', 'MANUAL', 'manual ', 'never', 0, 1, true, {}, []].map(
          (robust): [string, Record<string, unknown>] => ['robust', { robust }],
        ),
        ...['', 'Lock', 'first-lock', 'never', 0, 1, true, {}, []].map(
          (claim): [string, Record<string, unknown>] => ['claim', { claim }],
        ),
      ];

      test('200 calls with a bad spin, staleAfterMs, robust or claim are BAKERY_INVALID_ARGUMENT (RangeError, core’s message) and leave the directory empty', () => {
        for (let i = 0; i < 200; i++) {
          const [what, option] = bad[i % bad.length]!;
          const options = i % 4 === 3 ? { ...option, dir } : { ...option, slots: 1 + (i % 8), dir };
          let err: unknown;
          try {
            openMutex(`bad-option-${i}`, options as never);
          } catch (e) {
            err = e;
          }
          expect(err, `${what} ${String(Object.values(option)[0])}`).toBeInstanceOf(RangeError);
          expect((err as { code?: string }).code).toBe('BAKERY_INVALID_ARGUMENT');
          expect((err as Error).message).toMatch(new RegExp(`^${what} must be`));
        }
        expect(listing()).toEqual({});
      });

      test('attaching with a bad option is refused the same way and leaves the lock untouched', () => {
        makeLock('existing');
        const before = listing();
        for (const [, option] of bad) {
          expect(codeOf(() => openMutex('existing', { ...option, dir } as never))).toBe(
            'BAKERY_INVALID_ARGUMENT',
          );
        }
        expect(listing()).toEqual(before);
        // The defaults (undefined or null) and good values still open.
        openMutex('existing', { dir, spin: 0, staleAfterMs: 0.5, robust: 'auto' }).close();
        openMutex('existing', {
          dir,
          spin: null,
          staleAfterMs: null,
          robust: null,
        } as never).close();
      });
    });

    // Pure JS only: a mapped lock claims slots by compareExchange and has no registry.
    if (access === 'pure-js') {
      describe('registry lock (pure JS only: a mapped lock claims by compareExchange)', () => {
        test('an entry of an exited claimer (or of a reused thread id) is removed and the claim proceeds', async () => {
          const file = makeLock('stale');
          const pid = await exitedPid();
          const ns = pidNamespace();
          const reg = path.join(dir, '.bakery.stale.registry');
          fs.mkdirSync(reg);
          fs.writeFileSync(path.join(reg, `o.${pid}.${pid}.12345.${ns}.abcdef`), '');
          const m = openMutex('stale', { dir });
          expect(fs.existsSync(reg)).toBe(false);
          // Our own pid and thread id with another thread start time: a reused tid, dead too.
          const me = processIdentity();
          fs.mkdirSync(reg);
          fs.writeFileSync(
            path.join(reg, `o.${me.pid}.${me.tid}.${me.startTime + 1}.${ns}.abcdef`),
            '',
          );
          const slot = m.slot;
          m.close();
          expect(fs.existsSync(reg)).toBe(false);
          const cells = new ShmCells(fs.openSync(file, 'r'), bytesFor(4) / 4);
          expect(cells.load(slotBase(slot) + S.OWNER)).toBe(0);
        });

        test('an entry of a holder in another pid namespace, or in a foreign (older) format, is never broken: the claim waits', async () => {
          makeLock('kept');
          const pid = await exitedPid();
          const ns = pidNamespace();
          const reg = path.join(dir, '.bakery.kept.registry');
          // Another namespace: its pid means nothing here, even one that is gone from ours.
          const elsewhere = `o.${pid}.${pid}.12345.${(ns % 2 ** 31) + 1}.abcdef`;
          // The older `o.<pid>.<start>.<tid>.<tidStart>.<ns>.<nonce>` of the same exited process.
          const older = `o.${pid}.12345.${pid}.12345.${ns}.abcdef`;
          fs.mkdirSync(reg);
          for (const e of [elsewhere, older]) fs.writeFileSync(path.join(reg, e), '');
          // A claim in a child, bounded: it must still be waiting (not broken through, not failed)
          // when the timeout kills it.
          const code = `import(${JSON.stringify(distEntry)}).then((m) => { m.openMutex('kept', { dir: ${JSON.stringify(dir)} }); process.exit(3); }, () => process.exit(4));`;
          const r = spawnSync(process.execPath, ['-e', code], { timeout: 1500 });
          expect(r.status).toBeNull();
          expect(r.signal).toBe('SIGTERM');
          expect(fs.readdirSync(reg).sort()).toEqual([elsewhere, older].sort());
          // Once they are gone, the claim proceeds.
          for (const e of [elsewhere, older]) fs.unlinkSync(path.join(reg, e));
          openMutex('kept', { dir }).close();
        });
      });
    }

    describe('creation race and removal', () => {
      test('16 processes opening one new name at once all succeed, exactly one initialises, one inode, and their increments are exact', async () => {
        const name = 'race';
        const iterations = 50;
        const barrier = fs.mkdtempSync(path.join(dir, 'barrier-'));
        const counter = path.join(barrier, 'counter');
        fs.writeFileSync(counter, Buffer.alloc(4));
        const child = new URL('./fixtures/race-child.mjs', import.meta.url).pathname;
        const runs = Array.from({ length: 16 }, (_, id) => {
          const p = spawn(
            process.execPath,
            [child, distEntry, dir, name, String(id), String(iterations), counter, barrier],
            { stdio: ['ignore', 'pipe', 'inherit'] },
          );
          let out = '';
          p.stdout.on('data', (d) => {
            out += d;
          });
          return new Promise<{ id: number; created: boolean; ino: number }>((resolve, reject) => {
            p.on('exit', (code) => {
              if (code === 0) resolve(JSON.parse(out));
              else reject(new Error(`race participant ${id} exited with ${code}`));
            });
          });
        });
        const ready = () => fs.readdirSync(barrier).filter((e) => e.startsWith('ready.')).length;
        while (ready() < 16) await new Promise((r) => setTimeout(r, 5));
        fs.writeFileSync(path.join(barrier, 'go'), '');
        const reports = await Promise.all(runs);

        expect(reports.filter((r) => r.created)).toHaveLength(1);
        const file = path.join(dir, `bakery.${name}`);
        const ino = fs.statSync(file).ino;
        for (const r of reports) expect(r.ino).toBe(ino);
        expect(fs.readFileSync(counter).readInt32LE(0)).toBe(16 * iterations);
        const fd = fs.openSync(file, 'r');
        const cells = new ShmCells(fd, bytesFor(16) / 4);
        expect(cells.load(H.ACQUISITIONS)).toBe(16 * iterations);
        expect(cells.load(H.HIGH_WATER)).toBeLessThanOrEqual(16);
        expect(cells.load(H.HOLDER)).toBe(0);
        for (let s = 0; s < 16; s++) {
          expect(cells.load(slotBase(s) + S.OWNER)).toBe(0);
          expect(cells.load(slotBase(s) + S.TICKET)).toBe(0);
          expect(cells.load(slotBase(s) + S.CHOOSING)).toBe(0);
        }
        fs.closeSync(fd);
        // Nothing but the lock file itself (and the barrier) is left: no temp files, no registry.
        expect(fs.readdirSync(dir).sort()).toEqual(
          [path.basename(barrier), `bakery.${name}`].sort(),
        );
      });

      test('removeMutex removes the file and its registry; the name can then be created afresh', () => {
        const a = openMutex('removable', { slots: 2, dir });
        expect(a.created).toBe(true);
        // A leftover of a creator that died half-way is tidied too.
        fs.writeFileSync(path.join(dir, '.bakery.removable.999999999.abcdef.tmp'), '');
        a.close();
        expect(removeMutex('removable', { dir })).toBe(true);
        expect(listing()).toEqual({});
        expect(removeMutex('removable', { dir })).toBe(false);
        const b = openMutex('removable', { slots: 3, dir });
        expect(b.created).toBe(true);
        expect(b.inspect().capacity).toBe(3);
        b.close();
        removeMutex('removable', { dir });
      });

      test('a participant that still has the removed lock open keeps working on its own file', () => {
        const a = openMutex('unlinked', { slots: 2, dir });
        removeMutex('unlinked', { dir });
        const lease = a.lockSync();
        lease.release();
        a.close();
        expect(listing()).toEqual({});
      });
    });
  });
}

/** The pid of a process that has certainly exited (and been reaped). */
async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '']);
  const pid = child.pid!;
  await new Promise((resolve) => child.on('exit', resolve));
  return pid;
}

test('registry entries: the name round-trips a core identity; anything else parses to null', () => {
  const me = processIdentity();
  const entry = ownerEntry();
  expect(entry).toMatch(/^o\.\d+\.\d+\.\d+\.\d+\.[0-9a-f]{12}$/);
  expect(entry.startsWith(`o.${me.pid}.${me.tid}.${me.startTime}.${me.ns ?? 0}.`)).toBe(true);
  expect(entryOwner(entry)).toEqual({ ...me, ns: me.ns ?? 0 });
  expect(ownerEntry()).not.toBe(entry); // a fresh nonce each time
  for (const bad of [
    'o.1.2.3.4.5.abcdef', // the older 7-field format
    'o.1.2.3.4..abcdef', // the older format with an unknown namespace
    'o.1.2.3.abcdef',
    'o.0.0.0.0.abcdef', // pid 0
    'o.1.2.3.4.xyz',
    'o.1.2.3.4.',
    `o.1.2.3.${2 ** 32}.abcdef`, // namespace out of range
    'o.12345678901234567.0.0.0.ab', // too many digits
    'x.1.2.3.4.abcdef',
    'anything',
  ]) {
    expect(entryOwner(bad), bad).toBeNull();
    expect(holderIsDead(bad), bad).toBe(false);
  }
});

test('registry holder liveness is core isAlive: only a certainly dead holder is dead — never one in another pid namespace, never ourselves', async () => {
  const pid = await exitedPid();
  const me = processIdentity();
  const ns = pidNamespace();
  const other = (ns % 2 ** 31) + 1;
  const e = (p: number, tid: number, start: number, n: number) => `o.${p}.${tid}.${start}.${n}.abc`;
  expect(holderIsDead(ownerEntry())).toBe(false);
  expect(holderIsDead(e(me.pid, me.tid, me.startTime, ns))).toBe(false);
  expect(holderIsDead(e(me.pid, 0, 0, ns))).toBe(false); // pid only
  expect(holderIsDead(e(me.pid, me.tid, me.startTime + 1, ns))).toBe(true); // reused tid
  expect(holderIsDead(e(me.pid, 2 ** 22 + 7, 1, ns))).toBe(true); // a thread that is gone
  expect(holderIsDead(e(pid, pid, 12345, ns))).toBe(true); // an exited process
  expect(holderIsDead(e(pid, 0, 0, ns))).toBe(true);
  // Another pid namespace is never judged, whatever its pid looks like here.
  expect(holderIsDead(e(pid, pid, 12345, other))).toBe(false);
  expect(holderIsDead(e(me.pid, me.tid, me.startTime + 1, other))).toBe(false);
});

test('a zombie holder (exited, not yet reaped by its parent) is dead', async () => {
  // sh starts a short child, then becomes `sleep`, which never waits for it: a zombie.
  const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 10'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  try {
    const zpid = Number(
      await new Promise<string>((resolve) => parent.stdout.once('data', (d) => resolve(`${d}`))),
    );
    const stat = () => fs.readFileSync(`/proc/${zpid}/stat`, 'latin1');
    const fields = () =>
      stat()
        .slice(stat().lastIndexOf(')') + 2)
        .split(' ');
    const deadline = Date.now() + 5000;
    while (fields()[0] !== 'Z' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(fields()[0]).toBe('Z');
    const start = Number(fields()[19]);
    expect(holderIsDead(`o.${zpid}.${zpid}.${start}.${pidNamespace()}.abc`)).toBe(true);
    expect(holderIsDead(`o.${zpid}.0.0.${pidNamespace()}.abc`)).toBe(true);
  } finally {
    parent.kill();
  }
});

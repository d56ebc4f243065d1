// Every example a PACKAGE README (packages/*/README.md) shows runs here and is checked against
// what it promises to print (readme.test.ts does the same for the root README):
//
// - each ```js block, as an ES module from inside this workspace (so '@bakery/*' resolves to
//   the built packages);
// - each ```sh block of commands, through `sh` as written — with smaller numbers where the
//   README's are too heavy for CI on 2 cores (each such entry says so), its `cd` pointed at the
//   package in this repository and its /tmp files made private;
// - each `node …` command and each `examples/<file>` the prose shows.
//
// A block that is not meant to run is marked: a fence of a language that does not run here
// (```ts, ```text, ```sql), or the line `<!-- readme-test: not run: <reason> -->` right above
// the fence. The first test prints every block that is not run, and why; it fails on an
// unlabelled fence, and on a runnable block, command or example this file does not know about
// (and on an entry here that no longer matches anything in its README).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { openMutex as openPgMutex } from '@bakery/pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startPgServer } from './pg-server.js';

const execFileP = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../..');
const PACKAGES = fs
  .readdirSync(path.join(repo, 'packages'))
  .filter((p) => fs.existsSync(path.join(repo, 'packages', p, 'README.md')))
  .sort();

/** Fence languages that run here, and those that never do (with the reason printed). */
const RUNS = new Set(['js', 'sh']);
const NEVER_RUNS: Record<string, string> = {
  ts: 'TypeScript (a type signature or a test file), not a program',
  text: 'output or a shell transcript',
  sql: 'SQL for the server',
};
const MARKER = /^<!-- readme-test: not run: (.+) -->$/;

interface Item {
  pkg: string;
  /** 1-based line in the README. */
  line: number;
  /** A fenced block, a `node …` command in the prose, or an `examples/<file>` the prose names. */
  kind: 'block' | 'command' | 'mention';
  lang: string;
  text: string;
  /** Why it is not run (a fence that never runs, or a marker); undefined: it must run. */
  notRun?: string;
}

function parse(pkg: string): Item[] {
  const lines = fs.readFileSync(path.join(repo, 'packages', pkg, 'README.md'), 'utf8').split('\n');
  const items: Item[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(.*)$/.exec(lines[i]!);
    if (fence !== null) {
      const lang = fence[1]!.trim();
      const start = i;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
      const marker = MARKER.exec(lines[start - 1] ?? '');
      items.push({
        pkg,
        line: start + 1,
        kind: 'block',
        lang,
        text: `${body.join('\n')}\n`,
        notRun:
          marker !== null
            ? `marked: ${marker[1]}`
            : lang in NEVER_RUNS
              ? `\`\`\`${lang}: ${NEVER_RUNS[lang]}`
              : undefined,
      });
      continue;
    }
    for (const m of lines[i]!.matchAll(/`([^`]+)`/g)) {
      const span = m[1]!;
      if (/^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*node\s/.test(span)) {
        items.push({ pkg, line: i + 1, kind: 'command', lang: '', text: span });
      } else if (/(?:^|\/)examples\/[\w.-]+$/.test(span)) {
        items.push({ pkg, line: i + 1, kind: 'mention', lang: '', text: span });
      }
    }
  }
  return items;
}

const items = PACKAGES.flatMap(parse);
const where = (it: Item) => `packages/${it.pkg}/README.md:${it.line}`;

// --- running things -----------------------------------------------------------------------

const dir = fs.mkdtempSync(path.join(here, '../.readme-packages-'));
const shmDir = fs.mkdtempSync('/dev/shm/bakery-readme-packages-');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(shmDir, { recursive: true, force: true });
});

/** The environment of every run: our private lock directory, no access mode forced. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, BAKERY_SHM_DIR: shmDir };
  delete e.BAKERY_SHM_ACCESS;
  return { ...e, ...extra };
}

/** Runs `file` with node (or `sh -e -c script`), returns stdout; a non-zero exit throws. */
async function run(
  cmd: 'node' | 'sh',
  args: string[],
  cwd: string,
  extraEnv: Record<string, string> = {},
): Promise<string> {
  const started = performance.now();
  const argv = cmd === 'node' ? [process.execPath, ...args] : ['sh', '-e', '-c', ...args];
  const { stdout } = await execFileP(argv[0]!, argv.slice(1), {
    cwd,
    env: env(extraEnv),
    timeout: 90_000,
    maxBuffer: 16 << 20,
  });
  const shown = cmd === 'sh' ? args[0]!.trim().replaceAll('\n', '\n    ') : args.join(' ');
  const rel = path.relative(repo, cwd) || '.';
  console.log(
    `ran in ${rel} (${((performance.now() - started) / 1000).toFixed(1)} s):\n    ${shown}\n  printed:\n    ${stdout.trim().replaceAll('\n', '\n    ')}`,
  );
  return stdout;
}

/** Runs a ```js block as an ES module (`prelude` first: what the README leaves to the reader). */
function runBlock(block: string, extraEnv: Record<string, string> = {}, prelude = '') {
  const it = items.find((i) => i.kind === 'block' && i.text === block);
  const name = it === undefined ? 'block' : `${it.pkg}-README-${it.line}`;
  const file = path.join(dir, `${name}-${Math.random().toString(36).slice(2, 8)}.mjs`);
  fs.writeFileSync(file, prelude + block);
  return run('node', [path.basename(file)], dir, extraEnv);
}

const pkgDir = (pkg: string) => path.join(repo, 'packages', pkg);

/** The README's command line with its numbers replaced (asserting it still reads `from`). */
function scaled(text: string, from: string, to: string): string {
  expect(text, 'the README command this entry scales down').toContain(from);
  return text.replaceAll(from, to);
}

/** `examples/x.mjs`'s JSON line. */
const json = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!);

// The @bakery/pg examples need a server: a throwaway one, as readme.test.ts starts it.
let pgServer: { url: string; stop(): void } | null = null;
let pgSkip = '';
beforeAll(async () => {
  ({ server: pgServer, skip: pgSkip } = await startPgServer());
}, 120_000);
afterAll(() => pgServer?.stop());

// --- what each README shows, and what it must print ----------------------------------------

interface Known {
  pkg: string;
  /** What it covers: block contents or prose spans; each must match one of them at least. */
  match: RegExp[];
  /** The example files (packages/<pkg>/examples/…) it runs. */
  examples?: string[];
  pg?: boolean;
  /** Runs it and checks what it prints; gets the README text it matched first. */
  run(text: string): Promise<void>;
}

const known: Known[] = [
  {
    pkg: 'cli',
    match: [/inspectLock\('jobs'\)/],
    async run(block) {
      // "is anyone dead inside the jobs lock?": a holder that was SIGKILLed while holding it.
      const holder = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `import { openMutex } from '@bakery/shm';
           openMutex('jobs', { slots: 4 }).lockSync();
           console.log('held');
           setInterval(() => {}, 1000);`,
        ],
        { cwd: dir, env: env(), stdio: ['ignore', 'pipe', 'inherit'] },
      );
      children.push(holder);
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d) => String(d).includes('held') && resolve());
        holder.on('exit', (code) => reject(new Error(`the holder exited ${code}`)));
      });
      const exited = new Promise((r) => holder.on('exit', r));
      holder.kill('SIGKILL');
      await exited;
      const out = await runBlock(block);
      expect(out.trim()).toBe(`holder ${holder.pid}, 0 waiting, 1 dead`);
    },
  },
  {
    pkg: 'cli',
    match: [/inspectPgLock\('nightly-report'/],
    pg: true,
    async run(block) {
      // Who holds "nightly-report", and who waits: one holder and one queued waiter.
      const connection = pgServer!.url;
      const a = await openPgMutex('nightly-report', { connection });
      const b = await openPgMutex('nightly-report', { connection });
      try {
        const lease = await a.lock();
        const waiting = b.lock();
        for (let k = 0; (await a.inspect()).waiters.length < 1; k++) {
          expect(k, 'the waiter queued').toBeLessThan(200);
          await new Promise((r) => setTimeout(r, 25));
        }
        const out = await runBlock(block, { DATABASE_URL: connection });
        expect(out.trim()).toMatch(
          new RegExp(
            `^token ${lease.fencingToken}, holder ${a.sessionPid}\\n` +
              `waiting: pid ${b.sessionPid} since \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z$`,
          ),
        );
        await lease.release();
        await (await waiting).release();
      } finally {
        await a.close();
        await b.close();
      }
    },
  },
  {
    pkg: 'core',
    match: [/createReferenceCells\(4\)/],
    async run(block) {
      // null while a holds it; afterwards both participants' tickets are back to 0.
      expect((await runBlock(block)).trim()).toBe('null\n[ 0, 0 ]');
    },
  },
  {
    pkg: 'mmap',
    match: [/forkOptions\(\)/],
    async run(block) {
      const out = (await runBlock(block)).split('\n').filter((l) => l !== '');
      expect(out).toHaveLength(4);
      for (const l of out) expect(l).toMatch(/^ ------ \d+ ------ $/);
      expect(new Set(out).size).toBe(4); // four children, one critical section each
    },
  },
  {
    pkg: 'mmap',
    match: [/mutex\.clusterOptions\(\)/],
    async run(block) {
      // Four cluster workers take the lock once each, then the primary (which never locked and
      // so holds no slot) closes and exits.
      const out = (await runBlock(block)).trim().split('\n');
      expect(out.at(-1)).toBe('workers done; primary slot -1');
      expect(out.slice(0, -1).sort()).toEqual(
        [1, 2, 3, 4].map((id) => `worker ${id} has the lock`),
      );
    },
  },
  {
    pkg: 'mmap',
    match: [/^node examples\/children\.mjs 32 5000$/],
    examples: ['children.mjs'],
    async run(text) {
      // 32 × 5,000 takes ~40 s on 2 cores: 4 children × 1,000 here. The CPU shares are not
      // checked at this size (the package's own test checks `locking` at full size).
      const args = scaled(text, '32 5000', '4 1000').split(' ').slice(1);
      const r = json(await run('node', args, pkgDir('mmap')));
      expect(r).toMatchObject({
        children: 4,
        iterations: 1000,
        count: 4000,
        expected: 4000,
        exact: true,
        ticketsLeft: 0,
      });
      expect(r.maxTicket).toBeLessThanOrEqual(4);
    },
  },
  {
    pkg: 'mmap',
    match: [/^node examples\/children\.mjs 8 500 1000000$/],
    examples: ['children.mjs'],
    async run(text) {
      // Spinning waiters (a huge `spin`), 2 children × 200 instead of 8 × 500: exact count.
      const args = scaled(text, '8 500 1000000', '2 200 1000000').split(' ').slice(1);
      const r = json(await run('node', args, pkgDir('mmap')));
      expect(r).toMatchObject({ children: 2, iterations: 200, count: 400, exact: true });
      expect(r.ticketsLeft).toBe(0);
    },
  },
  {
    pkg: 'native',
    match: [/loadNative\(\)/],
    async run(block) {
      expect((await runBlock(block)).trim()).toBe('not-equal');
    },
  },
  {
    pkg: 'pg',
    match: [/openMutex\('invoice-run'/],
    pg: true,
    async run(block) {
      // chargeCustomers is the reader's job; this one says what it was handed. Two copies run
      // at once: one after the other, with the next fencing token.
      const prelude =
        'const chargeCustomers = async ({ fence, signal }) =>\n' +
        '  console.log(typeof fence, String(fence), signal instanceof AbortSignal, signal.aborted);\n';
      const url = { DATABASE_URL: pgServer!.url };
      const outs = await Promise.all([
        runBlock(block, url, prelude),
        runBlock(block, url, prelude),
      ]);
      expect(outs.map((o) => o.trim()).sort()).toEqual([
        'bigint 1 true false',
        'bigint 2 true false',
      ]);
    },
  },
  {
    pkg: 'pg',
    match: [/scripts\/two-machines\.mjs/],
    pg: true,
    async run(block) {
      // The block's second line, in this repository, against our throwaway server (--url; the
      // first line is the same script from node_modules against a server of yours) and with
      // 2 × 2 processes, 2 rounds and 5 increments instead of 2 × 4, 3 and 25.
      const line = block.split('\n').find((l) => l.startsWith('node packages/pg/'))!;
      const cmd = scaled(
        line,
        '[--machines 2] [--per-machine 4] [--rounds 3] [--increments 25]',
        `--url '${pgServer!.url}' --machines 2 --per-machine 2 --rounds 2 --increments 5`,
      );
      const out = await run('sh', [cmd], repo);
      const rounds = [...out.matchAll(/^ok {3}round (\d): arrived (.+) → granted (.+)$/gm)];
      expect(rounds.map((m) => m[1])).toEqual(['1', '2']);
      for (const m of rounds) expect(m[3]).toBe(m[2]); // granted in exactly the arrival order
      // 4 processes × 5 increments plus 2 rounds × 4 turns: 28, and 7 turns each.
      expect(out).toMatch(/^ok {3}counter 28 = 28 increments \(4 processes × 5 /m);
      expect(out).toMatch(/^ok {3}fencing tokens strictly increasing over 28 grants/m);
      expect(out).toMatch(/^ok {3}every process had exactly 7 turns$/m);
      expect(out).not.toMatch(/^FAIL/m);
      expect(out.trim().split('\n').at(-1)).toBe('all checks hold');
    },
  },
  {
    pkg: 'sab',
    match: [/createMutex\(\{ slots: 8 \}\)/],
    async run(block) {
      const out = (await runBlock(block)).trim().split('\n').sort();
      expect(out).toEqual(['main has the lock', ...Array(4).fill('worker has the lock')]);
    },
  },
  {
    pkg: 'sab',
    match: [/^examples\/sixteen-workers\.mjs$/],
    examples: ['sixteen-workers.mjs'],
    async run() {
      // The README names it (16 workers × 20,000, ~20 s on 2 cores); 4 × 2,000 here.
      const r = json(
        await run('node', ['examples/sixteen-workers.mjs', '4', '2000'], pkgDir('sab')),
      );
      expect(r).toMatchObject({
        workers: 4,
        iterations: 2000,
        count: 8000,
        expected: 8000,
        exact: true,
        capacity: 5,
        ticketsLeft: 0,
      });
      expect(r.maxTicket).toBeLessThanOrEqual(r.capacity);
    },
  },
  {
    pkg: 'shm',
    match: [/openMutex\('nightly-report', \{ slots: 16 \}\)/],
    async run(block) {
      expect((await runBlock(block)).trim()).toBe('mapped');
    },
  },
  {
    pkg: 'shm',
    match: [/node examples\/append\.mjs demo \/tmp\/out\.txt &/, /^examples\/append\.mjs$/],
    examples: ['append.mjs'],
    async run(block) {
      // As written: "shell 1" in the background, "shell 2", then wc and the removal; in
      // packages/shm, and a private file instead of /tmp/out.txt.
      const out = path.join(dir, 'append-out.txt');
      const script = scaled(
        block.replace(/^cd node_modules\/@bakery\/shm\b.*$/m, 'cd packages/shm'),
        '/tmp/out.txt',
        out,
      );
      expect(script).toMatch(/^cd packages\/shm$/m);
      const stdout = await run('sh', [script], repo);
      const lock = path.join(shmDir, 'bakery.demo');
      const appended = [
        ...stdout.matchAll(/^(\d+): appended 2000 lines to (.+) under lock (.+)$/gm),
      ];
      expect(appended.map((m) => [m[2], m[3]])).toEqual([
        [out, lock],
        [out, lock],
      ]);
      expect(stdout).toMatch(new RegExp(`^\\s*4000 ${out}$`, 'm'));
      // Every line intact, and each run's 2,000 lines in its own order.
      const lines = fs.readFileSync(out, 'utf8').trimEnd().split('\n');
      expect(lines).toHaveLength(4000);
      const next = new Map<string, number>(appended.map((m) => [m[1]!, 0]));
      let switches = 0;
      lines.forEach((l, k) => {
        const m = /^(\d+) (\d{5}) -{40} end$/.exec(l);
        expect(m, `line ${k + 1}: ${l}`).not.toBeNull();
        expect(Number(m![2])).toBe(next.get(m![1]!));
        next.set(m![1]!, next.get(m![1]!)! + 1);
        if (k > 0 && !l.startsWith(lines[k - 1]!.split(' ')[0]!)) switches++;
      });
      expect([...next.values()]).toEqual([2000, 2000]);
      console.log(`  the two runs took turns: the writer changed ${switches} times`);
      expect(fs.existsSync(lock)).toBe(false); // removeMutex('demo') removed it
    },
  },
  {
    pkg: 'shm',
    match: [/node examples\/crowd\.mjs 64 2 6 /, /^examples\/crowd\.mjs$/],
    examples: ['crowd.mjs'],
    async run(block) {
      // 64 processes for 6 s (each run) is too heavy for CI on 2 cores: the README's two
      // commands with 4 processes for 1 s, and, next to them, the async mode its comment names.
      const script = scaled(block, ' 64 2 6', ' 4 2 1');
      const [both, async] = await Promise.all([
        run('sh', [script], pkgDir('shm')),
        run('node', ['examples/crowd.mjs', '4', '2', '1', 'async'], pkgDir('shm')),
      ]);
      const reports = [...both.trim().split('\n'), async.trim()].map((l) => JSON.parse(l));
      expect(reports.map((r) => [r.access, r.mode])).toEqual([
        ['mapped', 'sync'],
        ['pure-js', 'sync'],
        ['mapped', 'async'],
      ]);
      for (const r of reports) {
        expect(r).toMatchObject({ processes: 4, holdMs: 2, seconds: 1, exact: true });
        expect(r.acquisitions).toBeGreaterThan(0);
        expect(r.perSecond).toBe(Math.round(r.acquisitions / r.seconds));
        expect(r.fewestPerProcess, 'every process got turns').toBeGreaterThan(0);
      }
    },
  },
];

test('the package READMEs show the examples this test knows about, and ship and import them', () => {
  const report: string[] = [];
  for (const it of items) {
    if (it.kind === 'block' && it.lang === '') {
      throw new Error(
        `${where(it)}: an unlabelled fence; label it (\`\`\`js, \`\`\`sh, \`\`\`text…)`,
      );
    }
    if (it.kind === 'block' && !RUNS.has(it.lang) && !(it.lang in NEVER_RUNS)) {
      throw new Error(`${where(it)}: \`\`\`${it.lang} is neither run nor known not to run here`);
    }
    if (it.notRun !== undefined) {
      report.push(`  not run  ${where(it)} (\`\`\`${it.lang}) — ${it.notRun}`);
      continue;
    }
    const by = known.filter((k) => k.pkg === it.pkg && k.match.some((re) => re.test(it.text)));
    const shown = it.kind === 'block' ? `\`\`\`${it.lang} block` : `${it.kind} \`${it.text}\``;
    expect(by.length, `${where(it)}: ${shown} must be run by exactly one entry here`).toBe(1);
    report.push(`  run      ${where(it)} ${shown} — "${known.indexOf(by[0]!) + 1}. ${by[0]!.pkg}"`);
  }
  console.log(`package README blocks and commands:\n${report.join('\n')}`);
  for (const k of known) {
    for (const re of k.match) {
      expect(
        items.some((it) => it.pkg === k.pkg && it.notRun === undefined && re.test(it.text)),
        `${k.pkg}: ${re} matches nothing in its README any more`,
      ).toBe(true);
    }
  }
  // Every example a package has is shown by its README, run here, shipped, and imports the
  // packages by name (so it runs as it is from node_modules/@bakery/<name>).
  for (const pkg of PACKAGES) {
    const exDir = path.join(pkgDir(pkg), 'examples');
    if (!fs.existsSync(exDir)) continue;
    const files = fs.readdirSync(exDir).sort();
    const ran = new Set(known.filter((k) => k.pkg === pkg).flatMap((k) => k.examples ?? []));
    expect([...ran].sort(), `${pkg}: the examples run here`).toEqual(files);
    const manifest = JSON.parse(fs.readFileSync(path.join(pkgDir(pkg), 'package.json'), 'utf8'));
    expect(manifest.files, `${pkg}: package.json "files"`).toContain('examples');
    for (const f of files) {
      expect(
        items.some((it) => it.pkg === pkg && it.text.includes(`examples/${f}`)),
        `${pkg}: its README shows examples/${f}`,
      ).toBe(true);
      const src = fs.readFileSync(path.join(exDir, f), 'utf8');
      const specifiers = [...src.matchAll(/(?:from|import\()\s*'([^']+)'/g)].map((m) => m[1]!);
      expect(specifiers.length, f).toBeGreaterThan(0);
      for (const s of specifiers) expect(s, `examples/${f} imports`).toMatch(/^(node:|@bakery\/)/);
      expect(specifiers, f).toContain(`@bakery/${pkg}`);
    }
  }
});

known.forEach((k, n) => {
  const it = items.find(
    (i) => i.pkg === k.pkg && i.notRun === undefined && k.match[0]!.test(i.text),
  );
  const shown =
    it === undefined
      ? `${k.pkg}: ${k.match[0]} (not in its README)`
      : `${where(it)} ${it.kind === 'block' ? `\`\`\`${it.lang} block` : `\`${it.text}\``}`;
  test(`${n + 1}. ${shown} runs and prints what it promises`, async () => {
    if (k.pg === true && pgServer === null) {
      console.warn(`SKIPPED (printed reason): ${pgSkip}`);
      return;
    }
    expect(it, `${k.pkg}: ${k.match[0]}`).toBeDefined();
    await k.run(it!.text);
  }, 120_000);
});

// Broken variants of the real code: each is a patched copy of @bakery/core's build (never a
// switch in the shipped code). The explorer must catch every one; a mutant whose pattern no
// longer matches the build is an error, never a silent pass. `scenarios` are the ones it is
// explored in; `budget` (seconds) overrides the default for the hard ones.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const mutants = [
  {
    name: 'reuse-doorway-hwm',
    about:
      "the waiting scan reuses the doorway's HIGH_WATER read: a slot claimed meanwhile goes unseen (spin: bug-reuse-hwm)",
    scenarios: ['late-joiner'],
    budget: 60,
    edits: [['this.hwm = scanLimit(cells, this.capacity);', 'this.hwm = limit;']],
  },
  {
    name: 'no-step-back',
    about:
      'the doorway never steps back: withdrawals let tickets creep above HIGH_WATER (spin: bug-no-stepback-with-trylock)',
    scenarios: ['trylock-pair', 'trylock-storm'],
    edits: [['if (n > limit) {', 'if (false) {']],
  },
  {
    name: 'trylock-exit-colour',
    about:
      'a failing tryLock writes the exit colour as a holder would (spin: bug-trylock-exit-colour)',
    scenarios: ['trylock-storm'],
    budget: 60,
    edits: [
      [
        'if (r === BLOCKED) acq.withdraw();',
        'if (r === BLOCKED) { acq.passColour(); acq.withdraw(); }',
      ],
    ],
  },
  {
    name: 'reap-order-as-described',
    about:
      'the reaper clears HOLDER first, then the colour, then OWNER_DIED: a reaper that dies in between loses ownerDied (spin: described-reap-order)',
    scenarios: ['crash-recovery', 'reapers'],
    edits: [
      [
        `if (cells.load(H.OWNER_DIED) !== 2) cells.store(H.OWNER_DIED, 1);
  if (ticket !== 0) cells.store(H.COLOUR, (ticket & 1) === BLACK ? WHITE : BLACK);
  cells.store(H.HOLDER, 0);`,
        `cells.store(H.HOLDER, 0);
  if (ticket !== 0) cells.store(H.COLOUR, (ticket & 1) === BLACK ? WHITE : BLACK);
  if (cells.load(H.OWNER_DIED) !== 2) cells.store(H.OWNER_DIED, 1);`,
      ],
    ],
  },
  {
    name: 'reaper-slot-token-as-described',
    about:
      "REAPER holds the reaper's slot without its claim generation: a token of a dead reaper is taken for its slot's next owner's (spin: described-reaper-slot-token)",
    scenarios: ['reaper-reuse'],
    edits: [
      ['reaperToken(slot, cells.load(slotBase(slot) + S.CLAIM_GEN))', 'reaperToken(slot, 0)'],
      [
        'if ((this.cells.load(slotBase(slot) + S.CLAIM_GEN) & CLAIM_GEN_MASK) !== gen) return true;',
        '',
      ],
    ],
  },
  {
    name: 'no-step-back-reap-as-described',
    about:
      "a doorway that steps back never reaps the high ticket's dead owner: everyone steps back forever (spin: described-no-stepback-reap)",
    scenarios: ['crash-pair'],
    edits: [[/this\.[\w#.]*stepBackStale\(now\d*\);/g, '']],
  },
  {
    name: 'trylock-leaves-ticket',
    about: 'a failing tryLock keeps its ticket',
    scenarios: ['trylock-storm'],
    edits: [['if (r === BLOCKED) acq.withdraw();', '']],
  },
  {
    name: 'exit-forgets-wake',
    about:
      'the exit clears the ticket without waking its sleepers (each handoff then waits for the backstop)',
    scenarios: ['three-lockers'],
    edits: [
      [
        `this.passColour();
    cells.store(this.base + S.TICKET, 0);
    this.wake(this.slot, this.base + S.TICKET);
    this.phase = 0;`,
        `this.passColour();
    cells.store(this.base + S.TICKET, 0);
    this.phase = 0;`,
      ],
    ],
  },
  {
    name: 'wake-before-store',
    about:
      'the exit reads the sleeper count and wakes before it clears its ticket: a waiter that announces itself in between sleeps through the change',
    scenarios: ['three-lockers'],
    edits: [
      [
        `this.passColour();
    cells.store(this.base + S.TICKET, 0);
    this.wake(this.slot, this.base + S.TICKET);
    this.phase = 0;`,
        `this.passColour();
    this.wake(this.slot, this.base + S.TICKET);
    cells.store(this.base + S.TICKET, 0);
    this.phase = 0;`,
      ],
    ],
  },
  {
    name: 'choosing-cleared-before-ticket',
    about: 'the doorway clears CHOOSING before storing its ticket: a scanner sees neither',
    scenarios: ['three-lockers', 'late-joiner'],
    edits: [
      [
        `cells.store(base + S.TICKET, packTicket(n, c));
      cells.store(base + S.CHOOSING, 0);`,
        `cells.store(base + S.CHOOSING, 0);
      cells.store(base + S.TICKET, packTicket(n, c));`,
      ],
    ],
  },
  {
    name: 'scan-skips-choosing',
    about: 'the waiting scan does not wait for a doorway in progress',
    scenarios: ['three-lockers'],
    edits: [['if (ch !== 0) return this.block(b + S.CHOOSING, ch, j);', '']],
  },
  {
    name: 'exit-toggles-colour',
    about: 'the exit toggles the shared colour instead of writing the opposite of its own',
    scenarios: ['three-lockers', 'late-joiner', 'trylock-storm'],
    edits: [
      [
        'this.cells.store(H.COLOUR, this.c === BLACK ? WHITE : BLACK);',
        'this.cells.store(H.COLOUR, this.cells.load(H.COLOUR) === BLACK ? WHITE : BLACK);',
      ],
    ],
  },
  {
    name: 'queue-stalls-after-timeout',
    about:
      "an acquisition of the instance's local queue that times out does not start the next queued lock(), which then never settles",
    scenarios: ['local-queue'],
    edits: [
      [
        `(err) => {
        this.#busy = false;
        w.reject(this.#explain(err, "lock()", w.timeout));
        this.#pump();
      }`,
        `(err) => {
        this.#busy = false;
        w.reject(this.#explain(err, "lock()", w.timeout));
      }`,
      ],
    ],
  },
  {
    name: 'timed-out-waiter-stays-queued',
    about:
      'a queued lock() that times out stays in the local queue: it later takes the lock with no caller left to release it',
    scenarios: ['queue-timeouts'],
    edits: [['this.#queue.splice(k, 1);', '']],
  },
  {
    name: 'batch-unbounded',
    about:
      'a batched release keeps its ticket whatever the count: maxBatch is ignored (spin: bug-batch-unbounded)',
    scenarios: ['batched'],
    edits: [['if (this.#retakes >= this.#maxBatch) return false;', '']],
  },
  {
    name: 'batch-retake-store',
    about:
      'the re-entry checks its retained ticket, then stores it, instead of one compareExchange: a revocation in between is lost (spin: bug-batch-retake-store)',
    scenarios: ['batched'],
    edits: [
      [
        'return this.cells.compareExchange(this.base + S.TICKET, r, t) === r;',
        'if (this.cells.load(this.base + S.TICKET) !== r) return false; this.cells.store(this.base + S.TICKET, t); return true;',
      ],
    ],
  },
];

/** The directory of the real build of @bakery/core. */
export function coreDist() {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('@bakery/core'));
}

/** A pattern whose runs of whitespace match any whitespace (the build's formatting may move). */
function loose(text) {
  return new RegExp(
    text
      .trim()
      .split(/\s+/)
      .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('\\s+'),
    'g',
  );
}

/**
 * Build mutant `name`: a copy of the core build with its edits applied. Each edit (a string
 * whose whitespace is loose, or a global RegExp) must match exactly once across the build's
 * ESM files. Returns { url, dir, cleanup }.
 */
export function buildMutant(name) {
  const m = mutants.find((x) => x.name === name);
  if (m === undefined) throw new Error(`no mutant named ${name} (--mutants lists them)`);
  const src = coreDist();
  const dir = mkdtempSync(join(tmpdir(), `bakery-mutant-${name}-`));
  cpSync(src, dir, { recursive: true });
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  for (const [from, to] of m.edits) {
    const re = typeof from === 'string' ? loose(from) : from;
    let hits = 0;
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      const found = text.match(re);
      if (found === null) continue;
      hits += found.length;
      writeFileSync(
        join(dir, f),
        text.replace(re, () => to),
      );
    }
    if (hits !== 1)
      throw new Error(
        `mutant ${name}: its pattern matches ${hits} places in the build, not 1 (the code moved? update src/mutants.mjs):\n${from}`,
      );
  }
  return {
    url: pathToFileURL(join(dir, 'index.js')).href,
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

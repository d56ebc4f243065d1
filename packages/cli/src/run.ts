import { parseArgs } from 'node:util';
import { BakeryError } from '@bakery/core';
import {
  inspectLock,
  inspectPgLock,
  inspectProcess,
  listLocks,
  MARK_CONSISTENT_TIMEOUT,
  markConsistentLock,
  PG_CONNECT_TIMEOUT,
  reapLock,
  removeLock,
} from './commands.js';
import { CliError, codeOf, EXIT, exitCodeFor } from './errors.js';
import { formatList, formatLock, formatPgLock, formatProcess } from './format.js';

/** Where {@link run} writes; defaults to the process's stdout and stderr. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

const COMMON = `  --json         print JSON (errors too, on stderr: {"error":{"code","message"}})
  -h, --help     show this help`;
const DIR = `  --dir DIR      lock directory (default: $BAKERY_SHM_DIR, else /dev/shm/bakery-<uid>)`;

/** `--help` texts, by command. */
export const HELP: Record<string, string> = {
  '': `bakery — look inside bakery locks

usage: bakery <command> [options]

commands:
  ls                   list the named locks in the shm directory
  inspect <name>       show a named lock: holder, slots, owners and whether they live
  inspect --pid <pid>  show the memfd (@bakery/mmap) and named locks a process has open
  inspect --pg <url> <name>
                       show a @bakery/pg lock: fencing token, state, holder session, waiters
  reap <name>          free the slots of dead owners now (a dead holder's lock is handed on)
  mark-consistent <name>
                       clear a poisoned (NOT RECOVERABLE) lock once its data is repaired
  rm <name>            remove a named lock; refused while live processes use it (--force)
  help [command]       show help for a command

Every command takes --json and --help. Exit codes: 0 ok, 1 failure, 2 usage, 3 not found,
4 not a bakery lock, 5 permission denied / another user's, 6 no free slot (reap,
mark-consistent), 7 timed out (mark-consistent), 8 in use (rm without --force); an unreachable
PostgreSQL server (inspect --pg) is 1, BAKERY_CONNECTION.`,
  ls: `usage: bakery ls [--dir DIR] [--json]

List the named locks (files bakery.<name>) in the shm directory: name, access (mapped or
pure JS), capacity, participants, holder (pid), waiters, and the state: owner-died state
(a poisoned lock reads NOT RECOVERABLE), dead owners, header cells out of range. A file that
is not a lock (junk, a FIFO, unreadable) is listed with its error. Reads only; takes no slot.
A missing --dir (or $BAKERY_SHM_DIR), or not a directory, is exit 3; an unreadable one exit 5.

${DIR}
${COMMON}`,
  inspect: `usage: bakery inspect <name> [--dir DIR] [--json]
       bakery inspect --pid <pid> [--json]
       bakery inspect --pg <url> <name> [--table T] [--json]

Show a lock's header (layout, capacity, colour, access, holder, owner-died flag, acquisitions,
largest ticket) and every claimed slot: owner pid and thread, alive?, choosing, ticket, colour,
sleepers. Access is "mapped" (atomics, futex wake-ups, per-slot leases) or "pure JS" (one
pread/pwrite per cell). In a mapped lock, alive? follows the owner's lease (a dead owner reads
as dead even in another pid namespace); otherwise the pid check. Reads only; takes no slot.

A poisoned lock (a holder died and its successor released without marking the data
consistent) shows owner-died NOT RECOVERABLE: run bakery mark-consistent <name> after
repairing the data. A HOLDER, COLOUR or OWNER_DIED header cell holding a value bakery never
writes is shown as stored and flagged OUT OF RANGE (JSON: raw, outOfRange).

With --pid, finds the locks process <pid> has open through /proc/<pid>/fd — an @bakery/mmap
memfd ("memfd:bakery") or a named lock file — and shows each.

With --pg, reads the @bakery/pg lock <name> on that PostgreSQL server: its key, fencing token
(the last one handed out), held, state (consistent, or NOT RECOVERABLE), the session holding it
(server pid, client address, application_name, since when) and the sessions waiting, in the
order the server will grant them (pg_locks). Opens one session for the reads; creates nothing,
takes nothing. No state table or no row for <name> (never opened there) is exit 3; a server
that cannot be reached within ${PG_CONNECT_TIMEOUT / 1000} s is exit 1, BAKERY_CONNECTION. In JSON the
bigints (key, fencingToken) are strings.

  --pid PID      inspect the locks of this process instead of a named lock
${DIR}
  --pg URL       inspect a @bakery/pg lock on this server: a connection string such as
                 postgresql://user@host:5432/db, or over a unix socket
                 postgresql://user@/db?host=/run/postgresql. --pg= (empty) takes it from
                 $BAKERY_PG_URL, else the PG* variables (PGHOST, PGUSER, …): either keeps a
                 password out of the process list
  --table T      the state table of the --pg lock (default bakery_locks; schema.table allowed)
${COMMON}`,
  reap: `usage: bakery reap <name> [--dir DIR] [--json]

Free now the slots whose owner is certainly dead (the pid, or its thread, is gone or was
reused). If the holder died, its turn is handed on and the next acquirer sees ownerDied.
Joins the lock for a moment as a participant (needs one free slot, else exit 6), then leaves.
Participants reap on their own after staleAfterMs; this is for doing it now.

${DIR}
${COMMON}`,
  'mark-consistent': `usage: bakery mark-consistent <name> [--timeout MS] [--dir DIR] [--json]

Clear a poisoned lock: one whose holder died and whose next holder released it without
marking the protected data consistent, so that every acquirer now gets
BAKERY_NOT_RECOVERABLE. Repair the data first; then this joins the lock for a moment, takes
it (waiting at most --timeout ms for a live holder; a dead holder is reaped), marks it
consistent, releases it and leaves. Says whether there was anything to clear (a lock flagged
owner-died is cleared too; a consistent one is left as it was).

Exit 0 when done (cleared or nothing to clear), 3 no such lock, 6 no free slot to join
with, 7 a live holder kept the lock for --timeout ms (nothing changed).

  --timeout MS   how long to wait for the lock (default ${MARK_CONSISTENT_TIMEOUT})
${DIR}
${COMMON}`,
  rm: `usage: bakery rm <name> [--force] [--dir DIR] [--json]

Remove a named lock, like shm_unlink. Refused (exit 8, BAKERY_IN_USE) while the lock has live
participants — they are listed, pid and holder — because they would keep using the removed
file while the next openMutex(name) creates a fresh lock: two locks under one name. Dead
participants do not count. Also refused: a file of another user (exit 5), something that is
not a regular file, such as a FIFO (exit 4). A missing lock is exit 3. A regular file that is
not a lock of this version is removed, with a warning.

  -f, --force    remove it anyway (with a warning on stderr), and succeed when there is none
${DIR}
${COMMON}`,
};

function usage(message: string): CliError {
  return new CliError('BAKERY_USAGE', `${message} (see bakery --help)`);
}

function oneName(command: string, positionals: string[]): string {
  if (positionals.length !== 1) {
    throw usage(`bakery ${command} takes exactly one lock name, got ${positionals.length}`);
  }
  return positionals[0]!;
}

/** What a command printed: its JSON data and its text. */
interface Output {
  data: unknown;
  text: string;
}

/**
 * Run the `bakery` command line `argv` (without `node` and the script). Returns the exit code;
 * never throws and never calls `process.exit`, so it can run inside tests. Synchronous: the one
 * command that reads over the network, `inspect --pg`, is exit 1 `BAKERY_UNSUPPORTED` here (it
 * connects nothing) — use {@link runAsync} for it.
 *
 * @example
 * ```ts
 * import { run } from '@bakery/cli';
 * process.exitCode = run(['inspect', 'jobs', '--json']);
 * ```
 */
export function run(argv: string[], io: Io = defaultIo): number {
  const json = argv.includes('--json');
  try {
    const r = begin(argv, io, json);
    if (typeof r === 'function') {
      throw new BakeryError(
        'BAKERY_UNSUPPORTED',
        'bakery inspect --pg reads over the network and cannot run synchronously: call runAsync() (the bakery executable does)',
      );
    }
    return typeof r === 'number' ? r : print(r, json, io);
  } catch (err) {
    return fail(err, json, io);
  }
}

/**
 * {@link run}, for every command including `inspect --pg` (a @bakery/pg lock, read over the
 * network): resolves with the exit code, never rejects. The other commands run synchronously
 * inside it, exactly as in `run`. The `bakery` executable calls this.
 *
 * @example
 * ```ts
 * import { runAsync } from '@bakery/cli';
 * process.exitCode = await runAsync(['inspect', '--pg', process.env.DATABASE_URL!, 'nightly-report']);
 * ```
 */
export async function runAsync(argv: string[], io: Io = defaultIo): Promise<number> {
  const json = argv.includes('--json');
  try {
    let r = begin(argv, io, json);
    if (typeof r === 'function') r = await r();
    return typeof r === 'number' ? r : print(r, json, io);
  } catch (err) {
    return fail(err, json, io);
  }
}

/** Bigints (a @bakery/pg lock's key and fencing token) as decimal strings. */
const bigintsAsStrings = (_key: string, value: unknown) =>
  typeof value === 'bigint' ? value.toString() : value;

function print(r: Output, json: boolean, io: Io): number {
  io.out(json ? JSON.stringify(r.data, bigintsAsStrings, 2) : r.text);
  return EXIT.OK;
}

function fail(err: unknown, json: boolean, io: Io): number {
  const code = codeOf(err);
  const message = (err as Error)?.message ?? String(err);
  if (json) io.err(JSON.stringify({ error: { code, message } }));
  else io.err(`bakery: ${message} [${code}]`);
  return exitCodeFor(err);
}

/**
 * Parse `argv` and run the command: an exit code when it printed already (help, version), its
 * output, or — for `inspect --pg` — a function that reads and resolves with the output.
 */
function begin(argv: string[], io: Io, json: boolean): number | Output | (() => Promise<Output>) {
  const [command = '', ...rest] = argv;
  if (command === '' || command === '--help' || command === '-h') {
    io.out(HELP['']!);
    return command === '' ? EXIT.USAGE : EXIT.OK;
  }
  if (command === 'help') {
    const topic = rest.find((a) => !a.startsWith('-')) ?? '';
    const text = HELP[topic];
    if (text === undefined) throw usage(`no such command: ${topic}`);
    io.out(text);
    return EXIT.OK;
  }
  if (command === '--version') {
    io.out(VERSION);
    return EXIT.OK;
  }
  if (HELP[command] === undefined || command === '') throw usage(`no such command: ${command}`);
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rest);
  } catch (err) {
    throw usage((err as Error).message);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    io.out(HELP[command]!);
    return EXIT.OK;
  }
  const allowed: Record<string, string[]> = {
    ls: ['dir'],
    inspect: ['dir', 'pid', 'pg', 'table'],
    reap: ['dir'],
    'mark-consistent': ['dir', 'timeout'],
    rm: ['dir', 'force'],
  };
  for (const k of Object.keys(v)) {
    if (k !== 'json' && k !== 'help' && !allowed[command]!.includes(k)) {
      throw usage(`bakery ${command} does not take --${k}`);
    }
  }
  const dir = v.dir;
  let data: unknown;
  let text: string;
  switch (command) {
    case 'ls': {
      if (positionals.length > 0) throw usage('bakery ls takes no arguments');
      const r = listLocks({ dir });
      data = r;
      text = formatList(r.dir, r.locks);
      break;
    }
    case 'inspect': {
      if (v.pg !== undefined) {
        if (v.pid !== undefined || dir !== undefined) {
          throw usage(`bakery inspect --pg does not take --${v.pid !== undefined ? 'pid' : 'dir'}`);
        }
        if (positionals.length === 0) {
          throw usage(
            `bakery inspect --pg takes a connection URL and a lock name: bakery inspect --pg URL <name> (--pg= for $BAKERY_PG_URL); got --pg ${JSON.stringify(v.pg)} and no name`,
          );
        }
        const name = oneName(command, positionals);
        // --pg= (empty): $BAKERY_PG_URL, else node-postgres's defaults (the PG* variables).
        const connection = v.pg !== '' ? v.pg : process.env.BAKERY_PG_URL || undefined;
        return async () => {
          const r = await inspectPgLock(name, { connection, table: v.table });
          return { data: r, text: formatPgLock(r) };
        };
      }
      if (v.table !== undefined) throw usage('--table goes with --pg (a @bakery/pg lock)');
      if (v.pid !== undefined) {
        if (positionals.length > 0) throw usage('bakery inspect takes a name or --pid, not both');
        if (!/^[1-9]\d*$/.test(v.pid)) throw usage(`--pid needs a process id, got ${v.pid}`);
        const r = inspectProcess(Number(v.pid));
        data = r;
        text = formatProcess(r.pid, r.locks);
      } else {
        const r = inspectLock(oneName(command, positionals), { dir });
        data = r;
        text = formatLock(`lock ${r.name} (${r.path})`, r, r.name);
      }
      break;
    }
    case 'reap': {
      const r = reapLock(oneName(command, positionals), { dir });
      data = r;
      text = `reaped ${r.reaped} dead owner${r.reaped === 1 ? '' : 's'}\n\n${formatLock(`lock ${r.name} (${r.path})`, r, r.name)}`;
      break;
    }
    case 'mark-consistent': {
      let timeout: number | undefined;
      if (v.timeout !== undefined) {
        if (!/^\d+$/.test(v.timeout))
          throw usage(`--timeout needs a number of milliseconds, got ${v.timeout}`);
        timeout = Number(v.timeout);
      }
      const r = markConsistentLock(oneName(command, positionals), { dir, timeout });
      data = r;
      text = r.cleared
        ? `lock ${r.name} was ${r.was === 'owner-died' ? 'flagged owner-died' : 'poisoned (NOT RECOVERABLE)'}; it is marked consistent now, and the next acquirer takes it normally`
        : `lock ${r.name}: nothing to clear (it was consistent)`;
      break;
    }
    default: {
      const r = removeLock(oneName(command, positionals), { dir, force: v.force });
      data = r;
      text = r.removed ? `removed ${r.path}` : `no lock at ${r.path}`;
      if (!json) for (const w of r.warnings) io.err(`bakery: warning: ${w}`);
      break;
    }
  }
  return { data, text };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      dir: { type: 'string' },
      pid: { type: 'string' },
      force: { type: 'boolean', short: 'f' },
      timeout: { type: 'string' },
      pg: { type: 'string' },
      table: { type: 'string' },
    },
  });
}

const defaultIo: Io = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** This package's version. */
export const VERSION = '0.1.0';

import type { PgParticipant } from '@bakery/pg';
import type { ListEntry, PgLockView } from './commands.js';
import type { LockView, ProcessLock } from './read.js';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** How the text output names a lock's access mode. */
const accessText = (v: LockView) => (v.access === 'pure-js' ? 'pure JS' : 'mapped');

const yesNo = (v: boolean | null) => (v === null ? '-' : v ? 'yes' : 'NO');

function holderText(v: LockView): string {
  if (v.holder === null) return 'none';
  if (v.holder.outOfRange) {
    return `HOLDER cell ${v.raw.holder}: OUT OF RANGE (no slot ${v.holder.slot} below high-water ${v.highWater})`;
  }
  const who = v.holder.pid === null ? 'a freed slot' : `pid ${v.holder.pid}`;
  const state = v.holder.alive === false ? ', DEAD' : v.holder.alive ? ', alive' : '';
  return `slot ${v.holder.slot} (${who}${state})`;
}

function colourText(v: LockView): string {
  return v.colour ?? `${v.raw.colour} (COLOUR cell OUT OF RANGE: not 0 white or 1 black)`;
}

/** What to run on a poisoned lock: with its name when it has one. */
const markHint = (name?: string) =>
  `run \`bakery mark-consistent ${name ?? '<name>'}\` after repairing the data`;

/**
 * The owner-died state in words; a poisoned lock (`not-recoverable`) says so plainly, with the
 * way out. `name` (a named lock's) goes into the hint.
 */
export function ownerDiedText(v: LockView, name?: string): string {
  const odd = v.outOfRange.includes('ownerDied')
    ? ` (OWNER_DIED cell ${v.raw.ownerDied} OUT OF RANGE, read as not recoverable)`
    : '';
  switch (v.ownerDied) {
    case 'consistent':
      return 'consistent';
    case 'owner-died':
      return 'owner-died (a holder died; the next acquirer gets lease.ownerDied)';
    default:
      return `NOT RECOVERABLE${odd} — every acquirer gets BAKERY_NOT_RECOVERABLE; ${markHint(name)}`;
  }
}

/**
 * Human-readable text of one lock: header lines and a slot table. `name` is the lock's name
 * when it is a named lock (used in hints such as `bakery mark-consistent <name>`).
 */
export function formatLock(title: string, v: LockView, name?: string): string {
  const lines = [
    title,
    `  layout v${v.layoutVersion} · capacity ${v.capacity} · high-water ${v.highWater} · colour ${colourText(v)}`,
    `  access        ${accessText(v)}`,
    `  holder        ${holderText(v)}`,
    `  owner-died    ${ownerDiedText(v, name)}`,
    `  acquisitions  ${v.acquisitions} · max ticket ${v.maxTicket}`,
    `  participants  ${v.participants} (${v.dead} dead) · waiters ${v.waiters}`,
  ];
  if (v.slots.length > 0) {
    const rows = [['slot', 'pid', 'tid', 'alive', 'choosing', 'ticket', 'colour', 'sleepers', '']];
    for (const s of v.slots) {
      rows.push([
        String(s.slot),
        s.pid === null ? '-' : String(s.pid),
        s.pid === null ? '-' : String(s.tid),
        yesNo(s.alive),
        s.choosing ? 'yes' : 'no',
        s.ticket === 0 ? '-' : s.retained ? `${s.ticket} (retained)` : String(s.ticket),
        s.colour ?? '-',
        String(s.sleepers),
        s.holder ? '← holder' : '',
      ]);
    }
    lines.push('', table(rows).replace(/^/gm, '  '));
  }
  if (v.dead > 0) lines.push('', '  dead owners: `bakery reap` frees their slots now');
  if (v.outOfRange.length > 0) {
    lines.push(
      '',
      `  out of range: ${v.outOfRange.join(', ')} — shown as stored; this header was not written by bakery (or is torn)`,
    );
  }
  if (v.anomalies.length > 0) {
    lines.push(
      '',
      '  anomalies (states no correct participant writes; `bakery reap` clears stray state on free slots):',
    );
    for (const a of v.anomalies) lines.push(`    - ${a}`);
  }
  return lines.join('\n');
}

/** Human-readable text of `bakery ls`. */
export function formatList(dir: string, locks: ListEntry[]): string {
  if (locks.length === 0) return `no bakery locks in ${dir}`;
  const rows = [['name', 'access', 'capacity', 'participants', 'holder', 'waiters', 'state']];
  for (const l of locks) {
    if ('error' in l) {
      rows.push([l.name, '-', '-', '-', '-', '-', `${l.error.code}: ${l.error.message}`]);
      continue;
    }
    const holder =
      l.holder === null
        ? '-'
        : l.holder.outOfRange
          ? `? (HOLDER ${l.raw.holder})`
          : `${l.holder.pid ?? '?'}${l.holder.alive === false ? ' (dead)' : ''}`;
    const state = [
      l.ownerDied === 'not-recoverable'
        ? `NOT RECOVERABLE (bakery mark-consistent ${l.name})`
        : l.ownerDied,
      l.dead > 0 ? `${l.dead} dead` : '',
      l.outOfRange.length > 0 ? `OUT OF RANGE: ${l.outOfRange.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(', ');
    rows.push([
      l.name,
      accessText(l),
      String(l.capacity),
      String(l.participants),
      holder,
      String(l.waiters),
      state,
    ]);
  }
  return `${dir}\n${table(rows)}`;
}

/** Human-readable text of `bakery inspect --pid`. */
export function formatProcess(pid: number, locks: ProcessLock[]): string {
  return locks
    .map((l) =>
      formatLock(
        `process ${pid}, fd ${l.fd} → ${l.target} (${l.kind})`,
        l,
        l.kind === 'shm' ? /\/bakery\.([^/]+?)(?: \(deleted\))?$/.exec(l.target)?.[1] : undefined,
      ),
    )
    .join('\n\n');
}

const when = (d: Date | null) => (d === null ? '-' : d.toISOString());

/** Where a session connects from: its client address, or the unix socket. */
const address = (p: PgParticipant) => p.clientAddr ?? 'unix socket';

function pgHolderText(v: PgLockView): string {
  const h = v.holder;
  if (h === null) {
    if (!v.held) return 'none';
    return `none — the state row still records ${v.recordedHolder ?? 'a holder'} (since ${when(v.acquiredAt)}), but no session holds the advisory lock: it ended without releasing, and the next acquirer gets lease.ownerDied`;
  }
  const who = `pid ${h.pid} · ${address(h)} · application_name ${JSON.stringify(h.applicationName ?? '')}`;
  if (!v.held) {
    return `${who} — the state row records no holder: it is acquiring or releasing right now, or the session took advisory lock ${v.key} outside bakery`;
  }
  return `${who} · since ${when(v.acquiredAt)}`;
}

/**
 * Human-readable text of `bakery inspect --pg`: a @bakery/pg lock's state row (fencing token,
 * held, consistent or not recoverable, recorded holder) and the server's queue (the session
 * holding the advisory lock, then the waiting ones in the order the server grants them).
 */
export function formatPgLock(v: PgLockView): string {
  const { classid, objid } = pgKeyParts(v.key);
  const held = v.held ? `yes (recorded holder: ${v.recordedHolder ?? 'none named'})` : 'no';
  const state =
    v.state === 'consistent'
      ? 'consistent'
      : 'NOT RECOVERABLE — every acquirer gets BAKERY_NOT_RECOVERABLE; repair the data, then call mutex.markConsistent() of @bakery/pg';
  const waiters = `${v.waiters.length}${v.waiters.length > 0 ? ' (in the order the server grants them)' : ''}`;
  const lines = [
    `lock ${v.name} (PostgreSQL, table ${v.table})`,
    ...[
      ['key', `${v.key} (pg_locks advisory classid ${classid}, objid ${objid})`],
      ['fencing token', String(v.fencingToken)],
      ['held', held],
      ['state', state],
      ['holder', pgHolderText(v)],
      ['waiters', waiters],
    ].map(([label, value]) => `  ${label!.padEnd(15)}${value}`),
  ];
  if (v.waiters.length > 0) {
    const rows = [['#', 'pid', 'address', 'application_name', 'waiting since']];
    v.waiters.forEach((w, i) => {
      rows.push([
        String(i + 1),
        String(w.pid),
        address(w),
        w.applicationName ?? '-',
        when(w.waitStart),
      ]);
    });
    lines.push('', table(rows).replace(/^/gm, '  '));
  }
  return lines.join('\n');
}

/** The key as pg_locks shows it (as `keyParts` of @bakery/pg, which is not loaded here). */
function pgKeyParts(key: bigint): { classid: number; objid: number } {
  const u = BigInt.asUintN(64, key);
  return { classid: Number(u >> 32n), objid: Number(u & 0xffffffffn) };
}

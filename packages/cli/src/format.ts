import type { ListEntry } from './commands.js';
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
  const who = v.holder.pid === null ? 'a freed slot' : `pid ${v.holder.pid}`;
  const state = v.holder.alive === false ? ', DEAD' : v.holder.alive ? ', alive' : '';
  return `slot ${v.holder.slot} (${who}${state})`;
}

/** Human-readable text of one lock: header lines and a slot table. */
export function formatLock(title: string, v: LockView): string {
  const lines = [
    title,
    `  layout v${v.layoutVersion} · capacity ${v.capacity} · high-water ${v.highWater} · colour ${v.colour}`,
    `  access        ${accessText(v)}`,
    `  holder        ${holderText(v)}`,
    `  owner-died    ${v.ownerDied}`,
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
        s.ticket === 0 ? '-' : String(s.ticket),
        s.colour ?? '-',
        String(s.sleepers),
        s.holder ? '← holder' : '',
      ]);
    }
    lines.push('', table(rows).replace(/^/gm, '  '));
  }
  if (v.dead > 0) lines.push('', '  dead owners: `bakery reap` frees their slots now');
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
        : `${l.holder.pid ?? '?'}${l.holder.alive === false ? ' (dead)' : ''}`;
    const state = [l.ownerDied, l.dead > 0 ? `${l.dead} dead` : ''].filter(Boolean).join(', ');
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
    .map((l) => formatLock(`process ${pid}, fd ${l.fd} → ${l.target} (${l.kind})`, l))
    .join('\n\n');
}

import type { DoneMessage } from './protocol.js';
import { type Section, type Summary, sections, summaryLines } from './stats.js';

const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (n: number) => (Math.round(n * 10) / 10).toString();

/** Rounds shown in the zoomed panel. */
const ZOOM_ROUNDS = 4;

function ticks(from: number, to: number, count: number): number[] {
  const span = to - from;
  if (!(span > 0)) return [from];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) out.push(t);
  return out;
}

function timeLabel(us: number, spanUs: number): string {
  if (spanUs >= 2e6) return `${(us / 1e6).toFixed(1)} s`;
  if (spanUs >= 2e3) return `${(us / 1e3).toFixed(spanUs >= 2e4 ? 0 : 1)} ms`;
  return `${Math.round(us)} µs`;
}

/**
 * An SVG timeline of a run. Top: a window of about four rounds from the middle of the run, one
 * row per participant ordered by who went first, one mark per critical section — FIFO
 * round-robin shows as a repeating staircase. Below: the whole run, one tick per critical
 * section. The summary is the caption.
 */
export function renderSvg(summary: Summary, reports: DoneMessage[]): string {
  const all = sections(reports);
  const n = summary.participants;
  const W = 1200;
  const left = 64;
  const right = 24;
  const plotW = W - left - right;
  const rowH = n <= 64 ? 8 : Math.max(2, Math.floor(512 / n));
  const runRowH = Math.max(1, Math.min(4, Math.floor(256 / n)));
  const out: string[] = [];
  let y = 0;

  // Zoom window: ZOOM_ROUNDS × n consecutive critical sections from the middle of the run.
  const len = Math.min(all.length, ZOOM_ROUNDS * n);
  const startIdx = Math.max(0, Math.floor(all.length / 2) - Math.floor(len / 2));
  const zoom: Section[] = all.slice(startIdx, startIdx + len);
  // Row order: order of first appearance in the zoom window, then everyone else by id.
  const order: number[] = [];
  const seen = new Set<number>();
  for (const s of zoom) {
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    order.push(s.id);
  }
  for (let id = 0; id < n; id++) if (!seen.has(id)) order.push(id);
  const rowOf = new Map(order.map((id, r) => [id, r]));
  const colour = (r: number) => `hsl(${Math.round((r * 300) / Math.max(1, n))},70%,42%)`;

  const title = `bakery: ${n} ${summary.kind} over @bakery/${summary.backend} take turns`;
  out.push(`<text x="${left}" y="28" class="title">${esc(title)}</text>`);
  y = 44;

  const panel = (
    label: string,
    secs: Section[],
    rowHeight: number,
    cls: string,
    mark: (x: number, w: number, top: number, h: number, r: number) => string,
    perRow: boolean,
  ) => {
    out.push(`<text x="${left}" y="${y + 12}" class="label">${esc(label)}</text>`);
    y += 20;
    const top = y;
    const height = rowHeight * n;
    const from = secs.length > 0 ? secs[0]!.enter : 0;
    const to = secs.length > 0 ? Math.max(...secs.map((s) => s.enter + s.hold)) : 1;
    const span = Math.max(to - from, 1e-3);
    const sx = (t: number) => left + ((t - from) / span) * plotW;
    out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${height}" class="plot"/>`);
    for (const t of ticks(from, to, 8)) {
      const x = f(sx(t));
      out.push(
        `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + height}" class="grid"/>`,
        `<text x="${x}" y="${top + height + 14}" class="axis" text-anchor="middle">${esc(timeLabel(t, span))}</text>`,
      );
    }
    const byRow: string[][] = order.map(() => []);
    for (const s of secs) {
      const r = rowOf.get(s.id)!;
      const w = Math.max((s.hold / span) * plotW, perRow ? 0.8 : 2);
      byRow[r]!.push(mark(sx(s.enter), w, top + r * rowHeight, rowHeight, r));
    }
    order.forEach((id, r) => {
      const ry = top + r * rowHeight;
      out.push(
        `<g class="${cls}" data-participant="${id}" fill="${colour(r)}">${byRow[r]!.join('')}</g>`,
      );
      if (rowHeight >= 8 && (r % 4 === 0 || n <= 16))
        out.push(
          `<text x="${left - 6}" y="${ry + rowHeight - 1}" class="row-label" text-anchor="end">#${id}</text>`,
        );
    });
    y = top + height + 28;
  };

  panel(
    zoom.length > 0
      ? `${ZOOM_ROUNDS} rounds from the middle of the run (${zoom.length} critical sections): one row per participant, ordered by first turn — FIFO round-robin is the repeating staircase`
      : 'no critical sections were recorded',
    zoom,
    rowH,
    'row',
    (x, w, top, h) =>
      `<rect x="${f(x)}" y="${f(top + 1)}" width="${f(w)}" height="${f(Math.max(1, h - 2))}"/>`,
    false,
  );
  // Whole run: one thin tick per critical section (a path per row keeps the file small).
  const runMarks = (x: number, _w: number, top: number, h: number) => `M${f(x)} ${f(top)}v${h}`;
  const runLabel = `the whole run (${all.length.toLocaleString('en-US')} critical sections), same rows: even density = even shares`;
  out.push(`<text x="${left}" y="${y + 12}" class="label">${esc(runLabel)}</text>`);
  y += 20;
  {
    const top = y;
    const height = runRowH * n;
    const from = 0;
    const to = Math.max(summary.durationMs * 1e3, 1);
    const sx = (t: number) => left + ((t - from) / (to - from)) * plotW;
    out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${height}" class="plot"/>`);
    for (const t of ticks(from, to, 10)) {
      const x = f(sx(t));
      out.push(
        `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + height}" class="grid"/>`,
        `<text x="${x}" y="${top + height + 14}" class="axis" text-anchor="middle">${esc(timeLabel(t, to))}</text>`,
      );
    }
    const paths: string[][] = order.map(() => []);
    for (const s of all) {
      const r = rowOf.get(s.id)!;
      paths[r]!.push(runMarks(sx(s.enter), 0, top + r * runRowH, runRowH));
    }
    order.forEach((id, r) => {
      out.push(
        `<path class="run-row" data-participant="${id}" stroke="${colour(r)}" d="${paths[r]!.join('') || `M${left} ${top}`}"/>`,
      );
    });
    y = top + height + 30;
  }

  const caption = summaryLines(summary);
  out.push(`<g class="caption">`);
  caption.forEach((line, k) => {
    out.push(
      `<text x="${left}" y="${y + k * 17}" xml:space="preserve"${line.includes('PROBLEM') || line.includes('FAILED') ? ' class="bad"' : ''}>${esc(line)}</text>`,
    );
  });
  out.push('</g>');
  y += caption.length * 17 + 10;

  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y}" viewBox="0 0 ${W} ${y}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    '<style>',
    '.title{font-size:17px;font-weight:bold;fill:#222}',
    '.label{font-size:12px;fill:#333}',
    '.axis,.row-label{font-size:10px;fill:#666}',
    '.plot{fill:#fafafa;stroke:#ccc}',
    '.grid{stroke:#e4e4e4}',
    '.run-row{stroke-width:0.6;fill:none}',
    '.caption text{font-family:DejaVu Sans Mono, Menlo, Consolas, monospace;font-size:12.5px;fill:#222}',
    '.caption text.bad{fill:#b00020}',
    '</style>',
    `<rect width="${W}" height="${y}" fill="#fff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}

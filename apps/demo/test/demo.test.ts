import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import type { Summary } from '../src/index.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'bakery-demo-test-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Run {
  code: number | null;
  pid: number;
  stdout: string;
  stderr: string;
}

function demo(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, pid: child.pid!, stdout, stderr }));
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * A minimal XML well-formedness check (no dependency): one root element, every tag closed in
 * order, attribute values quoted, only the five predefined or numeric entities, no stray '<'.
 */
function checkWellFormed(xml: string): void {
  const body = xml.replace(/^<\?xml[^?]*\?>\s*/, '');
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  const text = (s: string) => {
    if (/&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(s))
      throw new Error(`bad entity near "${s.slice(0, 40)}"`);
    if (s.includes('>') && stack.length === 0 && s.trim() !== '')
      throw new Error('text outside the root');
  };
  while (i < body.length) {
    const lt = body.indexOf('<', i);
    if (lt < 0) {
      if (body.slice(i).trim() !== '') throw new Error('text after the root');
      break;
    }
    text(body.slice(i, lt));
    const gt = body.indexOf('>', lt);
    if (gt < 0) throw new Error('unterminated tag');
    const tag = body.slice(lt + 1, gt);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else {
      const selfClosing = tag.endsWith('/');
      const m = /^([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_][\w:.-]*="[^"<]*")*)\s*\/?$/.exec(tag);
      if (m === null) throw new Error(`malformed tag <${tag.slice(0, 60)}>`);
      for (const a of m[2]!.matchAll(/="([^"]*)"/g)) text(a[1]!);
      if (stack.length === 0) roots++;
      if (!selfClosing) stack.push(m[1]!);
    }
    i = gt + 1;
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join('> <')}>`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
}

describe('bakery-demo', () => {
  for (const backend of ['mmap', 'shm', 'sab'] as const) {
    test(`64 ${backend === 'sab' ? 'threads' : 'processes'} over ${backend} take turns: exact count, no violations, tickets ≤ 64, a readable SVG`, async () => {
      const svg = join(tmp, `${backend}.svg`);
      const run = await demo([
        '--backend',
        backend,
        '--procs',
        '64',
        '--seconds',
        '2',
        '--quiet',
        '--json',
        '--svg',
        svg,
      ]);
      expect(run.code, run.stderr).toBe(0);
      const s = JSON.parse(run.stdout) as Summary;
      expect(s.ok, s.problems.join('; ')).toBe(true);
      expect(s.participants).toBe(64);
      expect(s.acquisitions).toBeGreaterThan(0);
      expect(s.counter).toBe(s.acquisitions);
      expect(s.violations).toEqual({ occupancy: 0, overlaps: 0 });
      expect(s.maxTicket).toBeGreaterThan(0);
      expect(s.maxTicket).toBeLessThanOrEqual(64);
      expect(s.casualties).toEqual([]);
      const xml = fs.readFileSync(svg, 'utf8');
      checkWellFormed(xml);
      expect(xml.match(/<g class="row" /g)).toHaveLength(64);
      expect(xml).toContain('result       OK');
      for (const pid of s.pids) if (pid !== run.pid) expect(alive(pid)).toBe(false);
      if (backend === 'shm')
        expect(fs.existsSync(`/dev/shm/bakery.bakery-demo-${run.pid}`)).toBe(false);
    });
  }

  for (const backend of ['mmap', 'shm'] as const) {
    test(`a participant that dies holding the lock (${backend}) fails the run with a report and leaves no process behind`, async () => {
      const run = await demo([
        '--backend',
        backend,
        '--procs',
        '4',
        '--seconds',
        '2',
        '--quiet',
        '--json',
        '--crash-one',
      ]);
      expect(run.code).toBe(1);
      const s = JSON.parse(run.stdout) as Summary;
      expect(s.ok).toBe(false);
      expect(s.stoppedBy).toBe('crash');
      expect(s.casualties.find((c) => !c.forced)).toMatchObject({ id: 2, signal: 'SIGKILL' });
      expect(s.problems.join('\n')).toMatch(/held by participant 2/);
      expect(s.pids).toHaveLength(4);
      for (const pid of s.pids) expect(alive(pid), `pid ${pid}`).toBe(false);
      if (backend === 'shm')
        expect(fs.existsSync(`/dev/shm/bakery.bakery-demo-${run.pid}`)).toBe(false);
    });
  }

  test('the well-formedness check rejects broken XML', () => {
    expect(() => checkWellFormed('<svg><g></svg>')).toThrow();
    expect(() => checkWellFormed('<svg a="1 & 2"/>')).toThrow();
    expect(() => checkWellFormed('<svg/><svg/>')).toThrow();
    expect(() =>
      checkWellFormed('<?xml version="1.0"?>\n<svg x="1"><text>a &amp; b</text></svg>'),
    ).not.toThrow();
  });
});

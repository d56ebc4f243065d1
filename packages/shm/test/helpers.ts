import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** A fresh private directory for lock files: on /dev/shm (tmpfs) when there is one. */
export function freshDir(): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return fs.mkdtempSync(path.join(base, 'bakery-shm-test-'));
}

/** The `code` of what `fn` throws (`'no error'` when it returns; uncoded errors say so). */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code ?? `uncoded ${(err as Error).name}`;
  }
  return 'no error';
}

/** The message of what `fn` throws (`'no error'` when it returns). */
export function messageOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
}

/** The package's built entry, as participants import it. */
export const distEntry = new URL('../dist/index.js', import.meta.url).href;

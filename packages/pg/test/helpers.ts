import { inject, test } from 'vitest';

/** The built package, as the participants load it. */
export const distEntry = new URL('../dist/index.js', import.meta.url).href;

/** The throwaway server of this run (see global-setup.ts), or null with the reason printed. */
export const server = inject('pg');

/** `test`, or a skip whose name says why (no server binaries on this machine). */
export const pgTest: typeof test = (
  server === null
    ? (name: string, ...rest: unknown[]) =>
        // biome-ignore lint/suspicious/noExplicitAny: forwarding vitest's overloads
        (test.skip as any)(`${name} — SKIPPED: ${inject('pgSkip')}`, ...rest)
    : test
) as typeof test;

let serial = 0;
/** A lock name no other test uses. */
export function uniqueName(what: string): string {
  return `${what}-${process.pid}-${++serial}-${Math.random().toString(36).slice(2, 8)}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  const promise = typeof p === 'function' ? Promise.resolve().then(p) : p;
  return promise.then(
    () => undefined,
    (err) => (err as { code?: string }).code ?? `uncoded ${(err as Error).message}`,
  );
}

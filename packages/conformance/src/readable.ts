import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** A world-readable copy of built workspace packages, from {@link readableCopy}. */
export interface ReadableCopy {
  /** The copy's root; packages are under `<root>/node_modules`. */
  readonly root: string;
  /** The absolute path of `file` inside package `@bakery/<pkg>` of the copy. */
  path(pkg: string, file: string): string;
  /** Remove the copy. */
  dispose(): void;
}

/**
 * Copy built workspace packages where another uid can load them: tests that run a participant
 * as a second real user (setpriv/runuser as root) cannot rely on the checkout being readable
 * to it — a CI clone may sit in a 0700 temp directory. Copies `package.json`, `dist`,
 * `prebuilds` and `build/Release` of each `@bakery/<pkg>` in `packages`, plus the named
 * third-party modules from the repository's node_modules, into a fresh 0755 directory under
 * /tmp, readable by everyone.
 *
 * @param repo The repository root (the directory holding `packages/` and `node_modules/`).
 */
export function readableCopy(
  repo: string,
  packages: readonly string[],
  modules: readonly string[] = ['node-gyp-build'],
): ReadableCopy {
  const root = fs.mkdtempSync('/tmp/bakery-readable-');
  fs.chmodSync(root, 0o755);
  const copy = (from: string, to: string) => {
    if (fs.existsSync(from)) fs.cpSync(from, to, { recursive: true, dereference: true });
  };
  for (const pkg of packages) {
    const to = path.join(root, 'node_modules', '@bakery', pkg);
    for (const part of ['package.json', 'dist', 'prebuilds', 'build/Release'])
      copy(path.join(repo, 'packages', pkg, part), path.join(to, part));
  }
  for (const m of modules)
    copy(path.join(repo, 'node_modules', m), path.join(root, 'node_modules', m));
  spawnSync('chmod', ['-R', 'a+rX', root]);
  return {
    root,
    path: (pkg, file) => path.join(root, 'node_modules', '@bakery', pkg, file),
    dispose: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

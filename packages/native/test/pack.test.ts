// What `npm pack` of @bakery/native ships: both Linux prebuilds, each built for its architecture.
// The arm64 one needs the aarch64 cross compiler at build time (scripts/prebuild.mjs); without it
// its case is skipped with the reason printed — except under BAKERY_REQUIRE_ARM64=1 (CI), where
// a missing arm64 prebuild fails.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { EM, elfMachine } from '../scripts/elf.mjs';

const packageRoot = fileURLToPath(new URL('..', import.meta.url));
const X64 = 'prebuilds/linux-x64/@bakery+native.node';
const ARM64 = 'prebuilds/linux-arm64/@bakery+native.node';

const required = process.env.BAKERY_REQUIRE_ARM64 === '1';
const arm64Missing = !existsSync(join(packageRoot, ARM64));
if (arm64Missing && !required) {
  console.warn(
    `SKIPPED the linux-arm64 pack case: ${ARM64} was not built (no aarch64 cross compiler when the package was built; see scripts/prebuild.mjs). BAKERY_REQUIRE_ARM64=1 makes this a failure.`,
  );
}

function packedFiles(): string[] {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json'], {
    cwd: packageRoot,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [pack] = JSON.parse(out) as [{ name: string; files: { path: string }[] }];
  expect(pack.name).toBe('@bakery/native');
  return pack.files.map((f) => f.path);
}

describe('npm pack', () => {
  let files: string[] = [];
  beforeAll(() => {
    files = packedFiles();
  });

  test('ships the linux-x64 prebuild, an x86-64 ELF', () => {
    expect(files).toContain(X64);
    expect(elfMachine(join(packageRoot, X64))).toEqual({ bits: 64, machine: EM.X86_64 });
  });

  test.skipIf(arm64Missing && !required)('ships the linux-arm64 prebuild, an aarch64 ELF', () => {
    expect(files, `${ARM64} is not in the tarball (BAKERY_REQUIRE_ARM64=1)`).toContain(ARM64);
    expect(elfMachine(join(packageRoot, ARM64))).toEqual({ bits: 64, machine: EM.AARCH64 });
  });

  test('ships no other binary and no local build', () => {
    for (const f of files.filter((f) => f.endsWith('.node'))) expect([X64, ARM64]).toContain(f);
    expect(files.filter((f) => f.startsWith('build/'))).toEqual([]);
  });
});

// The machine an ELF file is built for, read from its header (e_machine at byte 18), so the build
// and the tests can tell an aarch64 binary from an x86-64 one without `file`.
import { closeSync, openSync, readSync } from 'node:fs';

/** e_machine values of the architectures we ship. */
export const EM = { X86_64: 62, AARCH64: 183 };

/** The e_machine that a Node `process.arch` runs. */
export const EM_OF_ARCH = { x64: EM.X86_64, arm64: EM.AARCH64 };

/**
 * `{ bits, machine }` of a little-endian ELF file, or `null` when `file` is not one (too short,
 * no ELF magic, big-endian).
 */
export function elfMachine(file) {
  const header = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  let n;
  try {
    n = readSync(fd, header, 0, header.length, 0);
  } finally {
    closeSync(fd);
  }
  if (n < header.length || header.readUInt32BE(0) !== 0x7f454c46 || header[5] !== 1) return null;
  return { bits: header[4] === 2 ? 64 : 32, machine: header.readUInt16LE(18) };
}

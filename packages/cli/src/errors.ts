import { isBakeryError } from '@bakery/core';

/** Exit codes of the `bakery` command. Stable: scripts may test them. */
export const EXIT = {
  /** Success. */
  OK: 0,
  /** An unexpected failure, or an OS call failed (`BAKERY_IO`). */
  FAILURE: 1,
  /** Bad command line: unknown command or option, missing or malformed argument, bad lock name. */
  USAGE: 2,
  /** No such lock, or no bakery lock in that process. */
  NOT_FOUND: 3,
  /** The file or memory is not a bakery lock of a layout this version understands. */
  BAD_LOCK: 4,
  /** Permission denied: the lock or the process belongs to another user. */
  PERMISSION: 5,
  /**
   * `bakery mark-consistent` found no free slot within `--timeout` ms: every slot stayed held by
   * a live participant (`BAKERY_NO_FREE_SLOT`). `bakery reap` needs no slot.
   */
  BUSY: 6,
  /**
   * `bakery mark-consistent` did not get the lock within `--timeout` ms, or a pure-JS lock's
   * registry lock stayed held by a live process for 30 s (`BAKERY_TIMEOUT`).
   */
  TIMEOUT: 7,
  /** `bakery rm` refused: the lock has live participants (`BAKERY_IN_USE`; `--force` overrides). */
  IN_USE: 8,
} as const;

/** Codes of the errors the CLI raises itself (library errors keep their own `BAKERY_*` code). */
export type CliErrorCode =
  | 'BAKERY_USAGE'
  | 'BAKERY_NOT_FOUND'
  | 'BAKERY_PERMISSION'
  /** `bakery rm` refused to remove a lock that live processes take part in. */
  | 'BAKERY_IN_USE';

/** An error of the `bakery` command, with a stable `code` and the exit code it maps to. */
export class CliError extends Error {
  /** The stable code; compare against this, never against the message. */
  readonly code: CliErrorCode;

  constructor(code: CliErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  override get name(): string {
    return 'CliError';
  }
}

/** The exit code for an error thrown by a command (see {@link EXIT}). */
export function exitCodeFor(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'BAKERY_USAGE':
    case 'BAKERY_BAD_NAME':
    case 'BAKERY_INVALID_ARGUMENT':
      return EXIT.USAGE;
    case 'BAKERY_NOT_FOUND':
      return EXIT.NOT_FOUND;
    case 'BAKERY_BAD_LAYOUT':
    case 'BAKERY_BAD_HANDLE':
      return EXIT.BAD_LOCK;
    case 'BAKERY_PERMISSION':
    case 'BAKERY_FOREIGN_OWNER':
      return EXIT.PERMISSION;
    case 'BAKERY_NO_FREE_SLOT':
      return EXIT.BUSY;
    case 'BAKERY_TIMEOUT':
      return EXIT.TIMEOUT;
    case 'BAKERY_IN_USE':
      return EXIT.IN_USE;
    default:
      return EXIT.FAILURE;
  }
}

/** The error's stable code: its own `BAKERY_*` code, else `BAKERY_INTERNAL`. */
export function codeOf(err: unknown): string {
  if (err instanceof CliError || isBakeryError(err)) return (err as { code: string }).code;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'BAKERY_INVALID_ARGUMENT') return code;
  return 'BAKERY_INTERNAL';
}

import type { Lease } from './api.js';
import { BakeryError } from './errors.js';

/** What a lease asks of the Mutex that granted it. */
export interface LeaseHost {
  /** Store OWNER_DIED = 0 (the holder marked the data consistent). */
  clearOwnerDied(): void;
  /** The exit: called exactly once, by {@link LeaseImpl.release}. */
  releaseLease(lease: LeaseImpl): void;
}

/** The one {@link Lease} implementation: released at most once, then inert. */
export class LeaseImpl implements Lease {
  #host: LeaseHost | null;
  #consistent = false;
  readonly ownerDied: boolean;

  constructor(host: LeaseHost, ownerDied: boolean) {
    this.#host = host;
    this.ownerDied = ownerDied;
  }

  get active(): boolean {
    return this.#host !== null;
  }

  get consistent(): boolean {
    return this.#consistent;
  }

  // Bound (arrow fields), so that `const { release } = lease` and `setTimeout(lease.release)`
  // work as they do with other lock libraries.
  readonly markConsistent = (): void => {
    if (this.#host === null)
      throw new BakeryError('BAKERY_NOT_HELD', 'markConsistent() on a released lease');
    if (!this.ownerDied) return;
    this.#consistent = true;
    this.#host.clearOwnerDied();
  };

  readonly release = (): void => {
    const h = this.#host;
    if (h === null) throw new BakeryError('BAKERY_NOT_HELD', 'lease already released');
    this.#host = null;
    h.releaseLease(this);
  };

  [Symbol.dispose](): void {
    if (this.#host !== null) this.release();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#host !== null) this.release();
  }
}

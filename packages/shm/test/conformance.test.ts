import { suite } from '@bakery/conformance';
import { describe, test } from 'vitest';
import { shmFactory } from './factory.js';

// The mapped path: the lock file mapped MAP_SHARED through @bakery/native (futex waits, leases).
suite({ test, describe, factory: shmFactory('mapped') });

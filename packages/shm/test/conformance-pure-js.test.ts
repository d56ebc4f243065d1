import { suite } from '@bakery/conformance';
import { describe, test } from 'vitest';
import { shmFactory } from './factory.js';

// The pure-JS path: one pread/pwrite per cell, slot claims under the registry lock, polling.
suite({ test, describe, factory: shmFactory('pure-js') });

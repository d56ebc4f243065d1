// The binding's tests under vitest, on the binding built for this machine (from src/). The cases
// live in native-cases.mjs (plain JavaScript) so that test/arm64/ runs the same ones under a real
// arm64 Node in qemu, where vitest cannot run.
import { BakeryError } from '@bakery/core';
import { afterEach, describe, test } from 'vitest';
import { loadNative, SEAL } from '../src/native.js';
import { nativeCases } from './native-cases.mjs';

nativeCases({ test, describe, afterEach, native: loadNative(), SEAL, BakeryError });

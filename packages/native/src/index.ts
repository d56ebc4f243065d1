export { Leases, leaseVerdict, MappedCells, type MappedOpen, openMapped } from './mapped.js';
export {
  type Cells32,
  type ErrorClass,
  loadNative,
  type Native,
  probeNative,
  SEAL,
  type WaitResult,
} from './native.js';

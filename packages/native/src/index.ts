export { Leases, leaseVerdict, MappedCells, type MappedOpen, openMapped } from './mapped.js';
export {
  type Cells32,
  loadNative,
  type Native,
  probeNative,
  SEAL,
  type WaitResult,
} from './native.js';

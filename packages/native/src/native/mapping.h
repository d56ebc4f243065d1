// Process-wide registry of the shared mappings handed to JS by map().
//
// Why a registry: a thread blocked in FUTEX_WAIT must never outlive the mapping that holds its
// futex word. If the ArrayBuffer is collected (or its env torn down) while a waitAsync thread
// sleeps, a munmap would leave that thread unwakeable (FUTEX_WAKE on an unmapped address fails
// with EFAULT) and the teardown join would hang. So every wait holds a reference on the mapping
// and the munmap happens when the last of {the ArrayBuffer, pending waits} lets go. It also lets
// wait/wake refuse memory that is not a bakery mapping.
#pragma once

#include <cstddef>

namespace bakery {

struct Mapping;

// Records a fresh mapping with one reference (owned by the ArrayBuffer's finalizer).
Mapping* RegisterMapping(void* base, size_t length);
// The mapping that contains [p, p + n) with one more reference, or nullptr.
Mapping* AcquireMapping(const void* p, size_t n);
// Drops one reference; the last one unmaps.
void ReleaseMapping(Mapping* mapping);

}  // namespace bakery

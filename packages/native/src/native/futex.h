// Blocking on a 32-bit word of a MAP_SHARED mapping, visible to every process mapping it.
//
// Never FUTEX_PRIVATE_FLAG: a private futex is keyed by (mm, address) and only wakes threads of
// this process; the shared key (inode, page offset) is what lets another process — or a second
// mapping of the same memfd in this process — wake us.
#pragma once

#include <atomic>
#include <cstdint>
#include <ctime>

namespace bakery {

enum class WaitResult { kOk, kNotEqual, kTimedOut, kError };

// An absolute CLOCK_MONOTONIC deadline `ms` from now.
timespec DeadlineAfter(double ms);

// Sleeps while *addr == expected, until woken or `deadline` (nullptr = forever). EINTR retries
// against the same absolute deadline, so a signal storm cannot extend the wait. `cancel`, when
// given, is checked before each sleep (a canceller sets it and then wakes the address).
// On kError, *err holds the errno.
WaitResult FutexWait(int32_t* addr, int32_t expected, const timespec* deadline,
                     const std::atomic<bool>* cancel, int* err);

// Wakes up to `count` waiters; returns how many woke, or -errno.
int FutexWake(int32_t* addr, int32_t count);

}  // namespace bakery

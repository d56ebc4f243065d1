#include "futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

namespace bakery {

timespec DeadlineAfter(double ms) {
  timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  const double whole_s = std::floor(ms / 1000);
  int64_t sec = now.tv_sec + static_cast<int64_t>(whole_s);
  int64_t nsec = now.tv_nsec + static_cast<int64_t>((ms - whole_s * 1000) * 1e6);
  while (nsec >= 1000000000) {
    nsec -= 1000000000;
    ++sec;
  }
  timespec deadline;
  deadline.tv_sec = static_cast<time_t>(sec);
  deadline.tv_nsec = static_cast<long>(nsec);
  return deadline;
}

WaitResult FutexWait(int32_t* addr, int32_t expected, const timespec* deadline,
                     const std::atomic<bool>* cancel, int* err) {
  for (;;) {
    if (cancel != nullptr && cancel->load()) return WaitResult::kOk;
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline (plain FUTEX_WAIT a relative
    // one). FUTEX_WAKE matches the all-ones bitset, so plain wakers from any language work.
    long r = syscall(SYS_futex, addr, FUTEX_WAIT_BITSET, expected, deadline, nullptr,
                     FUTEX_BITSET_MATCH_ANY);
    if (r == 0) return WaitResult::kOk;
    switch (errno) {
      case EINTR:
        continue;
      case EAGAIN:
        return WaitResult::kNotEqual;
      case ETIMEDOUT:
        return WaitResult::kTimedOut;
      default:
        *err = errno;
        return WaitResult::kError;
    }
  }
}

int FutexWake(int32_t* addr, int32_t count) {
  long r = syscall(SYS_futex, addr, FUTEX_WAKE, count, nullptr, nullptr, 0);
  return r < 0 ? -errno : static_cast<int>(r);
}

}  // namespace bakery

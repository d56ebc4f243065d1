// waitAsync: futex waits that block neither the event loop nor a libuv threadpool thread.
//
// A futex wait occupies one thread per waiting address, so each pending wait gets a dedicated
// native thread of its own (never a libuv pool thread: 4 pending waits would starve fs, dns and
// zlib). Threads are created on demand, reused, and at most kMaxIdle idle ones are kept.
// Results come back to the JS thread through one threadsafe function per env, which is ref'd
// only while some promise is pending, so pending waits keep the process alive and idle threads
// do not.
//
// Teardown (worker exit, process exit with cleanup): the env cleanup hook cancels every pending
// wait (flag + FUTEX_WAKE on its address, repeated until the thread has left the futex, since a
// wake can land just before the thread sleeps), then joins every thread. No thread outlives the
// env, and no thread ever calls into an env that is gone.
#pragma once

#include <napi.h>
#include <pthread.h>

#include <condition_variable>
#include <cstdint>
#include <ctime>
#include <mutex>
#include <set>
#include <vector>

#include "futex.h"
#include "mapping.h"

namespace bakery {

class AsyncWaiter {
 public:
  // Creates the waiter of `env` and registers its cleanup hook. nullptr (with a pending JS
  // exception) on failure.
  static AsyncWaiter* Create(Napi::Env env);

  // Starts waiting on `addr` (inside `mapping`, whose reference the wait now owns). Returns the
  // promise, or an empty value with a pending exception.
  Napi::Value Start(Napi::Env env, Mapping* mapping, int32_t* addr, int32_t expected,
                    const timespec* deadline);

  // Ends every wait of this env that is still sleeping: each promise resolves 'ok' (a spurious
  // wake-up, as the Cells contract allows). Returns how many were cancelled.
  size_t CancelAll();

 private:
  struct Job;
  struct Worker;
  static constexpr size_t kMaxIdle = 4;

  AsyncWaiter() = default;
  static void* ThreadMain(void* arg);
  static void Deliver(napi_env env, napi_value js_callback, void* context, void* data);
  static void CleanupHook(void* arg);

  void Run(Worker* worker);
  size_t CancelLocked(std::unique_lock<std::mutex>& lock);
  void JoinRetired();
  void Shutdown();

  napi_threadsafe_function tsfn_ = nullptr;
  size_t pending_ = 0;  // JS thread only: promises not yet settled.

  std::mutex mu_;  // guards everything below
  std::condition_variable left_futex_;
  std::vector<Worker*> workers_;  // threads in the loop (busy or idle)
  std::vector<Worker*> idle_;
  std::vector<Worker*> retired_;  // threads that left the loop and still need a join
  std::set<Job*> sleeping_;       // assigned jobs that have not left FutexWait yet
  bool shutting_down_ = false;
};

}  // namespace bakery

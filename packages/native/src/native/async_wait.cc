#include "async_wait.h"

#include <signal.h>

#include <atomic>
#include <cerrno>
#include <chrono>

#include "errors.h"

namespace bakery {

struct AsyncWaiter::Job {
  Mapping* mapping;
  int32_t* addr;
  int32_t expected;
  bool has_deadline;
  timespec deadline;
  napi_deferred deferred;
  std::atomic<bool> cancel{false};
  WaitResult result = WaitResult::kOk;
  int err = 0;
};

struct AsyncWaiter::Worker {
  AsyncWaiter* owner;
  pthread_t thread;
  Job* job = nullptr;  // guarded by owner->mu_
  bool quit = false;   // guarded by owner->mu_
  std::condition_variable wake;
};

static const char* ResultName(WaitResult r) {
  switch (r) {
    case WaitResult::kNotEqual:
      return "not-equal";
    case WaitResult::kTimedOut:
      return "timed-out";
    default:
      return "ok";
  }
}

AsyncWaiter* AsyncWaiter::Create(Napi::Env env) {
  auto* self = new AsyncWaiter();
  napi_value name = Napi::String::New(env, "bakery.waitAsync");
  napi_status status = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, nullptr,
                                                       nullptr, self, Deliver, &self->tsfn_);
  if (status != napi_ok) {
    delete self;
    Throw(env, kIo, "cannot create the waitAsync dispatcher");
    return nullptr;
  }
  // Only a pending promise keeps the loop alive (see Start/Deliver).
  napi_unref_threadsafe_function(env, self->tsfn_);
  // Registered after the threadsafe function, so this hook runs before Node's own teardown of
  // it (hooks run in reverse order): every thread is joined while the function still exists.
  napi_add_env_cleanup_hook(env, CleanupHook, self);
  return self;
}

Napi::Value AsyncWaiter::Start(Napi::Env env, Mapping* mapping, int32_t* addr, int32_t expected,
                               const timespec* deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  Worker* worker;
  if (!idle_.empty()) {
    worker = idle_.back();
    idle_.pop_back();
  } else {
    worker = new Worker();
    worker->owner = this;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    // The loop needs a few KiB (a futex call and a queue push); don't reserve 8 MiB for it.
    pthread_attr_setstacksize(&attr, 256 * 1024);
    // Block every signal in the new thread (it inherits this mask) so process signals keep
    // going to Node's threads rather than interrupting our futex waits.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&worker->thread, &attr, ThreadMain, worker);
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
      delete worker;
      lock.unlock();
      ReleaseMapping(mapping);
      return Throw(env, kIo, "cannot start a waitAsync thread", "pthread_create", rc);
    }
    workers_.push_back(worker);
  }

  napi_value promise;
  napi_deferred deferred;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) {
    idle_.push_back(worker);
    lock.unlock();
    ReleaseMapping(mapping);
    return Throw(env, kIo, "cannot create a promise");
  }
  auto* job = new Job();
  job->mapping = mapping;
  job->addr = addr;
  job->expected = expected;
  job->has_deadline = deadline != nullptr;
  if (deadline != nullptr) job->deadline = *deadline;
  job->deferred = deferred;
  worker->job = job;
  sleeping_.insert(job);
  lock.unlock();
  worker->wake.notify_one();

  if (pending_++ == 0) napi_ref_threadsafe_function(env, tsfn_);
  return Napi::Value(env, promise);
}

void* AsyncWaiter::ThreadMain(void* arg) {
  auto* worker = static_cast<Worker*>(arg);
  worker->owner->Run(worker);
  return nullptr;
}

void AsyncWaiter::Run(Worker* worker) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    worker->wake.wait(lock, [worker] { return worker->job != nullptr || worker->quit; });
    Job* job = worker->job;
    if (job == nullptr) return;  // quit, and nothing left to do
    lock.unlock();

    job->result = FutexWait(job->addr, job->expected, job->has_deadline ? &job->deadline : nullptr,
                            &job->cancel, &job->err);

    lock.lock();
    // Leave `sleeping_` before the mapping reference is dropped: a canceller wakes the address
    // of every sleeping job and needs it to be still mapped.
    sleeping_.erase(job);
    left_futex_.notify_all();
    worker->job = nullptr;
    const bool retire = !worker->quit && idle_.size() >= kMaxIdle;
    if (retire) {
      for (auto it = workers_.begin(); it != workers_.end(); ++it) {
        if (*it == worker) {
          workers_.erase(it);
          break;
        }
      }
      retired_.push_back(worker);
    } else {
      idle_.push_back(worker);
    }
    lock.unlock();

    ReleaseMapping(job->mapping);
    job->mapping = nullptr;
    // Fails only once the env is closing; its promise can never settle then anyway.
    if (napi_call_threadsafe_function(tsfn_, job, napi_tsfn_nonblocking) != napi_ok) delete job;
    if (retire) return;  // joined later on the JS thread
    lock.lock();
  }
}

void AsyncWaiter::Deliver(napi_env env, napi_value /*js_callback*/, void* context, void* data) {
  auto* job = static_cast<Job*>(data);
  // env is null when Node drains the queue at teardown; `context` may be gone by then.
  if (env == nullptr) {
    delete job;
    return;
  }
  auto* self = static_cast<AsyncWaiter*>(context);
  if (!self->shutting_down_) {
    Napi::Env e(env);
    Napi::HandleScope scope(e);
    if (job->result == WaitResult::kError) {
      napi_reject_deferred(env, job->deferred,
                           CodedError(e, kIo, "futex wait failed", "futex", job->err).Value());
    } else {
      napi_resolve_deferred(env, job->deferred, Napi::String::New(e, ResultName(job->result)));
    }
  }
  delete job;
  self->JoinRetired();
  if (--self->pending_ == 0) napi_unref_threadsafe_function(env, self->tsfn_);
}

void AsyncWaiter::JoinRetired() {
  std::vector<Worker*> retired;
  {
    std::lock_guard<std::mutex> lock(mu_);
    retired.swap(retired_);
  }
  // A retired thread has at most its final queue push left to do: these joins are short.
  for (Worker* worker : retired) {
    pthread_join(worker->thread, nullptr);
    delete worker;
  }
}

size_t AsyncWaiter::CancelLocked(std::unique_lock<std::mutex>& lock) {
  size_t cancelled = 0;
  for (Job* job : sleeping_) {
    if (!job->cancel.exchange(true)) ++cancelled;
  }
  // A wake that lands between a thread's cancel check and its futex call is lost, so repeat
  // until every job has left the futex. Other waiters on the same word (other processes) may
  // see a spurious wake-up; the contract allows it and they re-check.
  while (!sleeping_.empty()) {
    for (Job* job : sleeping_) FutexWake(job->addr, INT32_MAX);
    left_futex_.wait_for(lock, std::chrono::milliseconds(1));
  }
  return cancelled;
}

size_t AsyncWaiter::CancelAll() {
  std::unique_lock<std::mutex> lock(mu_);
  return CancelLocked(lock);
}

void AsyncWaiter::Shutdown() {
  std::vector<Worker*> join;
  {
    std::unique_lock<std::mutex> lock(mu_);
    shutting_down_ = true;
    CancelLocked(lock);
    // With quit set, no worker retires itself any more: each one is in exactly one of the lists.
    for (Worker* worker : workers_) {
      worker->quit = true;
      worker->wake.notify_one();
    }
    join = workers_;
    join.insert(join.end(), retired_.begin(), retired_.end());
    workers_.clear();
    retired_.clear();
    idle_.clear();
  }
  for (Worker* worker : join) {
    pthread_join(worker->thread, nullptr);
    delete worker;
  }
}

void AsyncWaiter::CleanupHook(void* arg) { static_cast<AsyncWaiter*>(arg)->Shutdown(); }

}  // namespace bakery

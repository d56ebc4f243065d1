// The addon's per-env state (its N-API instance data): one per main thread and worker.
#pragma once

#include <napi.h>

namespace bakery {

class AsyncWaiter;

struct Instance {
  // The waitAsync dispatcher of this env (see async_wait.h).
  AsyncWaiter* waiter = nullptr;
  // The class every coded error is built with (@bakery/core's BakeryError, handed over by
  // setErrorClass() right after loading); null until then, and errors are plain Errors.
  napi_ref error_class = nullptr;
};

// This env's state; nullptr while Init has not set it yet.
inline Instance* GetInstance(Napi::Env env) { return env.GetInstanceData<Instance>(); }

}  // namespace bakery

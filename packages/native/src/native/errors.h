// Coded errors and uniform argument checks shared by every export.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace bakery {

// Codes shared with @bakery/core's BakeryError (see packages/core/src/errors.ts).
constexpr const char* kBadHandle = "BAKERY_BAD_HANDLE";
constexpr const char* kIo = "BAKERY_IO";
constexpr const char* kInvalidArgument = "BAKERY_INVALID_ARGUMENT";
constexpr const char* kNativeUnavailable = "BAKERY_NATIVE_UNAVAILABLE";

// "EMFILE" for EMFILE; "errno 1234" for numbers the C library has no name for.
std::string ErrnoName(int err);

// Builds (does not throw) a coded error: `new ErrorClass(code, message, { cause })` with the class
// handed over by setErrorClass() (@bakery/core's BakeryError), or, when none was set or its
// constructor threw, a plain Error with `code` (and `cause`) set on it. For an errno failure pass
// `syscall` and `err`: the message becomes "<message>: ENAME" and `cause` is an Error shaped like
// Node's own system errors ({ code: 'ENAME', errno: -err, syscall }).
Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message,
                       const char* syscall = nullptr, int err = 0);

// setErrorClass(ctor) → undefined. Stores `ctor` (a constructor taking (code, message, options))
// as this env's error class; null/undefined goes back to plain Errors.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info);

// Each Throw* schedules a JS exception and returns undefined for the binding to return.
Napi::Value Throw(Napi::Env env, const char* code, const std::string& message,
                  const char* syscall = nullptr, int err = 0);
Napi::Value ThrowTypeError(Napi::Env env, const std::string& message);
Napi::Value ThrowRangeError(Napi::Env env, const std::string& message);

// Argument readers: on a bad argument they schedule a TypeError/RangeError (code
// BAKERY_INVALID_ARGUMENT) and return false; the caller then returns undefined.
bool ArgInteger(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min,
                int64_t max, int64_t* out);
bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* out);
// Any number, converted like Atomics.wait's `value` (ToInt32: 0xffffffff → -1).
bool ArgInt32Value(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t* out);
// Milliseconds, fractions allowed; Infinity → *infinite = true; negative → 0; NaN rejected.
bool ArgTimeout(const Napi::CallbackInfo& info, size_t i, double* ms, bool* infinite);
// A count of waiters to wake: non-negative integer or Infinity (→ INT32_MAX).
bool ArgCount(const Napi::CallbackInfo& info, size_t i, int32_t* out);
bool ArgBoolean(const Napi::CallbackInfo& info, size_t i, const char* name, bool* out);

}  // namespace bakery

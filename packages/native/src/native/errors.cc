#include "errors.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>

#include "instance.h"

namespace bakery {

std::string ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return name;
#else
  switch (err) {
#define BAKERY_ERRNO_CASE(e) \
  case e:                    \
    return #e;
    BAKERY_ERRNO_CASE(EPERM) BAKERY_ERRNO_CASE(ENOENT) BAKERY_ERRNO_CASE(EINTR)
    BAKERY_ERRNO_CASE(EIO) BAKERY_ERRNO_CASE(EBADF) BAKERY_ERRNO_CASE(EAGAIN)
    BAKERY_ERRNO_CASE(ENOMEM) BAKERY_ERRNO_CASE(EACCES) BAKERY_ERRNO_CASE(EFAULT)
    BAKERY_ERRNO_CASE(EBUSY) BAKERY_ERRNO_CASE(EEXIST) BAKERY_ERRNO_CASE(ENODEV)
    BAKERY_ERRNO_CASE(EINVAL) BAKERY_ERRNO_CASE(ENFILE) BAKERY_ERRNO_CASE(EMFILE)
    BAKERY_ERRNO_CASE(EFBIG) BAKERY_ERRNO_CASE(ENOSPC) BAKERY_ERRNO_CASE(ENOSYS)
    BAKERY_ERRNO_CASE(ETIMEDOUT) BAKERY_ERRNO_CASE(EOVERFLOW)
#undef BAKERY_ERRNO_CASE
    default:
      break;
  }
#endif
  return "errno " + std::to_string(err);
}

// The system-error cause of an errno failure, shaped like Node's own ({ code, errno, syscall }).
static Napi::Error SystemError(Napi::Env env, const char* syscall, int err) {
  std::string name = ErrnoName(err);
  Napi::Error cause = Napi::Error::New(env, name + ": " + std::strerror(err) + ", " + syscall);
  cause.Set("code", Napi::String::New(env, name));
  cause.Set("errno", Napi::Number::New(env, -err));
  cause.Set("syscall", Napi::String::New(env, syscall));
  return cause;
}

// `new ErrorClass(code, text, { cause })` with the class from setErrorClass(); an empty Error when
// there is none or it did not build an object (its exception, if any, is dropped: the caller's
// error is the one to report).
static Napi::Error FromErrorClass(Napi::Env env, const char* code, const std::string& text,
                                  napi_value cause) {
  Instance* instance = GetInstance(env);
  if (instance == nullptr || instance->error_class == nullptr) return Napi::Error();
  // Never run JS over (or clear) an exception that is already pending.
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return Napi::Error();
  napi_value ctor = nullptr;
  if (napi_get_reference_value(env, instance->error_class, &ctor) != napi_ok || ctor == nullptr) {
    return Napi::Error();
  }
  napi_value args[3] = {Napi::String::New(env, code), Napi::String::New(env, text), nullptr};
  size_t argc = 2;
  if (cause != nullptr) {
    Napi::Object options = Napi::Object::New(env);
    options.Set("cause", cause);
    args[argc++] = options;
  }
  napi_value result = nullptr;
  napi_valuetype type = napi_undefined;
  if (napi_new_instance(env, ctor, argc, args, &result) != napi_ok || result == nullptr ||
      napi_typeof(env, result, &type) != napi_ok || type != napi_object) {
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return Napi::Error();
  }
  return Napi::Error(env, result);
}

Napi::Error CodedError(Napi::Env env, const char* code, const std::string& message,
                       const char* syscall, int err) {
  std::string text = message;
  if (syscall != nullptr) text += ": " + ErrnoName(err);
  Napi::Error cause;
  if (syscall != nullptr) cause = SystemError(env, syscall, err);
  napi_value cause_value = cause.IsEmpty() ? nullptr : static_cast<napi_value>(cause.Value());
  Napi::Error error = FromErrorClass(env, code, text, cause_value);
  if (!error.IsEmpty()) return error;
  // No class handed over (e.g. the .node loaded directly with node-gyp-build): a plain Error.
  error = Napi::Error::New(env, text);
  error.Set("code", Napi::String::New(env, code));
  if (!cause.IsEmpty()) error.Set("cause", cause.Value());
  return error;
}

Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Instance* instance = GetInstance(env);
  const bool clear = info.Length() == 0 || info[0].IsUndefined() || info[0].IsNull();
  if (!clear && !info[0].IsFunction()) {
    return ThrowTypeError(env, "errorClass must be a constructor (or null)");
  }
  if (instance == nullptr) return Throw(env, kIo, "the binding did not initialise");
  if (instance->error_class != nullptr) {
    napi_delete_reference(env, instance->error_class);
    instance->error_class = nullptr;
  }
  if (!clear && napi_create_reference(env, info[0], 1, &instance->error_class) != napi_ok) {
    instance->error_class = nullptr;
    return Throw(env, kIo, "cannot keep a reference to the error class");
  }
  return env.Undefined();
}

Napi::Value Throw(Napi::Env env, const char* code, const std::string& message,
                  const char* syscall, int err) {
  CodedError(env, code, message, syscall, err).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, kInvalidArgument));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowRangeError(Napi::Env env, const std::string& message) {
  Napi::RangeError error = Napi::RangeError::New(env, message);
  error.Set("code", Napi::String::New(env, kInvalidArgument));
  error.ThrowAsJavaScriptException();
  return env.Undefined();
}

static bool ArgNumber(const Napi::CallbackInfo& info, size_t i, const char* name, double* out) {
  if (i >= info.Length() || !info[i].IsNumber()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a number");
    return false;
  }
  *out = info[i].As<Napi::Number>().DoubleValue();
  return true;
}

bool ArgInteger(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min,
                int64_t max, int64_t* out) {
  double v;
  if (!ArgNumber(info, i, name, &v)) return false;
  if (!(v >= static_cast<double>(min) && v <= static_cast<double>(max)) || std::trunc(v) != v) {
    ThrowRangeError(info.Env(), std::string(name) + " must be an integer from " +
                                    std::to_string(min) + " to " + std::to_string(max));
    return false;
  }
  *out = static_cast<int64_t>(v);
  return true;
}

bool ArgFd(const Napi::CallbackInfo& info, size_t i, int* out) {
  int64_t v;
  if (!ArgInteger(info, i, "fd", 0, INT_MAX, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

bool ArgInt32Value(const Napi::CallbackInfo& info, size_t i, const char* name, int32_t* out) {
  double v;
  if (!ArgNumber(info, i, name, &v)) return false;
  *out = info[i].As<Napi::Number>().Int32Value();
  return true;
}

bool ArgTimeout(const Napi::CallbackInfo& info, size_t i, double* ms, bool* infinite) {
  double v;
  if (!ArgNumber(info, i, "timeoutMs", &v)) return false;
  if (std::isnan(v)) {
    ThrowRangeError(info.Env(), "timeoutMs must not be NaN");
    return false;
  }
  // Beyond ~30 years the deadline would overflow a timespec; nobody can tell the difference.
  *infinite = v > 1e12;
  *ms = v < 0 ? 0 : v;
  return true;
}

bool ArgCount(const Napi::CallbackInfo& info, size_t i, int32_t* out) {
  double v;
  if (!ArgNumber(info, i, "count", &v)) return false;
  if (!(v >= 0) || (std::trunc(v) != v && !std::isinf(v))) {
    ThrowRangeError(info.Env(), "count must be a non-negative integer or Infinity");
    return false;
  }
  *out = v >= static_cast<double>(INT32_MAX) ? INT32_MAX : static_cast<int32_t>(v);
  return true;
}

bool ArgBoolean(const Napi::CallbackInfo& info, size_t i, const char* name, bool* out) {
  if (i >= info.Length() || !info[i].IsBoolean()) {
    ThrowTypeError(info.Env(), std::string(name) + " must be a boolean");
    return false;
  }
  *out = info[i].As<Napi::Boolean>().Value();
  return true;
}

}  // namespace bakery

// @bakery/native: the one binding of every bakery backend that maps memory (@bakery/mmap's sealed
// memfd, @bakery/shm's named lock files): MAP_SHARED mappings, non-private futex wait/wake on
// their 32-bit cells, and per-slot OFD leases. Linux only. Every error thrown to JS carries a
// stable `code` and is a @bakery/core BakeryError once setErrorClass() has handed the class over
// (see errors.h); this file never throws C++ exceptions.
#include <fcntl.h>
#include <linux/magic.h>
#include <napi.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <string>

#include "async_wait.h"
#include "errors.h"
#include "futex.h"
#include "instance.h"
#include "mapping.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#endif
#ifndef F_ADD_SEALS
#define F_ADD_SEALS 1033
#define F_GET_SEALS 1034
#define F_SEAL_SEAL 0x0001
#define F_SEAL_SHRINK 0x0002
#define F_SEAL_GROW 0x0004
#endif

namespace bakery {
namespace {

// Largest lock memory we hand out; far above any layout (MAX_SLOTS = 4096 is ~256 KiB).
constexpr int64_t kMaxBytes = INT32_MAX;

std::string FdText(int fd) { return "fd " + std::to_string(fd); }

// Closes `fd` keeping the errno of the failure being reported.
void CloseQuietly(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

// fstat that maps "no such fd" to BAKERY_BAD_HANDLE. false (with a pending exception) on failure.
bool StatFd(Napi::Env env, int fd, struct stat* st) {
  if (fstat(fd, st) == 0) return true;
  if (errno == EBADF) {
    Throw(env, kBadHandle, FdText(fd) + " is not an open file descriptor");
  } else {
    Throw(env, kIo, "fstat of " + FdText(fd) + " failed", "fstat", errno);
  }
  return false;
}

long MemfdCreate(unsigned flags) {
#ifdef SYS_memfd_create
  return syscall(SYS_memfd_create, "bakery", flags);
#else
  errno = ENOSYS;
  return -1;
#endif
}

// What shm_open + shm_unlink do, without linking librt: an anonymous tmpfs file for kernels
// older than memfd_create (3.17). It cannot be sealed.
int AnonymousShm() {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; attempt < 16; ++attempt) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    char path[96];
    snprintf(path, sizeof path, "/dev/shm/bakery-anon-%d-%u-%lx", static_cast<int>(getpid()),
             counter.fetch_add(1), static_cast<unsigned long>(now.tv_nsec ^ now.tv_sec));
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
      unlink(path);
      return fd;
    }
    if (errno != EEXIST) return -1;
  }
  errno = EEXIST;
  return -1;
}

// create(bytes) → fd of a fresh zeroed memfd of `bytes`, CLOEXEC, sealed against shrink/grow.
Napi::Value Create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t bytes;
  if (!ArgInteger(info, 0, "bytes", 1, kMaxBytes, &bytes)) return env.Undefined();

  bool sealable = true;
  // MFD_NOEXEC_SEAL (Linux 6.3) keeps kernels with vm.memfd_noexec=2 from refusing us; older
  // kernels reject the unknown flag with EINVAL.
  long fd = MemfdCreate(MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
  if (fd < 0 && errno == EINVAL) fd = MemfdCreate(MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 && errno == ENOSYS) {
    sealable = false;
    fd = AnonymousShm();
    if (fd < 0) return Throw(env, kIo, "shm_open failed", "shm_open", errno);
  } else if (fd < 0) {
    return Throw(env, kIo, "memfd_create failed", "memfd_create", errno);
  }
  const int ifd = static_cast<int>(fd);
  if (ftruncate(ifd, static_cast<off_t>(bytes)) != 0) {
    CloseQuietly(ifd);
    return Throw(env, kIo, "ftruncate failed", "ftruncate", errno);
  }
  // A peer that shrinks the file would SIGBUS every mapper; growing is harmless but pointless.
  // F_SEAL_SEAL freezes the set, so nobody can add F_SEAL_WRITE under our feet either.
  if (sealable && fcntl(ifd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    CloseQuietly(ifd);
    return Throw(env, kIo, "sealing the memfd failed", "fcntl(F_ADD_SEALS)", errno);
  }
  return Napi::Number::New(env, ifd);
}

void FinalizeMapping(napi_env /*env*/, void* /*data*/, void* hint) {
  ReleaseMapping(static_cast<Mapping*>(hint));
}

// map(fd, bytes, anyFile = false) → an ArrayBuffer over a MAP_SHARED read/write mapping of the
// whole file. Without anyFile the file must be on tmpfs (a memfd or a /dev/shm file: memory that
// never goes to disk); with it any regular file (a named lock in a directory the user chose).
Napi::Value Map(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  int64_t bytes;
  bool any_file = false;
  if (!ArgFd(info, 0, &fd) || !ArgInteger(info, 1, "bytes", 1, kMaxBytes, &bytes)) {
    return env.Undefined();
  }
  if (info.Length() > 2 && !info[2].IsUndefined() && !ArgBoolean(info, 2, "anyFile", &any_file)) {
    return env.Undefined();
  }
  struct stat st;
  if (!StatFd(env, fd, &st)) return env.Undefined();
  struct statfs fs;
  if (!S_ISREG(st.st_mode)) {
    return Throw(env, kBadHandle, FdText(fd) + " is not a regular file");
  }
  if (!any_file && (fstatfs(fd, &fs) != 0 || fs.f_type != TMPFS_MAGIC)) {
    return Throw(env, kBadHandle, FdText(fd) + " is not a shared-memory file (memfd or /dev/shm)");
  }
  if (st.st_size != bytes) {
    return Throw(env, kBadHandle, FdText(fd) + " holds " + std::to_string(st.st_size) +
                                      " bytes, expected " + std::to_string(bytes));
  }
  void* base = mmap(nullptr, static_cast<size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    if (errno == EACCES) {
      return Throw(env, kBadHandle, FdText(fd) + " is not open for reading and writing");
    }
    return Throw(env, kIo, "mmap failed", "mmap", errno);
  }
  Mapping* mapping = RegisterMapping(base, static_cast<size_t>(bytes));
  napi_value ab;
  napi_status status = napi_create_external_arraybuffer(env, base, static_cast<size_t>(bytes),
                                                        FinalizeMapping, mapping, &ab);
  if (status != napi_ok) {
    ReleaseMapping(mapping);
    if (status == napi_no_external_buffers_allowed) {
      return Throw(env, kNativeUnavailable,
                   "this runtime does not allow external ArrayBuffers (V8 sandbox)");
    }
    return Throw(env, kIo, "cannot wrap the mapping in an ArrayBuffer");
  }
  return Napi::Value(env, ab);
}

// size(fd) → the file's size in bytes.
Napi::Value Size(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return env.Undefined();
  struct stat st;
  if (!StatFd(env, fd, &st)) return env.Undefined();
  if (!S_ISREG(st.st_mode)) {
    return Throw(env, kBadHandle, FdText(fd) + " is not a shared-memory file (memfd or /dev/shm)");
  }
  return Napi::Number::New(env, static_cast<double>(st.st_size));
}

// seals(fd) → F_GET_SEALS bit mask (F_SEAL_SEAL 1, SHRINK 2, GROW 4, WRITE 8, ...).
Napi::Value Seals(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return env.Undefined();
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals >= 0) return Napi::Number::New(env, seals);
  if (errno == EBADF) return Throw(env, kBadHandle, FdText(fd) + " is not an open file descriptor");
  if (errno == EINVAL) return Throw(env, kBadHandle, FdText(fd) + " is not a memfd");
  return Throw(env, kIo, "fcntl(F_GET_SEALS) failed", "fcntl(F_GET_SEALS)", errno);
}

// reopen(fd) → a new fd on a NEW open file description of the same memory (CLOEXEC). Locks that
// belong to a description (OFD locks) taken through it are this process's own.
Napi::Value Reopen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return env.Undefined();
  struct stat st;
  if (!StatFd(env, fd, &st)) return env.Undefined();
  if (!S_ISREG(st.st_mode)) {
    return Throw(env, kBadHandle, FdText(fd) + " is not a shared-memory file (memfd or /dev/shm)");
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  int nfd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (nfd < 0) return Throw(env, kIo, "open " + path + " failed", "open", errno);
  struct stat nst;
  if (fstat(nfd, &nst) != 0 || nst.st_dev != st.st_dev || nst.st_ino != st.st_ino) {
    close(nfd);  // fd was closed and reused between the two calls
    return Throw(env, kBadHandle, FdText(fd) + " changed while it was reopened");
  }
  return Napi::Number::New(env, nfd);
}

// Byte-range OFD lock of one byte at `byte`: the per-slot lease (byte = slot). Needs an fd of a
// description this process opened itself (reopen), or a forked child's lease would be shared.
bool ArgLease(const Napi::CallbackInfo& info, int* fd, struct flock* fl) {
  int64_t byte;
  if (!ArgFd(info, 0, fd) || !ArgInteger(info, 1, "byte", 0, kMaxBytes - 1, &byte)) return false;
  *fl = {};
  fl->l_type = F_WRLCK;
  fl->l_whence = SEEK_SET;
  fl->l_start = static_cast<off_t>(byte);
  fl->l_len = 1;
  fl->l_pid = 0;  // required by F_OFD_*
  return true;
}

// leaseTake(fd, byte) → undefined. F_OFD_SETLK write lock on [byte, byte + 1); it lasts until the
// description's last fd is closed (so at the latest until the process dies). Seals do not matter.
Napi::Value LeaseTake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  struct flock fl;
  if (!ArgLease(info, &fd, &fl)) return env.Undefined();
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return env.Undefined();
  if (errno == EBADF) return Throw(env, kBadHandle, FdText(fd) + " is not an open file descriptor");
  if (errno == EAGAIN || errno == EACCES) {
    return Throw(env, kIo, "lease busy: byte " + std::to_string(fl.l_start) + " is locked",
                 "fcntl(F_OFD_SETLK)", errno);
  }
  return Throw(env, kIo, "fcntl(F_OFD_SETLK) failed", "fcntl(F_OFD_SETLK)", errno);
}

// leaseDrop(fd, byte) → undefined. Releases this description's lock on [byte, byte + 1) (F_UNLCK;
// not holding one is no error).
Napi::Value LeaseDrop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  struct flock fl;
  if (!ArgLease(info, &fd, &fl)) return env.Undefined();
  fl.l_type = F_UNLCK;
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return env.Undefined();
  if (errno == EBADF) return Throw(env, kBadHandle, FdText(fd) + " is not an open file descriptor");
  return Throw(env, kIo, "fcntl(F_OFD_SETLK, F_UNLCK) failed", "fcntl(F_OFD_SETLK)", errno);
}

// leaseHeld(fd, byte) → whether another description holds a lock on `byte` (F_OFD_GETLK). A lock
// held through `fd`'s own description does not count.
Napi::Value LeaseHeld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  struct flock fl;
  if (!ArgLease(info, &fd, &fl)) return env.Undefined();
  if (fcntl(fd, F_OFD_GETLK, &fl) == 0) return Napi::Boolean::New(env, fl.l_type != F_UNLCK);
  if (errno == EBADF) return Throw(env, kBadHandle, FdText(fd) + " is not an open file descriptor");
  return Throw(env, kIo, "fcntl(F_OFD_GETLK) failed", "fcntl(F_OFD_GETLK)", errno);
}

// setCloexec(fd, on) → undefined. Clear it only on an fd you are about to hand to a child.
Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  bool on;
  if (!ArgFd(info, 0, &fd) || !ArgBoolean(info, 1, "on", &on)) return env.Undefined();
  int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) flags = fcntl(fd, F_SETFD, on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC));
  if (flags >= 0) return env.Undefined();
  if (errno == EBADF) return Throw(env, kBadHandle, FdText(fd) + " is not an open file descriptor");
  return Throw(env, kIo, "fcntl(F_SETFD) failed", "fcntl(F_SETFD)", errno);
}

// close(fd) → undefined. Mappings made from the fd stay valid.
Napi::Value Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd;
  if (!ArgFd(info, 0, &fd)) return env.Undefined();
  // On Linux the fd is released even when close reports EINTR; retrying could close a reused fd.
  if (close(fd) == 0 || errno == EINTR) return env.Undefined();
  if (errno == EBADF) return Throw(env, kBadHandle, FdText(fd) + " is not an open file descriptor");
  return Throw(env, kIo, "close failed", "close", errno);
}

// Reads (buffer, index) at info[0], info[1]: an ArrayBuffer returned by map() or an Int32Array
// over one; `index` counts int32 cells (from the view's start for an Int32Array). On success
// *mapping holds a reference the caller must release.
bool ArgCell(const Napi::CallbackInfo& info, Mapping** mapping, int32_t** addr) {
  Napi::Env env = info.Env();
  uint8_t* data = nullptr;
  size_t cells = 0;
  if (info.Length() > 0 && info[0].IsArrayBuffer()) {
    Napi::ArrayBuffer ab = info[0].As<Napi::ArrayBuffer>();
    data = static_cast<uint8_t*>(ab.Data());
    cells = ab.ByteLength() / 4;
  } else if (info.Length() > 0 && info[0].IsTypedArray() &&
             info[0].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array) {
    Napi::Int32Array view = info[0].As<Napi::Int32Array>();
    data = reinterpret_cast<uint8_t*>(view.Data());
    cells = view.ElementLength();
  } else {
    ThrowTypeError(env, "buffer must be an ArrayBuffer or Int32Array from map()");
    return false;
  }
  int64_t index;
  if (!ArgInteger(info, 1, "index", 0, INT32_MAX, &index)) return false;
  if (static_cast<size_t>(index) >= cells) {
    ThrowRangeError(env, "index " + std::to_string(index) + " is outside the buffer (" +
                             std::to_string(cells) + " cells)");
    return false;
  }
  int32_t* cell = reinterpret_cast<int32_t*>(data + 4 * static_cast<size_t>(index));
  *mapping = AcquireMapping(cell, sizeof(int32_t));
  if (*mapping == nullptr) {
    Throw(env, kBadHandle, "buffer is not a bakery mapping (it must come from map())");
    return false;
  }
  *addr = cell;
  return true;
}

// The arguments of wait and waitAsync: (buffer, index, expected, timeoutMs). The deadline is
// taken now (CLOCK_MONOTONIC), so it counts from the call. On success `a.mapping` holds a
// reference the caller must release.
struct WaitArgs {
  Mapping* mapping;
  int32_t* addr;
  int32_t expected;
  timespec deadline;
  bool infinite;
};

bool ArgWait(const Napi::CallbackInfo& info, WaitArgs* a) {
  double ms;
  if (!ArgInt32Value(info, 2, "expected", &a->expected) ||
      !ArgTimeout(info, 3, &ms, &a->infinite) || !ArgCell(info, &a->mapping, &a->addr)) {
    return false;
  }
  a->deadline = DeadlineAfter(a->infinite ? 0 : ms);
  return true;
}

// wait(buffer, index, expected, timeoutMs) → 'ok' | 'not-equal' | 'timed-out'. Blocks this thread.
Napi::Value Wait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WaitArgs a;
  if (!ArgWait(info, &a)) return env.Undefined();
  int err = 0;
  WaitResult r =
      FutexWait(a.addr, a.expected, a.infinite ? nullptr : &a.deadline, nullptr, &err);
  ReleaseMapping(a.mapping);
  switch (r) {
    case WaitResult::kOk:
      return Napi::String::New(env, "ok");
    case WaitResult::kNotEqual:
      return Napi::String::New(env, "not-equal");
    case WaitResult::kTimedOut:
      return Napi::String::New(env, "timed-out");
    default:
      return Throw(env, kIo, "futex wait failed", "futex", err);
  }
}

// wake(buffer, index, count) → how many waiters (in any process) were woken.
Napi::Value Wake(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t count;
  Mapping* mapping;
  int32_t* addr;
  if (!ArgCount(info, 2, &count) || !ArgCell(info, &mapping, &addr)) return env.Undefined();
  int woken = FutexWake(addr, count);
  ReleaseMapping(mapping);
  if (woken < 0) return Throw(env, kIo, "futex wake failed", "futex", -woken);
  return Napi::Number::New(env, woken);
}

// waitAsync(buffer, index, expected, timeoutMs) → Promise of the same results as wait().
Napi::Value WaitAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  WaitArgs a;
  // The deadline starts now (in ArgWait), not when a thread picks the job up.
  if (!ArgWait(info, &a)) return env.Undefined();
  return GetInstance(env)->waiter->Start(env, a.mapping, a.addr, a.expected,
                                         a.infinite ? nullptr : &a.deadline);
}

// cancelWaits() → number of this thread's pending waitAsync calls ended early (they resolve 'ok').
Napi::Value CancelWaits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Napi::Number::New(env, static_cast<double>(GetInstance(env)->waiter->CancelAll()));
}

// At env teardown (after the waiter's cleanup hook has joined its threads).
void FinalizeInstance(Napi::Env env, Instance* instance) {
  delete instance->waiter;
  if (instance->error_class != nullptr) napi_delete_reference(env, instance->error_class);
  delete instance;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* instance = new Instance();
  env.SetInstanceData<Instance, FinalizeInstance>(instance);
  instance->waiter = AsyncWaiter::Create(env);
  if (instance->waiter == nullptr) return exports;
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("create", Napi::Function::New(env, Create, "create"));
  exports.Set("map", Napi::Function::New(env, Map, "map"));
  exports.Set("size", Napi::Function::New(env, Size, "size"));
  exports.Set("seals", Napi::Function::New(env, Seals, "seals"));
  exports.Set("reopen", Napi::Function::New(env, Reopen, "reopen"));
  exports.Set("leaseTake", Napi::Function::New(env, LeaseTake, "leaseTake"));
  exports.Set("leaseHeld", Napi::Function::New(env, LeaseHeld, "leaseHeld"));
  exports.Set("leaseDrop", Napi::Function::New(env, LeaseDrop, "leaseDrop"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("wait", Napi::Function::New(env, Wait, "wait"));
  exports.Set("wake", Napi::Function::New(env, Wake, "wake"));
  exports.Set("waitAsync", Napi::Function::New(env, WaitAsync, "waitAsync"));
  exports.Set("cancelWaits", Napi::Function::New(env, CancelWaits, "cancelWaits"));
  return exports;
}

}  // namespace
}  // namespace bakery

static Napi::Object InitBakeryNative(Napi::Env env, Napi::Object exports) {
  return bakery::Init(env, exports);
}

NODE_API_MODULE(bakery_native, InitBakeryNative)

#include "mapping.h"

#include <sys/mman.h>

#include <cstdint>
#include <map>
#include <mutex>

namespace bakery {

struct Mapping {
  void* base;
  size_t length;
  int refs;
};

namespace {

// Leaked on purpose: no static destructor may run at exit() while waiter threads still use them.
std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex;
  return *mu;
}

std::map<uintptr_t, Mapping*>& Registry() {
  static auto* registry = new std::map<uintptr_t, Mapping*>;
  return *registry;
}

}  // namespace

Mapping* RegisterMapping(void* base, size_t length) {
  auto* mapping = new Mapping{base, length, 1};
  std::lock_guard<std::mutex> lock(RegistryMutex());
  Registry()[reinterpret_cast<uintptr_t>(base)] = mapping;
  return mapping;
}

Mapping* AcquireMapping(const void* p, size_t n) {
  const uintptr_t start = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto& registry = Registry();
  auto it = registry.upper_bound(start);
  if (it == registry.begin()) return nullptr;
  --it;
  Mapping* mapping = it->second;
  if (start + n > it->first + mapping->length) return nullptr;
  ++mapping->refs;
  return mapping;
}

void ReleaseMapping(Mapping* mapping) {
  {
    std::lock_guard<std::mutex> lock(RegistryMutex());
    if (--mapping->refs > 0) return;
    Registry().erase(reinterpret_cast<uintptr_t>(mapping->base));
  }
  munmap(mapping->base, mapping->length);
  delete mapping;
}

}  // namespace bakery

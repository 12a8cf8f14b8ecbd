// A stand-in for the executor registry of src/job_executor.hpp, for branches built before the
// job loop (jobs.cpp) existed. Both functions are WEAK symbols: once jobs.cpp defines the real
// register_executor / make_executor, the linker uses those and this file is dead code that the
// merge may delete.
#include "job_executor.hpp"

#include "core/error.hpp"

#include <map>
#include <string>

namespace privacy::jobs {

namespace {
std::map<core::JobKind, ExecutorFactory>& fallback_registry() {
  static std::map<core::JobKind, ExecutorFactory> registry;
  return registry;
}
}  // namespace

__attribute__((weak)) void register_executor(core::JobKind kind, ExecutorFactory factory) {
  fallback_registry()[kind] = factory;
}

__attribute__((weak)) std::unique_ptr<JobExecutor> make_executor(core::JobKind kind) {
  auto found = fallback_registry().find(kind);
  if (found == fallback_registry().end()) {
    throw core::Error(core::sqlstate::kInternalError,
                      "no executor is registered for " + std::string(core::to_string(kind)) + " jobs");
  }
  return found->second();
}

}  // namespace privacy::jobs

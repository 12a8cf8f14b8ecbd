// The one description of pg_privacy's background processes (launcher and job workers): both
// connect to a database, need shared memory, start once recovery is over and live in this
// library; they differ in entry function, type, name and restart policy.
#pragma once

#include "pg/pg_headers.hpp"

extern "C" {
#include "postmaster/bgworker.h"
}

#include <cstring>

namespace privacy::pg {

inline BackgroundWorker describe_background_worker(const char* function_name, const char* type,
                                                   int restart_time) {
  BackgroundWorker worker;
  std::memset(&worker, 0, sizeof(worker));
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
  worker.bgw_restart_time = restart_time;
  std::strncpy(worker.bgw_library_name, "pg_privacy", BGW_MAXLEN - 1);
  std::strncpy(worker.bgw_function_name, function_name, BGW_MAXLEN - 1);
  std::strncpy(worker.bgw_name, type, BGW_MAXLEN - 1);
  std::strncpy(worker.bgw_type, type, BGW_MAXLEN - 1);
  return worker;
}

}  // namespace privacy::pg

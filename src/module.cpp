// _PG_init: defines the GUCs in every backend that loads pg_privacy and, only while the library
// is being preloaded, requests shared memory and registers the launcher. Loaded any other way
// (CREATE EXTENSION without preload), the SQL API works and privacy.worker_status() says that
// no launcher runs.
#include "citus/tables.hpp"
#include "worker/launcher.hpp"
#include "pg/guc.hpp"
#include "pg/pg_headers.hpp"
#include "pg/shmem.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void _PG_init(void) {
  privacy::pg::guc::define_all();
  privacy::citus_tables::install_restrictive_policy_hook();
  if (!process_shared_preload_libraries_in_progress) return;
  privacy::pg::install_shmem_hooks();
  privacy::launcher::register_launcher();
}
}

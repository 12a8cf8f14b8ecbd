// privacy_test.boundary_selftest(mode): proves the C++/PostgreSQL boundary in both directions
// (test/sql/boundary.sql) with pg_privacy's own boundary code (pg_guard, SpiConnection, the entry
// macro), which it calls in pg_privacy.so. Test-only: it lives in the privacy_test module (this
// folder's Makefile) and never ships in pg_privacy. Superuser-only; it changes nothing.
//   'spi_error'     an SPI statement fails while RAII objects are alive: the client gets the
//                   statement's own SQLSTATE and message, and the destructors run
//   'cpp_error'     a core::Error with SQLSTATE, detail and hint becomes a clean ERROR
//   'std_exception' any other C++ exception becomes XX000
//   'live_objects'  how many of the RAII probes are still alive (0 after every failure)
#include "pg/boundary.hpp"
#include "pg/spi.hpp"

extern "C" {
PG_MODULE_MAGIC;
}

#include <stdexcept>
#include <string>
#include <vector>

namespace {

int live_probes = 0;

// Counts its own lifetime, so a test can see that unwinding destroyed it.
class LifetimeProbe {
 public:
  LifetimeProbe() : payload_(1024, 'x') { ++live_probes; }
  ~LifetimeProbe() { --live_probes; }
  LifetimeProbe(const LifetimeProbe&) = delete;
  LifetimeProbe& operator=(const LifetimeProbe&) = delete;

 private:
  std::string payload_;
};

}  // namespace

PRIVACY_SQL_FUNCTION(privacy_test_boundary_selftest) {
  std::string mode = privacy::pg::text_arg(fcinfo, 0, "mode");  // the function is STRICT
  if (mode == "live_objects") return Int32GetDatum(live_probes);
  LifetimeProbe probe;
  std::vector<LifetimeProbe> more_probes(3);
  if (mode == "spi_error") {
    privacy::pg::SpiConnection spi;
    privacy::pg::spi_execute("SELECT 1 / (random() * 0)::int");
  } else if (mode == "cpp_error") {
    throw privacy::core::Error("PV999", "boundary self-test: a C++ error", "raised by C++ code",
                               "nothing to fix: this is a test");
  } else if (mode == "std_exception") {
    throw std::runtime_error("boundary self-test: a standard exception");
  } else if (mode != "ok") {
    throw privacy::core::Error(privacy::core::sqlstate::kInvalidParameter,
                               "unknown self-test mode \"" + mode + "\"", "",
                               "use spi_error, cpp_error, std_exception, ok or live_objects");
  }
  return Int32GetDatum(live_probes);
}

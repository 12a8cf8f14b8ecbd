// privacy.verify_audit_log(): re-checks every hash chain of the audit trail (docs/audit.md).
//
// For each chain, in id order, starting from its anchor (the prev_hash of its first retained row
// after a retention purge, else the genesis hash):
//   * the row's prev_hash is the previous row's hash        (a deleted or inserted row breaks this)
//   * the row's hash is SHA-256(prev_hash || canonical row)  (a changed field or id breaks this)
//   * the chain head (audit_chains.last_id/last_hash) is the last row
//                                                            (a deleted newest row breaks this)
// The first failing row's id is reported (the smallest over all chains). Rows are read through a
// cursor in batches, so memory stays flat however long the trail is.
//
// A tenant-scoped caller (docs/security.md, "Tenant scopes") verifies the chains of its tenants
// only: the rows and heads of the others (and of the platform chain) are not read, so neither
// their number nor the id of a break in them reaches it. Each chain is verified on its own, so
// verifying some of them is as sound as verifying all. The scope is read in the same snapshot.
//
// The heads and the rows must be read in ONE snapshot: an append commits its row and the new
// head together, so in one snapshot they always agree, but heads read in a later snapshot than
// the rows name rows the walk cannot see yet, a false "deleted newest row" (docs/audit.md).
// Every read here is therefore read-only SPI, which uses the calling statement's snapshot;
// read-write SPI would take a fresh snapshot for each query.
#include "access/tenant_scope.hpp"
#include "audit/audit.hpp"
#include "core/hash_chain.hpp"
#include "pg/spi.hpp"

#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using privacy::pg::pg_guard;
using privacy::pg::TextRow;

constexpr long kFetchRows = 1000;

// The condition on `chain_column` that keeps the chains `scope` may verify: none for a
// platform-wide role (its queries stay as they were), else its tenants' chains.
std::string chains_of(const privacy::tenant_scope::Scope& scope, const char* chain_column) {
  if (scope.platform_wide) return "";
  std::string list;
  for (const std::string& tenant : scope.tenants) {
    list += (list.empty() ? "" : ", ") + privacy::pg::quote_literal(tenant);
  }
  return std::string(" WHERE ") + chain_column + " OPERATOR(pg_catalog.=) ANY (ARRAY[" + list +
         "]::pg_catalog.text[])";
}

// The row text in exactly the forms audit::append hashed (see core/hash_chain.hpp).
std::string rows_query(const privacy::tenant_scope::Scope& scope) {
  return "SELECT id::text, chain, "
         "       to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
         "       actor, acting_role, client_addr, application_name, action, tenant_id, job_id::text, "
         "       target, outcome, detail::text, prev_hash, hash "
         "FROM privacy.audit_log l" +
         chains_of(scope, "l.chain") +
         " ORDER BY l.chain, l.id";  // l.id: the output column "id" is text
}

struct ChainHead {
  long long last_id = 0;
  std::string last_hash;
  std::optional<long long> anchor_id;
  std::optional<std::string> anchor_hash;
  bool seen = false;
};

struct StoredRow {
  privacy::core::AuditRecord record;
  std::string prev_hash;
  std::string hash;
};

std::string value_or_empty(const std::optional<std::string>& text) { return text.value_or(""); }

StoredRow stored_row_from(const TextRow& cells) {
  StoredRow row;
  privacy::core::AuditRecord& r = row.record;
  r.id = cells.int8(0);
  r.chain = value_or_empty(cells[1]);
  r.at = value_or_empty(cells[2]);
  r.session_user = cells[3];
  r.current_user = cells[4];
  r.client_addr = cells[5];
  r.application_name = cells[6];
  r.action = value_or_empty(cells[7]);
  r.tenant_id = cells[8];
  r.job_id = cells.optional_int8(9);
  r.target = cells[10];
  r.outcome = cells[11];
  r.detail = cells[12];
  row.prev_hash = value_or_empty(cells[13]);
  row.hash = value_or_empty(cells[14]);
  return row;
}

// The chain heads, read in the calling statement's snapshot (read_only), like the rows.
std::map<std::string, ChainHead> load_chain_heads(const privacy::tenant_scope::Scope& scope) {
  std::map<std::string, ChainHead> heads;
  constexpr bool kStatementSnapshot = true;
  for (const TextRow& cells : privacy::pg::spi_query_rows(
           "SELECT c.chain, c.last_id::text, c.last_hash, c.anchor_id::text, c.anchor_hash "
           "FROM privacy.audit_chains c" +
               chains_of(scope, "c.chain"),
           {}, kStatementSnapshot)) {
    ChainHead head;
    head.last_id = cells.int8(1);
    head.last_hash = value_or_empty(cells[2]);
    head.anchor_id = cells.optional_int8(3);
    head.anchor_hash = cells[4];
    heads[value_or_empty(cells[0])] = head;
  }
  return heads;
}

// Walks the rows of all chains (ordered by chain, then id) and remembers the first bad id.
class ChainWalker {
 public:
  explicit ChainWalker(std::map<std::string, ChainHead> heads) : heads_(std::move(heads)) {}

  void visit(const StoredRow& row) {
    ++checked_;
    if (!current_ || row.record.chain != current_name_) start_chain(row.record.chain);
    const long long id = row.record.id;
    if (head_ == nullptr) {
      bad(id);  // a row on a chain that has no head: not written by audit::append
    } else {
      if (first_row_ && head_->anchor_id && id != *head_->anchor_id) bad(id);
      if (id > head_->last_id) bad(id);  // appended behind the extension's back
    }
    if (row.prev_hash != expected_prev_) bad(id);
    if (!privacy::core::is_hash_hex(expected_prev_) ||
        privacy::core::chain_hash(expected_prev_, row.record) != row.hash) {
      bad(id);
    }
    expected_prev_ = row.hash;
    last_id_ = id;
    first_row_ = false;
  }

  // Ends the walk: checks the last chain's head and the chains that have no rows at all.
  void finish() {
    if (current_) finish_chain();
    for (const auto& [name, head] : heads_) {
      if (!head.seen && head.last_id != 0) bad(head.last_id);  // every row of the chain is gone
    }
  }

  long long checked() const { return checked_; }
  std::optional<long long> first_bad_id() const { return first_bad_; }

 private:
  void start_chain(const std::string& name) {
    if (current_) finish_chain();
    current_ = true;
    current_name_ = name;
    first_row_ = true;
    last_id_ = 0;
    auto found = heads_.find(name);
    head_ = found == heads_.end() ? nullptr : &found->second;
    if (head_ != nullptr) head_->seen = true;
    expected_prev_ = head_ != nullptr && head_->anchor_hash
                         ? *head_->anchor_hash
                         : std::string(privacy::core::kGenesisHash);
  }

  // The chain's head must name its last row: a deleted newest row leaves the head pointing
  // at an id that no longer exists (reported as that id). Rows behind the head were already
  // reported by visit().
  void finish_chain() {
    if (head_ == nullptr) return;
    if (last_id_ < head_->last_id) bad(head_->last_id);
    if (last_id_ == head_->last_id && expected_prev_ != head_->last_hash) bad(head_->last_id);
  }

  void bad(long long id) {
    if (!first_bad_ || id < *first_bad_) first_bad_ = id;
  }

  std::map<std::string, ChainHead> heads_;
  bool current_ = false;
  std::string current_name_;
  ChainHead* head_ = nullptr;
  bool first_row_ = true;
  std::string expected_prev_;
  long long last_id_ = 0;
  long long checked_ = 0;
  std::optional<long long> first_bad_;
};

// Copies the rows of the last fetch out of SPI memory and frees it.
std::vector<TextRow> take_fetched_rows() {
  std::vector<TextRow> rows;
  uint64 count = SPI_processed;
  SPITupleTable* table = SPI_tuptable;
  if (table == nullptr) return rows;
  int columns = table->tupdesc->natts;
  rows.reserve(count);
  for (uint64 i = 0; i < count; ++i) {
    TextRow row;
    for (int column = 1; column <= columns; ++column) {
      char* value = pg_guard([&] { return SPI_getvalue(table->vals[i], table->tupdesc, column); });
      if (value == nullptr) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(value));
        pfree(value);
      }
    }
    rows.push_back(std::move(row));
  }
  pg_guard([&] { SPI_freetuptable(table); });
  return rows;
}

// Feeds every audit row to the walker, kFetchRows at a time, from a read-only cursor (which
// runs in the calling statement's snapshot, like load_chain_heads).
void walk_all_rows(ChainWalker& walker, const privacy::tenant_scope::Scope& scope) {
  const std::string query = rows_query(scope);
  Portal portal = pg_guard([&] {
    return SPI_cursor_open_with_args(nullptr, query.c_str(), 0, nullptr, nullptr, nullptr, true, 0);
  });
  for (;;) {
    pg_guard([&] { SPI_cursor_fetch(portal, true, kFetchRows); });
    std::vector<TextRow> rows = take_fetched_rows();
    if (rows.empty()) break;
    for (const TextRow& cells : rows) walker.visit(stored_row_from(cells));
  }
  pg_guard([&] { SPI_cursor_close(portal); });
}

}  // namespace

PRIVACY_SQL_FUNCTION(privacy_verify_audit_log) {
  privacy::pg::pg_guard([&] { InitMaterializedSRF(fcinfo, 0); });
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  long long checked = 0;
  std::optional<long long> first_bad;
  {
    privacy::pg::SpiConnection spi;
    const privacy::tenant_scope::Scope scope = privacy::tenant_scope::current(std::nullopt);
    ChainWalker walker(load_chain_heads(scope));
    walk_all_rows(walker, scope);
    walker.finish();
    checked = walker.checked();
    first_bad = walker.first_bad_id();
  }
  Datum values[3];
  bool nulls[3] = {false, false, !first_bad.has_value()};
  values[0] = BoolGetDatum(!first_bad.has_value());
  values[1] = Int64GetDatum(checked);
  values[2] = Int64GetDatum(first_bad.value_or(0));
  privacy::pg::pg_guard(
      [&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
  return (Datum)0;
}

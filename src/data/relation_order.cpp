// The registered relations in the order every job visits them (data/relation_order.hpp).
#include "data/relation_order.hpp"

#include "pg/spi.hpp"

#include <algorithm>

namespace privacy::relation_order {

Graph graph() {
  pg::SpiConnection spi;
  std::vector<Oid> names_order;  // every registered relation that exists, by name (the tie-breaker)
  for (
      const pg::TextRow& row : pg::spi_query_rows(
          "SELECT r.relation::pg_catalog.oid::pg_catalog.text FROM privacy.registered_tables r"
          " WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) r.relation)"
          " ORDER BY r.relation::pg_catalog.text, r.relation::pg_catalog.oid")) {
    names_order.push_back(row.oid(0));
  }
  Graph result;
  // children[parent] = registered tables with a foreign key to it (self-references ignored).
  std::map<Oid, std::set<Oid>> children;
  for (
      const pg::TextRow& row : pg::spi_query_rows(
          "SELECT DISTINCT c.conrelid::pg_catalog.text, c.confrelid::pg_catalog.text FROM pg_catalog.pg_constraint c"
          "  JOIN privacy.registered_tables child ON child.relation OPERATOR(pg_catalog.=) c.conrelid"
          "  JOIN privacy.registered_tables parent ON parent.relation OPERATOR(pg_catalog.=) c.confrelid"
          " WHERE c.contype OPERATOR(pg_catalog.=) 'f' AND c.conrelid OPERATOR(pg_catalog.<>) c.confrelid")) {
    Oid child = row.oid(0);
    Oid parent = row.oid(1);
    children[parent].insert(child);
    result.parents[child].insert(parent);
  }
  // Kahn's algorithm: a table comes once all its children have; in a cycle, the first remaining
  // table by name goes next, so the order is always the same.
  std::set<Oid> emitted;
  while (result.order.size() < names_order.size()) {
    Oid next = InvalidOid;
    for (Oid candidate : names_order) {
      if (emitted.count(candidate)) continue;
      bool ready = std::all_of(children[candidate].begin(), children[candidate].end(),
                               [&](Oid child) { return emitted.count(child) > 0; });
      if (ready) {
        next = candidate;
        break;
      }
    }
    if (next == InvalidOid) {
      for (Oid candidate : names_order) {
        if (!emitted.count(candidate)) {
          next = candidate;
          break;
        }
      }
    }
    result.order.push_back(next);
    emitted.insert(next);
  }
  return result;
}

std::vector<Oid> in_foreign_key_order() { return graph().order; }

}  // namespace privacy::relation_order

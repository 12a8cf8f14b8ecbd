// The order in which every job (erase, purge, export, restriction, finalization, restore) visits
// the registered tables (data/walk.hpp is the walk that follows it).
#pragma once

#include "pg/pg_headers.hpp"

#include <map>
#include <set>
#include <vector>

namespace privacy::relation_order {

// Registered relations that exist, in the order jobs visit them: children before parents by
// foreign keys among registered tables (a cycle is broken by name, self-references ignored),
// and each relation's registered parents (the tables it references).
struct Graph {
  std::vector<Oid> order;
  std::map<Oid, std::set<Oid>> parents;
};
Graph graph();
std::vector<Oid> in_foreign_key_order();

}  // namespace privacy::relation_order

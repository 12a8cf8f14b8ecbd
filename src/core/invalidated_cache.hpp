// A per-backend cache of values read from the catalog, dropped by invalidation messages
// (docs/architecture.md, "Descriptions of registered tables"): the PostgreSQL side
// (data/description_cache.cpp) forwards relcache and syscache callbacks to it. It holds no
// PostgreSQL types, so its rules are unit-tested (test/unit/invalidated_cache_test.cpp).
//
// The one subtle rule: a value read while an invalidation arrives may already be stale (the
// change committed after the read's snapshot, its message was processed during the read), so a
// reader takes a ticket before it reads and store() keeps the value only when no invalidation
// of any kind came since that ticket. The value is still good for the reader's own use (its
// snapshot is consistent); the next reader reads again.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace privacy::core {

template <typename Value>
class InvalidatedCache {
 public:
  using Key = unsigned int;          // a relation OID
  using Dependency = std::uint32_t;  // a syscache hash value (e.g. of a type the value names)
  using Ticket = std::uint64_t;

  // A copy, never a reference: an invalidation may drop the entry while the caller still uses
  // the value (any lock taken can process invalidation messages).
  std::optional<Value> find(Key key) const {
    auto found = entries_.find(key);
    if (found == entries_.end()) return std::nullopt;
    return found->second.value;
  }

  // Take before reading the value that store() will keep.
  Ticket ticket() const { return generation_; }

  // Keeps `value` for `key` unless an invalidation came since `ticket`; true when kept.
  bool store(Ticket ticket, Key key, Value value, std::set<Dependency> dependencies) {
    if (ticket != generation_) return false;
    entries_[key] = Entry{std::move(value), std::move(dependencies)};
    return true;
  }

  // What the invalidation callbacks call. Every one of them moves the generation, whether or
  // not it drops anything: a read in progress may depend on what it names.
  void forget(Key key) noexcept {
    ++generation_;
    entries_.erase(key);
  }
  void forget_all() noexcept {
    ++generation_;
    entries_.clear();
  }
  void forget_depending_on(Dependency dependency) noexcept {
    ++generation_;
    for (auto entry = entries_.begin(); entry != entries_.end();) {
      if (entry->second.dependencies.count(dependency)) {
        entry = entries_.erase(entry);
      } else {
        ++entry;
      }
    }
  }

  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Value value;
    std::set<Dependency> dependencies;
  };
  std::map<Key, Entry> entries_;
  Ticket generation_ = 0;
};

}  // namespace privacy::core

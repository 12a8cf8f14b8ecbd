#include "core/invalidated_cache.hpp"

#include <gtest/gtest.h>

#include <string>

using Cache = privacy::core::InvalidatedCache<std::string>;

TEST(InvalidatedCache, KeepsWhatWasStored) {
  Cache cache;
  EXPECT_FALSE(cache.find(1).has_value());
  EXPECT_TRUE(cache.store(cache.ticket(), 1, "one", {}));
  EXPECT_EQ(cache.find(1), "one");
  EXPECT_FALSE(cache.find(2).has_value());
}

TEST(InvalidatedCache, ForgetDropsOnlyThatKey) {
  Cache cache;
  cache.store(cache.ticket(), 1, "one", {});
  cache.store(cache.ticket(), 2, "two", {});
  cache.forget(1);
  EXPECT_FALSE(cache.find(1).has_value());
  EXPECT_EQ(cache.find(2), "two");
}

TEST(InvalidatedCache, ForgetAllDropsEverything) {
  Cache cache;
  cache.store(cache.ticket(), 1, "one", {});
  cache.store(cache.ticket(), 2, "two", {});
  cache.forget_all();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(InvalidatedCache, ADependencyDropsTheEntriesNamingIt) {
  Cache cache;
  cache.store(cache.ticket(), 1, "one", {10, 11});
  cache.store(cache.ticket(), 2, "two", {11});
  cache.store(cache.ticket(), 3, "three", {12});
  cache.forget_depending_on(11);
  EXPECT_FALSE(cache.find(1).has_value());
  EXPECT_FALSE(cache.find(2).has_value());
  EXPECT_EQ(cache.find(3), "three");
  cache.forget_depending_on(99);  // names nothing cached
  EXPECT_EQ(cache.find(3), "three");
}

// A value read while an invalidation arrived may be stale: it is not kept, whatever the
// invalidation named (the read may have depended on it).
TEST(InvalidatedCache, AReadOverlappingAnInvalidationIsNotKept) {
  for (int kind = 0; kind < 3; ++kind) {
    Cache cache;
    Cache::Ticket ticket = cache.ticket();
    if (kind == 0) cache.forget(42);
    if (kind == 1) cache.forget_all();
    if (kind == 2) cache.forget_depending_on(7);
    EXPECT_FALSE(cache.store(ticket, 1, "stale?", {})) << "kind " << kind;
    EXPECT_FALSE(cache.find(1).has_value()) << "kind " << kind;
    EXPECT_TRUE(cache.store(cache.ticket(), 1, "fresh", {})) << "kind " << kind;
    EXPECT_EQ(cache.find(1), "fresh");
  }
}

TEST(InvalidatedCache, StoreReplacesAndFindCopies) {
  Cache cache;
  cache.store(cache.ticket(), 1, "old", {5});
  std::optional<std::string> held = cache.find(1);
  cache.store(cache.ticket(), 1, "new", {6});
  cache.forget(1);
  EXPECT_EQ(held, "old");  // the caller's copy outlives the entry
  cache.store(cache.ticket(), 1, "again", {6});
  cache.forget_depending_on(5);  // the replaced entry's dependencies are gone with it
  EXPECT_EQ(cache.find(1), "again");
}

#include "core/chunk_buffer.hpp"
#include "core/error.hpp"
#include "core/export_document.hpp"
#include "core/hash_chain.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using privacy::core::ChunkBuffer;
using privacy::core::ExportDocument;

TEST(ExportDocument, FramesTablesAndRows) {
  std::string out;
  ExportDocument document([&out](std::string_view piece) { out.append(piece); });
  document.begin(42, "acme", "u\"1", "2026-01-31T12:00:00Z");
  document.begin_table("app.users");
  document.add_row("{\"id\":1}");
  document.add_row("{\"id\":2}");
  document.end_table();
  document.begin_table("app.orders");
  document.end_table();
  document.finish();
  EXPECT_EQ(out,
            "{\"format\": \"pg_privacy.export/1\", \"job\": 42, \"tenant\": \"acme\", "
            "\"subject\": \"u\\\"1\", \"generated_at\": \"2026-01-31T12:00:00Z\", \"tables\": [\n"
            "{\"table\": \"app.users\", \"rows\": [\n{\"id\":1},\n{\"id\":2}]},\n"
            "{\"table\": \"app.orders\", \"rows\": []}]}\n");
}

TEST(ExportDocument, RefusesCallsOutOfOrder) {
  ExportDocument document([](std::string_view) {});
  EXPECT_THROW(document.add_row("{}"), privacy::core::Error);
  document.begin(1, "t", "s", "now");
  EXPECT_THROW(document.add_row("{}"), privacy::core::Error);
  document.finish();
  EXPECT_THROW(document.begin_table("x"), privacy::core::Error);
}

TEST(ChunkBuffer, CutsExactChunksAndDigestsTheWholeStream) {
  std::vector<std::pair<int, std::string>> chunks;
  ChunkBuffer buffer(4, [&chunks](int seq, std::string_view chunk) {
    chunks.emplace_back(seq, std::string(chunk));
  });
  std::string input = "abcdefghij";
  buffer.append(reinterpret_cast<const unsigned char*>(input.data()), 3);
  EXPECT_TRUE(chunks.empty());
  buffer.append(reinterpret_cast<const unsigned char*>(input.data()) + 3, 7);
  ASSERT_EQ(chunks.size(), 2u);
  buffer.finish();
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], std::make_pair(0, std::string("abcd")));
  EXPECT_EQ(chunks[1], std::make_pair(1, std::string("efgh")));
  EXPECT_EQ(chunks[2], std::make_pair(2, std::string("ij")));
  EXPECT_EQ(buffer.total_bytes(), 10u);
  EXPECT_EQ(buffer.chunks_written(), 3);
  EXPECT_EQ(buffer.sha256_hex(), privacy::core::sha256_hex(input));
}

TEST(ChunkBuffer, EmptyStreamHasNoChunk) {
  int calls = 0;
  ChunkBuffer buffer(8, [&calls](int, std::string_view) { ++calls; });
  buffer.finish();
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(buffer.sha256_hex(), privacy::core::sha256_hex(""));
  EXPECT_THROW(buffer.finish(), privacy::core::Error);
}

// FlatBuffer: bounded by its capacity, with memory that follows use.
#include <gtest/gtest.h>

#include <string>

#include "egress/http/flat_buffer.h"

using gondolin::egress::FlatBuffer;

TEST(FlatBuffer, AllocatesOnFirstUseGrowsByUseAndReleasesWhenEmpty) {
  FlatBuffer b(65 * 1024);
  EXPECT_EQ(b.allocated(), 0u);
  EXPECT_TRUE(b.append(""));
  EXPECT_EQ(b.allocated(), 0u);

  EXPECT_TRUE(b.append(std::string(100, 'a')));
  EXPECT_EQ(b.allocated(), FlatBuffer::kFirstAllocation);
  // Unread bytes fill it: fourfold, then capped at the capacity.
  EXPECT_TRUE(b.append(std::string(FlatBuffer::kFirstAllocation, 'b')));
  EXPECT_EQ(b.allocated(), 4 * FlatBuffer::kFirstAllocation);
  EXPECT_TRUE(b.append(std::string(65 * 1024 - b.size(), 'c')));
  EXPECT_EQ(b.allocated(), 65u * 1024);
  EXPECT_TRUE(b.full());
  EXPECT_EQ(boost::asio::buffer_size(b.prepare()), 0u);
  EXPECT_FALSE(b.append("x"));  // never beyond the capacity
  EXPECT_EQ(b.readable().substr(0, 101), std::string(100, 'a') + "b");

  b.release();  // not empty: kept
  EXPECT_EQ(b.allocated(), 65u * 1024);
  b.consume(b.size());
  b.release();
  EXPECT_EQ(b.allocated(), 0u);
  EXPECT_TRUE(b.empty());
}

TEST(FlatBuffer, ConsumedBytesMakeRoomBeforeItGrows) {
  FlatBuffer b(64 * 1024);
  ASSERT_TRUE(b.append(std::string(FlatBuffer::kFirstAllocation, 'a')));
  b.consume(FlatBuffer::kFirstAllocation - 10);
  ASSERT_TRUE(b.append(std::string(100, 'z')));
  EXPECT_EQ(b.allocated(), FlatBuffer::kFirstAllocation);  // moved to the front, not grown
  EXPECT_EQ(b.readable(), std::string(10, 'a') + std::string(100, 'z'));
}

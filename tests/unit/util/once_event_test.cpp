// util/once_event: the first set() counts, later ones (from any thread) are
// no-ops, and every copy of the future sees it.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "util/once_event.h"

namespace gondolin {
namespace {

using namespace std::chrono_literals;

TEST(OnceEvent, WaitersSeeTheFirstSetAndLaterSetsAreHarmless) {
  OnceEvent gone;
  std::shared_future<void> before = gone.future();
  EXPECT_EQ(before.wait_for(0ms), std::future_status::timeout);
  std::vector<std::thread> setters;
  for (int i = 0; i < 8; ++i) setters.emplace_back([&] { gone.set(); });
  for (auto& t : setters) t.join();
  EXPECT_EQ(before.wait_for(0ms), std::future_status::ready);
  EXPECT_EQ(gone.future().wait_for(0ms), std::future_status::ready);
  EXPECT_NO_THROW(gone.set());
}

}  // namespace
}  // namespace gondolin

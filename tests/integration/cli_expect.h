// What every refused CLI call must look like to its user: exit status 125,
// nothing on stdout, and one line on stderr starting "gondolin: " that names
// what was wrong.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "test_support.h"

namespace gondolin::testing {

inline void expect_one_line_error(const CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 125) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "more than one line: " << r.err;
  EXPECT_EQ(r.err.rfind("gondolin: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

}  // namespace gondolin::testing

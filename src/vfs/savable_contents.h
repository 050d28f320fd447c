// A provider whose files live in this process (vfs::memory) and so must be
// saved with a snapshot and loaded on resume, beside the guest's RAM.
// Internal: a provider is found to be one by dynamic_cast (MountSet).
#pragma once

#include <string>
#include <string_view>

namespace gondolin::vfs {

class SavableContents {
 public:
  virtual ~SavableContents() = default;
  // Every file, directory and attribute, as bytes.
  virtual std::string save_contents() const = 0;
  // Replaces the contents with saved ones; "" or why they are refused
  // (nothing changes then). Untrusted input: checked and bounded.
  virtual std::string load_contents(std::string_view saved) = 0;
};

}  // namespace gondolin::vfs

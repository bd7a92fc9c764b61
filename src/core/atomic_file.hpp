#pragma once
// Writing a whole file so that a reader sees the old file or the new one, never a part:
// the bytes go to a temporary file in the same directory, are synced, and renamed over
// the target. A failed write (a full disk) leaves the old file as it was.
#include <string>

namespace pbt {

// Throws pbt::Error naming `path` and the reason when any step fails; the temporary file
// is removed then.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace pbt

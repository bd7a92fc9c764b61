#pragma once
// Writing a whole file so that a reader sees the old file or the new one, never a part:
// the bytes go to a temporary file in the same directory, are synced, and renamed over
// the target. A failed write (a full disk) leaves the old file as it was.
#include <cstddef>
#include <functional>
#include <string>

namespace pbt {

// Throws pbt::Error naming `path` and the reason when any step fails; the temporary file
// is removed then.
void write_file_atomically(const std::string& path, const std::string& bytes);
// The same, with the bytes made in pieces (a checkpoint streamed from a store): `produce`
// calls `write` for each piece. An exception from `produce` leaves the old file too.
using WritePiece = std::function<void(const char* data, std::size_t n)>;
void write_file_atomically(const std::string& path, const std::function<void(const WritePiece& write)>& produce);

}  // namespace pbt

#pragma once
// GPU placement on the command line: `pbt run --gpus 0,1` and `pbt worker --gpus 2`.
#include <string>
#include <vector>

namespace pbt::cli {

// "0,1" -> {0, 1}; refused (ConfigError naming `option` and the text, so exit 2) unless it
// is integers >= 0, comma-separated, without duplicates.
std::vector<int> parse_gpus(const std::string& text, const std::string& option);

// "0,1": the value CUDA_VISIBLE_DEVICES gets.
std::string gpus_text(const std::vector<int>& gpus);

}  // namespace pbt::cli

#include <mutex>

#include "pbt/trainable.hpp"
#include "trainables/external/process.hpp"
#include "trainables/nqm/nqm.hpp"
#include "trainables/toy/toy.hpp"

namespace pbt {

void register_builtin_trainables() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_toy_trainable();
    register_nqm_trainable();
    register_process_trainable();
  });
}

}  // namespace pbt

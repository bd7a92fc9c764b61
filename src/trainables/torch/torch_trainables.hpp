#pragma once
// The LibTorch trainables (deep RL, GAN, translation). Declared here without any LibTorch
// header, so the command line can register them without paying LibTorch's compile time.
namespace pbt {

// Registers every LibTorch trainable (kinds "rl", "gan", "translation"). Idempotent.
void register_torch_trainables();

// One per domain; each lives in its own folder (rl/, gan/, translation/).
void register_rl_trainable();
void register_gan_trainable();
void register_translation_trainable();

}  // namespace pbt

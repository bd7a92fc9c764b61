// The LibTorch trainables as a plugin (plugins/libpbt_torch.so): `pbt` loads it only when a
// config names one of its kinds, so every other command starts without LibTorch.
#include "pbt/plugin.hpp"
#include "trainables/torch/torch_trainables.hpp"

PBT_PLUGIN(pbt::register_torch_trainables)

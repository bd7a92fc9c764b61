#pragma once
// The pbt library: Population Based Training (Jaderberg et al., 2017).
#include "pbt/checkpoint_io.hpp"
#include "pbt/config.hpp"
#include "pbt/error.hpp"
#include "pbt/hyperparams.hpp"
#include "pbt/lineage.hpp"
#include "pbt/rng.hpp"
#include "pbt/space.hpp"
#include "pbt/store.hpp"
#include "pbt/strategy.hpp"
#include "pbt/trainable.hpp"
#include "pbt/worker.hpp"

// The Spatial path of the CPU engine (kcenter_spatial.cpp), called by
// kcenter() in kcenter.cpp after it has validated the input.
#pragma once

#include <cstdint>

#include "kcenter.hpp"

namespace smallgan {

// Most columns the Spatial path accepts at all (when asked for explicitly);
// the rounding margin of its skip test is proven up to d = 80.
constexpr std::int64_t kSpatialLimitD = 32;

// Runs the traversal on `threads` threads (>= 1).  `in` is already valid
// except for the values of x, which are checked here.
KCenterStats kcenter_spatial(const KCenterInput& in, int threads);

}  // namespace smallgan

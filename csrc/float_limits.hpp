// The largest |x| the float32 distance kernels accept for d columns, shared
// by the CPU engine (kcenter.cpp) and the CUDA kernel (cuda/kcenter.cu).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace smallgan {
// Internal linkage, as in distance.hpp: each translation unit keeps its own
// copy, so no copy compiled with other flags can be picked by the linker.
namespace {

// Squared distances are summed in float32.  The largest one x allows, between
// opposite corners of [-m, m]^d with m = max|x|, is d * (2m)^2; once it
// overflows, distances become inf, every candidate ties and the picks fall to
// the lowest indices.  So the bound on |x| depends on d: m < sqrt(FLT_MAX / d) / 4
// keeps d * (2m)^2 <= FLT_MAX / 4.  The factor 4 covers float32 rounding
// (converting, subtracting, squaring, then summing d terms grows a value by at
// most (1 + 2^-24)^(d + 8) < exp((d + 8) * 2^-24)), which stays below 4 up to
// d = 2.3e7 columns; beyond that the growth itself replaces the 4.
// python/smallgan/coreset.py (_max_abs) mirrors this for the torch fallback.
inline double max_abs_for(std::int64_t d) {
    const double growth = std::max(4.0, std::exp(static_cast<double>(d + 8) * 0x1p-24));
    return 0.5 * std::sqrt(static_cast<double>(std::numeric_limits<float>::max()) /
                           (static_cast<double>(d) * growth));
}

}  // namespace
}  // namespace smallgan

// Distance-update kernels of greedy k-center (farthest-first traversal,
// Alg. 1 of Sinha et al. 2020).
//
// Data layout ("blocked", AoSoA): rows are grouped in blocks of kBlock = 16;
// inside a block the values are stored dimension-major, so
//     P[b * d * 16 + j * 16 + l] = x[b * 16 + l, j].
// One SIMD lane then holds one row: a step needs no horizontal sums at any d,
// and every ISA sums the d terms of a row in the same order (j = 0, 1, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

#include "simd.hpp"

namespace smallgan {

constexpr std::size_t kBlock = 16;

// Min-distance value of rows that are already centres, and of the padding rows
// of the last block.  Any real squared distance is >= 0 > kSelected, so
// min(kSelected, dist) stays kSelected and such rows never win the argmax.
constexpr float kSelected = -1.0f;

struct Best {
    float val;      // largest min-distance (squared) seen
    std::int64_t idx;  // its row; lowest row among equal values; -1 if none
};

// Merge in a fixed order: larger value wins, lower index breaks ties.
inline Best better(Best a, Best b) {
    if (b.val > a.val || (b.val == a.val && b.idx >= 0 && (a.idx < 0 || b.idx < a.idx))) return b;
    return a;
}

// One step of the traversal over blocks [b0, b1):
//   mind[i] = min(mind[i], ||x_i - c||^2) for every row i of those blocks,
// and return the (max, lowest index) of the updated mind.
//   P    IN   blocked data (see above), 64-byte aligned
//   d    IN   dimension
//   c    IN   the new centre, d floats
//   mind IN/OUT squared min-distances, 64-byte aligned, padded to whole blocks
using UpdateFn = Best (*)(const float* P, std::size_t d, const float* c, float* mind,
                          std::size_t b0, std::size_t b1);

Best update_baseline(const float* P, std::size_t d, const float* c, float* mind,
                     std::size_t b0, std::size_t b1);
#if defined(SMALLGAN_HAVE_AVX2)
Best update_avx2(const float* P, std::size_t d, const float* c, float* mind,
                 std::size_t b0, std::size_t b1);
#endif
#if defined(SMALLGAN_HAVE_AVX512)
Best update_avx512(const float* P, std::size_t d, const float* c, float* mind,
                   std::size_t b0, std::size_t b1);
#endif

UpdateFn update_kernel(SimdLevel level);

}  // namespace smallgan

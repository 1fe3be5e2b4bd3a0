// Distance kernels of greedy k-center (farthest-first traversal, Alg. 1 of
// Sinha et al. 2020).
//
// Data layout ("blocked", AoSoA): rows are grouped in blocks of kBlock = 16;
// inside a block the values are stored dimension-major, so
//     P[b * d * 16 + j * 16 + l] = x[b * 16 + l, j].
// One SIMD lane then holds one row: no horizontal sums at any d.
//
// The engine updates blocks lazily (kcenter.cpp), so one call may apply many
// pending centres to a block that sits in L1.  Every (row, centre) distance is
// computed by the same arithmetic whichever path computes it (one centre at a
// time, or several sharing the block's loads): min() is exact, so the
// min-distances, and with them the picks, do not depend on how work was
// grouped or on the thread count.
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
    float val;         // largest min-distance (squared) seen
    std::int64_t idx;  // its row; lowest row among equal values; -1 if none
};

// The helpers below are `static`: each translation unit gets its own copy.
// They are included by the per-ISA files (compiled with -mavx2/-mavx512f); as
// plain `inline` functions an out-of-line copy (e.g. at -O0) would be a weak
// symbol the linker may pick for the baseline code too, which would then
// execute AVX-512 instructions on a CPU without them.

// Merge in a fixed order: larger value wins, lower index breaks ties.
static inline Best better(Best a, Best b) {
    if (b.val > a.val || (b.val == a.val && b.idx >= 0 && (a.idx < 0 || b.idx < a.idx))) return b;
    return a;
}

// Brings one block up to date and returns its farthest row:
//   for each centre q: m[l] = min(m[l], ||x_row(l) - centre_q||^2)
// then (max over the 16 lanes of m, lowest row among equal values).
//   blk   IN     the block: d * 16 floats, 64-byte aligned
//   d     IN     dimension
//   C     IN     `count` centres, contiguous rows of d floats (may be 0)
//   last  IN     one more centre (d floats), or nullptr
//   m     IN/OUT the block's 16 squared min-distances, 64-byte aligned
//   base  IN     row index of the block's lane 0
using ApplyFn = Best (*)(const float* blk, std::size_t d, const float* C, std::size_t count,
                         const float* last, float* m, std::int64_t base);

Best apply_baseline(const float* blk, std::size_t d, const float* C, std::size_t count,
                    const float* last, float* m, std::int64_t base);
#if defined(SMALLGAN_HAVE_AVX2)
Best apply_avx2(const float* blk, std::size_t d, const float* C, std::size_t count,
                const float* last, float* m, std::int64_t base);
#endif
#if defined(SMALLGAN_HAVE_AVX512)
Best apply_avx512(const float* blk, std::size_t d, const float* C, std::size_t count,
                  const float* last, float* m, std::int64_t base);
#endif

ApplyFn apply_kernel(SimdLevel level);

// Lane scan shared by the kernels: max of m[0..16), lowest lane among equals.
static inline Best block_best(const float* m, std::int64_t base) {
    Best best{kSelected, -1};
    for (std::size_t l = 0; l < kBlock; ++l)
        if (m[l] > best.val) best = Best{m[l], base + static_cast<std::int64_t>(l)};
    return best;
}

}  // namespace smallgan

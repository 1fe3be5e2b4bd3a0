// Portable kernel: plain C++ compiled for the baseline ISA (the compiler may
// vectorise the lane loops with SSE2).  Built with -ffp-contract=off so it
// rounds as written (multiply, then add) on every target.
#include "distance.hpp"

#include <algorithm>

namespace smallgan {

Best update_baseline(const float* P, std::size_t d, const float* c, float* mind,
                     std::size_t b0, std::size_t b1) {
    Best best{kSelected, -1};
    for (std::size_t b = b0; b < b1; ++b) {
        const float* blk = P + b * d * kBlock;
        float acc[kBlock] = {0};
        for (std::size_t j = 0; j < d; ++j) {
            const float cj = c[j];
            const float* v = blk + j * kBlock;
            for (std::size_t l = 0; l < kBlock; ++l) {
                const float t = v[l] - cj;
                acc[l] += t * t;
            }
        }
        float* m = mind + b * kBlock;
        for (std::size_t l = 0; l < kBlock; ++l) {
            const float nm = std::min(m[l], acc[l]);
            m[l] = nm;
            // ascending scan + strict '>' keeps the lowest index among ties
            if (nm > best.val) best = Best{nm, static_cast<std::int64_t>(b * kBlock + l)};
        }
    }
    return best;
}

UpdateFn update_kernel(SimdLevel level) {
    switch (level) {
#if defined(SMALLGAN_HAVE_AVX512)
        case SimdLevel::AVX512: return &update_avx512;
#endif
#if defined(SMALLGAN_HAVE_AVX2)
        case SimdLevel::AVX2: return &update_avx2;
#endif
        default: return &update_baseline;
    }
}

}  // namespace smallgan

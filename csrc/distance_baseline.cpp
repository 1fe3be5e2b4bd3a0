// Portable kernel, compiled for the baseline ISA.  With GCC/Clang it uses
// 16-byte vector extensions (SSE2 on x86-64, NEON on ARM): a 16-row block is
// four 4-lane vectors, summed in order j = 0, 1, ... like every other level.
// Built with -ffp-contract=off so it rounds as written (multiply, then add).
#include "distance.hpp"

#include <algorithm>

namespace smallgan {

#if defined(__GNUC__) || defined(__clang__)
namespace {
typedef float v4f __attribute__((vector_size(16), aligned(16)));
}

Best update_baseline(const float* P, std::size_t d, const float* c, float* mind,
                     std::size_t b0, std::size_t b1) {
    Best best{kSelected, -1};
    for (std::size_t b = b0; b < b1; ++b) {
        const v4f* blk = reinterpret_cast<const v4f*>(P + b * d * kBlock);
        v4f a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
        for (std::size_t j = 0; j < d; ++j) {
            const v4f cj = {c[j], c[j], c[j], c[j]};
            const v4f* v = blk + j * 4;
            const v4f t0 = v[0] - cj, t1 = v[1] - cj, t2 = v[2] - cj, t3 = v[3] - cj;
            a0 += t0 * t0;
            a1 += t1 * t1;
            a2 += t2 * t2;
            a3 += t3 * t3;
        }
        alignas(16) float acc[kBlock];
        *reinterpret_cast<v4f*>(acc) = a0;
        *reinterpret_cast<v4f*>(acc + 4) = a1;
        *reinterpret_cast<v4f*>(acc + 8) = a2;
        *reinterpret_cast<v4f*>(acc + 12) = a3;
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
#else
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
            if (nm > best.val) best = Best{nm, static_cast<std::int64_t>(b * kBlock + l)};
        }
    }
    return best;
}
#endif

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

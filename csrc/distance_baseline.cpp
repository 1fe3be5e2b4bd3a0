// Portable kernel, compiled for the baseline ISA.  With GCC/Clang it uses
// 16-byte vector extensions (SSE2 on x86-64, NEON on ARM): a 16-row block is
// four 4-lane vectors (four independent chains); each row sums its d terms in
// order j = 0, 1, ...  Built with -ffp-contract=off so it rounds as written.
#include "distance.hpp"

#include <algorithm>

namespace smallgan {

#if defined(__GNUC__) || defined(__clang__)
namespace {
typedef float v4f __attribute__((vector_size(16), aligned(16)));

inline void one_centre(const v4f* blk, std::size_t d, const float* c, v4f& m0, v4f& m1, v4f& m2,
                       v4f& m3) {
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
    m0 = m0 < a0 ? m0 : a0;
    m1 = m1 < a1 ? m1 : a1;
    m2 = m2 < a2 ? m2 : a2;
    m3 = m3 < a3 ? m3 : a3;
}
}  // namespace

Best apply_baseline(const float* blk, std::size_t d, const float* C, std::size_t count,
                    const float* last, float* m, std::int64_t base) {
    const v4f* b = reinterpret_cast<const v4f*>(blk);
    v4f* mv = reinterpret_cast<v4f*>(m);
    v4f m0 = mv[0], m1 = mv[1], m2 = mv[2], m3 = mv[3];
    for (std::size_t q = 0; q < count; ++q) one_centre(b, d, C + q * d, m0, m1, m2, m3);
    if (last != nullptr) one_centre(b, d, last, m0, m1, m2, m3);
    mv[0] = m0;
    mv[1] = m1;
    mv[2] = m2;
    mv[3] = m3;
    return block_best(m, base);
}
#else
namespace {
void one_centre(const float* blk, std::size_t d, const float* c, float* m) {
    float acc[kBlock] = {0};
    for (std::size_t j = 0; j < d; ++j) {
        const float cj = c[j];
        const float* v = blk + j * kBlock;
        for (std::size_t l = 0; l < kBlock; ++l) {
            const float t = v[l] - cj;
            acc[l] += t * t;
        }
    }
    for (std::size_t l = 0; l < kBlock; ++l) m[l] = std::min(m[l], acc[l]);
}
}  // namespace

Best apply_baseline(const float* blk, std::size_t d, const float* C, std::size_t count,
                    const float* last, float* m, std::int64_t base) {
    for (std::size_t q = 0; q < count; ++q) one_centre(blk, d, C + q * d, m);
    if (last != nullptr) one_centre(blk, d, last, m);
    return block_best(m, base);
}
#endif

ApplyFn apply_kernel(SimdLevel level) {
    switch (level) {
#if defined(SMALLGAN_HAVE_AVX512)
        case SimdLevel::AVX512: return &apply_avx512;
#endif
#if defined(SMALLGAN_HAVE_AVX2)
        case SimdLevel::AVX2: return &apply_avx2;
#endif
        default: return &apply_baseline;
    }
}

}  // namespace smallgan

// AVX2 + FMA kernel.  Compiled with -mavx2 -mfma for this file only; called
// only after the CPU check in simd.cpp.  A 16-row block is two 8-lane vectors;
// two blocks are processed together so four independent FMA chains hide the
// FMA latency (each chain still sums its row's terms in order j = 0, 1, ...).
#include <immintrin.h>

#include "distance.hpp"

namespace smallgan {
namespace {

struct LaneBest {
    __m256 v[2];
    __m256i i[2];
};

inline void fold(LaneBest& lb, float* m, __m256 lo, __m256 hi,
                 std::int32_t base) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 m0 = _mm256_min_ps(_mm256_load_ps(m), lo);
    __m256 m1 = _mm256_min_ps(_mm256_load_ps(m + 8), hi);
    _mm256_store_ps(m, m0);
    _mm256_store_ps(m + 8, m1);
    __m256 g0 = _mm256_cmp_ps(m0, lb.v[0], _CMP_GT_OQ);
    __m256 g1 = _mm256_cmp_ps(m1, lb.v[1], _CMP_GT_OQ);
    lb.v[0] = _mm256_blendv_ps(lb.v[0], m0, g0);
    lb.v[1] = _mm256_blendv_ps(lb.v[1], m1, g1);
    __m256i i0 = _mm256_add_epi32(_mm256_set1_epi32(base), lane);
    __m256i i1 = _mm256_add_epi32(_mm256_set1_epi32(base + 8), lane);
    lb.i[0] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(lb.i[0]),
                                                   _mm256_castsi256_ps(i0), g0));
    lb.i[1] = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(lb.i[1]),
                                                   _mm256_castsi256_ps(i1), g1));
}

}  // namespace

Best update_avx2(const float* P, std::size_t d, const float* c, float* mind,
                 std::size_t b0, std::size_t b1) {
    LaneBest lb;
    lb.v[0] = lb.v[1] = _mm256_set1_ps(kSelected);
    lb.i[0] = lb.i[1] = _mm256_set1_epi32(-1);
    const std::size_t bs = d * kBlock;  // floats per block
    std::size_t b = b0;
    for (; b + 2 <= b1; b += 2) {
        const float* p = P + b * bs;
        const float* q = p + bs;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        for (std::size_t j = 0; j < d; ++j) {
            const __m256 cj = _mm256_broadcast_ss(c + j);
            const __m256 t0 = _mm256_sub_ps(_mm256_load_ps(p + j * kBlock), cj);
            const __m256 t1 = _mm256_sub_ps(_mm256_load_ps(p + j * kBlock + 8), cj);
            const __m256 t2 = _mm256_sub_ps(_mm256_load_ps(q + j * kBlock), cj);
            const __m256 t3 = _mm256_sub_ps(_mm256_load_ps(q + j * kBlock + 8), cj);
            a0 = _mm256_fmadd_ps(t0, t0, a0);
            a1 = _mm256_fmadd_ps(t1, t1, a1);
            a2 = _mm256_fmadd_ps(t2, t2, a2);
            a3 = _mm256_fmadd_ps(t3, t3, a3);
        }
        fold(lb, mind + b * kBlock, a0, a1, static_cast<std::int32_t>(b * kBlock));
        fold(lb, mind + (b + 1) * kBlock, a2, a3,
             static_cast<std::int32_t>((b + 1) * kBlock));
    }
    for (; b < b1; ++b) {
        const float* p = P + b * bs;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (std::size_t j = 0; j < d; ++j) {
            const __m256 cj = _mm256_broadcast_ss(c + j);
            const __m256 t0 = _mm256_sub_ps(_mm256_load_ps(p + j * kBlock), cj);
            const __m256 t1 = _mm256_sub_ps(_mm256_load_ps(p + j * kBlock + 8), cj);
            a0 = _mm256_fmadd_ps(t0, t0, a0);
            a1 = _mm256_fmadd_ps(t1, t1, a1);
        }
        fold(lb, mind + b * kBlock, a0, a1, static_cast<std::int32_t>(b * kBlock));
    }
    alignas(32) float v[16];
    alignas(32) std::int32_t ix[16];
    _mm256_store_ps(v, lb.v[0]);
    _mm256_store_ps(v + 8, lb.v[1]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(ix), lb.i[0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(ix + 8), lb.i[1]);
    Best best{kSelected, -1};
    for (int l = 0; l < 16; ++l) best = better(best, Best{v[l], ix[l]});
    return best;
}

}  // namespace smallgan

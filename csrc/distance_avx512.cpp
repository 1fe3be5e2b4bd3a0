// AVX-512F kernel.  Compiled with -mavx512f (and FMA) for this file only;
// called only after the CPU check in simd.cpp.  A 16-row block is one vector;
// four blocks are processed together so four independent FMA chains hide the
// FMA latency (each chain still sums its row's terms in order j = 0, 1, ...).
#include <immintrin.h>

#include "distance.hpp"

namespace smallgan {
namespace {

inline void fold(__m512& bestv, __m512i& besti, float* m, __m512 acc, std::int32_t base) {
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512 nm = _mm512_min_ps(_mm512_load_ps(m), acc);
    _mm512_store_ps(m, nm);
    const __mmask16 gt = _mm512_cmp_ps_mask(nm, bestv, _CMP_GT_OQ);
    bestv = _mm512_mask_blend_ps(gt, bestv, nm);
    besti = _mm512_mask_blend_epi32(gt, besti, _mm512_add_epi32(_mm512_set1_epi32(base), lane));
}

}  // namespace

Best update_avx512(const float* P, std::size_t d, const float* c, float* mind,
                   std::size_t b0, std::size_t b1) {
    __m512 bestv = _mm512_set1_ps(kSelected);
    __m512i besti = _mm512_set1_epi32(-1);
    const std::size_t bs = d * kBlock;
    std::size_t b = b0;
    for (; b + 4 <= b1; b += 4) {
        const float* p0 = P + b * bs;
        const float* p1 = p0 + bs;
        const float* p2 = p1 + bs;
        const float* p3 = p2 + bs;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        __m512 a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        for (std::size_t j = 0; j < d; ++j) {
            const __m512 cj = _mm512_set1_ps(c[j]);
            const std::size_t o = j * kBlock;
            const __m512 t0 = _mm512_sub_ps(_mm512_load_ps(p0 + o), cj);
            const __m512 t1 = _mm512_sub_ps(_mm512_load_ps(p1 + o), cj);
            const __m512 t2 = _mm512_sub_ps(_mm512_load_ps(p2 + o), cj);
            const __m512 t3 = _mm512_sub_ps(_mm512_load_ps(p3 + o), cj);
            a0 = _mm512_fmadd_ps(t0, t0, a0);
            a1 = _mm512_fmadd_ps(t1, t1, a1);
            a2 = _mm512_fmadd_ps(t2, t2, a2);
            a3 = _mm512_fmadd_ps(t3, t3, a3);
        }
        fold(bestv, besti, mind + b * kBlock, a0, static_cast<std::int32_t>(b * kBlock));
        fold(bestv, besti, mind + (b + 1) * kBlock, a1, static_cast<std::int32_t>((b + 1) * kBlock));
        fold(bestv, besti, mind + (b + 2) * kBlock, a2, static_cast<std::int32_t>((b + 2) * kBlock));
        fold(bestv, besti, mind + (b + 3) * kBlock, a3, static_cast<std::int32_t>((b + 3) * kBlock));
    }
    for (; b < b1; ++b) {
        const float* p = P + b * bs;
        __m512 a0 = _mm512_setzero_ps();
        for (std::size_t j = 0; j < d; ++j) {
            const __m512 t0 = _mm512_sub_ps(_mm512_load_ps(p + j * kBlock), _mm512_set1_ps(c[j]));
            a0 = _mm512_fmadd_ps(t0, t0, a0);
        }
        fold(bestv, besti, mind + b * kBlock, a0, static_cast<std::int32_t>(b * kBlock));
    }
    alignas(64) float v[16];
    alignas(64) std::int32_t ix[16];
    _mm512_store_ps(v, bestv);
    _mm512_store_si512(ix, besti);
    Best best{kSelected, -1};
    for (int l = 0; l < 16; ++l) best = better(best, Best{v[l], ix[l]});
    return best;
}

}  // namespace smallgan

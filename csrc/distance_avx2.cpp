// AVX2 + FMA kernel.  Compiled with -mavx2 -mfma for this file only; called
// only after the CPU check in simd.cpp.  A 16-row block is two 8-lane vectors;
// each (row, centre) distance is summed in two partial sums (j even / j odd,
// then added), so one centre has four independent FMA chains; two centres at a
// time share each load of the block.  Both paths do the same arithmetic per
// distance, so their results are bit-identical.
#include <immintrin.h>

#include "distance.hpp"

namespace smallgan {
namespace {

inline __m256 sq(__m256 v, float c, __m256 acc) {
    const __m256 t = _mm256_sub_ps(v, _mm256_set1_ps(c));
    return _mm256_fmadd_ps(t, t, acc);
}

struct Half2 {
    __m256 lo, hi;
};

inline Half2 one(const float* blk, std::size_t d, const float* c) {
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, h0 = l0, h1 = l0;
    std::size_t j = 0;
    for (; j + 2 <= d; j += 2) {
        const float* p = blk + j * kBlock;
        l0 = sq(_mm256_load_ps(p), c[j], l0);
        h0 = sq(_mm256_load_ps(p + 8), c[j], h0);
        l1 = sq(_mm256_load_ps(p + kBlock), c[j + 1], l1);
        h1 = sq(_mm256_load_ps(p + kBlock + 8), c[j + 1], h1);
    }
    if (j < d) {
        const float* p = blk + j * kBlock;
        l0 = sq(_mm256_load_ps(p), c[j], l0);
        h0 = sq(_mm256_load_ps(p + 8), c[j], h0);
    }
    return Half2{_mm256_add_ps(l0, l1), _mm256_add_ps(h0, h1)};
}

inline void two(const float* blk, std::size_t d, const float* c0, const float* c1, __m256& mlo,
                __m256& mhi) {
    __m256 l0 = _mm256_setzero_ps(), l1 = l0, h0 = l0, h1 = l0;  // centre 0
    __m256 p0 = l0, p1 = l0, q0 = l0, q1 = l0;                   // centre 1
    std::size_t j = 0;
    for (; j + 2 <= d; j += 2) {
        const float* p = blk + j * kBlock;
        const __m256 v0 = _mm256_load_ps(p), w0 = _mm256_load_ps(p + 8);
        const __m256 v1 = _mm256_load_ps(p + kBlock), w1 = _mm256_load_ps(p + kBlock + 8);
        l0 = sq(v0, c0[j], l0);
        h0 = sq(w0, c0[j], h0);
        l1 = sq(v1, c0[j + 1], l1);
        h1 = sq(w1, c0[j + 1], h1);
        p0 = sq(v0, c1[j], p0);
        q0 = sq(w0, c1[j], q0);
        p1 = sq(v1, c1[j + 1], p1);
        q1 = sq(w1, c1[j + 1], q1);
    }
    if (j < d) {
        const float* p = blk + j * kBlock;
        const __m256 v0 = _mm256_load_ps(p), w0 = _mm256_load_ps(p + 8);
        l0 = sq(v0, c0[j], l0);
        h0 = sq(w0, c0[j], h0);
        p0 = sq(v0, c1[j], p0);
        q0 = sq(w0, c1[j], q0);
    }
    mlo = _mm256_min_ps(mlo, _mm256_add_ps(l0, l1));
    mhi = _mm256_min_ps(mhi, _mm256_add_ps(h0, h1));
    mlo = _mm256_min_ps(mlo, _mm256_add_ps(p0, p1));
    mhi = _mm256_min_ps(mhi, _mm256_add_ps(q0, q1));
}

}  // namespace

Best apply_avx2(const float* blk, std::size_t d, const float* C, std::size_t count,
                const float* last, float* m, std::int64_t base) {
    __m256 mlo = _mm256_load_ps(m), mhi = _mm256_load_ps(m + 8);
    std::size_t q = 0;
    for (; q + 2 <= count; q += 2) two(blk, d, C + q * d, C + (q + 1) * d, mlo, mhi);
    for (; q < count; ++q) {
        const Half2 r = one(blk, d, C + q * d);
        mlo = _mm256_min_ps(mlo, r.lo);
        mhi = _mm256_min_ps(mhi, r.hi);
    }
    if (last != nullptr) {
        const Half2 r = one(blk, d, last);
        mlo = _mm256_min_ps(mlo, r.lo);
        mhi = _mm256_min_ps(mhi, r.hi);
    }
    _mm256_store_ps(m, mlo);
    _mm256_store_ps(m + 8, mhi);
    return block_best(m, base);
}

}  // namespace smallgan

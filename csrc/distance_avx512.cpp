// AVX-512F kernel.  Compiled with -mavx512f -mfma for this file only; called
// only after the CPU check in simd.cpp.  A 16-row block is one vector.  Each
// (row, centre) distance is summed in four partial sums (j mod 4, combined as
// (s0 + s1) + (s2 + s3)), which gives four independent FMA chains for a single
// centre; four centres at a time share each load of the block.  Both paths do
// the same arithmetic per distance, so their results are bit-identical.
#include <immintrin.h>

#include "distance.hpp"

namespace smallgan {
namespace {

inline __m512 sq(__m512 v, float c, __m512 acc) {
    const __m512 t = _mm512_sub_ps(v, _mm512_set1_ps(c));
    return _mm512_fmadd_ps(t, t, acc);
}

inline __m512 one(const float* blk, std::size_t d, const float* c) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    std::size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        s0 = sq(_mm512_load_ps(blk + (j + 0) * kBlock), c[j + 0], s0);
        s1 = sq(_mm512_load_ps(blk + (j + 1) * kBlock), c[j + 1], s1);
        s2 = sq(_mm512_load_ps(blk + (j + 2) * kBlock), c[j + 2], s2);
        s3 = sq(_mm512_load_ps(blk + (j + 3) * kBlock), c[j + 3], s3);
    }
    if (j < d) s0 = sq(_mm512_load_ps(blk + j * kBlock), c[j], s0);
    if (j + 1 < d) s1 = sq(_mm512_load_ps(blk + (j + 1) * kBlock), c[j + 1], s1);
    if (j + 2 < d) s2 = sq(_mm512_load_ps(blk + (j + 2) * kBlock), c[j + 2], s2);
    return _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
}

// Four centres c0..c3 (rows of C, stride d), the block loaded once per j.
inline __m512 four(const float* blk, std::size_t d, const float* c, __m512 m) {
    const float* c0 = c;
    const float* c1 = c + d;
    const float* c2 = c + 2 * d;
    const float* c3 = c + 3 * d;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;  // centre 0, partial 0..3
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;                   // centre 1
    __m512 e0 = a0, e1 = a0, e2 = a0, e3 = a0;                   // centre 2
    __m512 f0 = a0, f1 = a0, f2 = a0, f3 = a0;                   // centre 3
    std::size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        const __m512 v0 = _mm512_load_ps(blk + (j + 0) * kBlock);
        const __m512 v1 = _mm512_load_ps(blk + (j + 1) * kBlock);
        const __m512 v2 = _mm512_load_ps(blk + (j + 2) * kBlock);
        const __m512 v3 = _mm512_load_ps(blk + (j + 3) * kBlock);
        a0 = sq(v0, c0[j], a0); a1 = sq(v1, c0[j + 1], a1); a2 = sq(v2, c0[j + 2], a2); a3 = sq(v3, c0[j + 3], a3);
        b0 = sq(v0, c1[j], b0); b1 = sq(v1, c1[j + 1], b1); b2 = sq(v2, c1[j + 2], b2); b3 = sq(v3, c1[j + 3], b3);
        e0 = sq(v0, c2[j], e0); e1 = sq(v1, c2[j + 1], e1); e2 = sq(v2, c2[j + 2], e2); e3 = sq(v3, c2[j + 3], e3);
        f0 = sq(v0, c3[j], f0); f1 = sq(v1, c3[j + 1], f1); f2 = sq(v2, c3[j + 2], f2); f3 = sq(v3, c3[j + 3], f3);
    }
    for (std::size_t r = 0; j + r < d; ++r) {  // tail: partial r, as in one()
        const __m512 v = _mm512_load_ps(blk + (j + r) * kBlock);
        if (r == 0) { a0 = sq(v, c0[j], a0); b0 = sq(v, c1[j], b0); e0 = sq(v, c2[j], e0); f0 = sq(v, c3[j], f0); }
        if (r == 1) { a1 = sq(v, c0[j + 1], a1); b1 = sq(v, c1[j + 1], b1); e1 = sq(v, c2[j + 1], e1); f1 = sq(v, c3[j + 1], f1); }
        if (r == 2) { a2 = sq(v, c0[j + 2], a2); b2 = sq(v, c1[j + 2], b2); e2 = sq(v, c2[j + 2], e2); f2 = sq(v, c3[j + 2], f2); }
    }
    m = _mm512_min_ps(m, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    m = _mm512_min_ps(m, _mm512_add_ps(_mm512_add_ps(b0, b1), _mm512_add_ps(b2, b3)));
    m = _mm512_min_ps(m, _mm512_add_ps(_mm512_add_ps(e0, e1), _mm512_add_ps(e2, e3)));
    m = _mm512_min_ps(m, _mm512_add_ps(_mm512_add_ps(f0, f1), _mm512_add_ps(f2, f3)));
    return m;
}

}  // namespace

Best apply_avx512(const float* blk, std::size_t d, const float* C, std::size_t count,
                  const float* last, float* m, std::int64_t base) {
    __m512 mm = _mm512_load_ps(m);
    std::size_t q = 0;
    for (; q + 4 <= count; q += 4) mm = four(blk, d, C + q * d, mm);
    for (; q < count; ++q) mm = _mm512_min_ps(mm, one(blk, d, C + q * d));
    if (last != nullptr) mm = _mm512_min_ps(mm, one(blk, d, last));
    _mm512_store_ps(m, mm);
    const float top = _mm512_reduce_max_ps(mm);
    if (!(top > kSelected)) return Best{kSelected, -1};
    const __mmask16 eq = _mm512_cmp_ps_mask(mm, _mm512_set1_ps(top), _CMP_EQ_OQ);
    return Best{top, base + __builtin_ctz(static_cast<unsigned>(eq))};
}

}  // namespace smallgan

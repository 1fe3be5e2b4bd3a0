// Exact greedy k-center for low-dimensional x (point clouds): the traversal
// of kcenter.cpp (Alg. 1 of Sinha et al., "Small-GAN", ICML 2020; Gonzalez
// 1985) with the rows arranged so that a step touches only the blocks near
// its new centre.
//
// Layout.  Rows are sorted along a Morton (Z-order) curve over a grid on x's
// bounding box, cells holding more than two blocks' worth of rows ordered
// again on their own box (refine), and packed in that order into the 16-row
// blocks of distance.hpp, each followed by its rows' min-distances.  Over the
// blocks, an 8-ary tree (a linear bounding volume hierarchy): a node holds,
// for each child, the bounding box of its rows and the best (largest
// min-distance, lowest original index) of its unselected rows.
//
// Step.  The new centre c walks the tree from the root and skips every child
// whose box is at least as far from c as the largest min-distance below it:
// no row there can get closer to c than it already is to its nearest centre
// (the bucket pruning of QuickFPS, Han et al. 2023, which fpsample's
// bucket_fps_kdline_sampling implements).  Blocks it reaches are updated
// with the block kernel the Blocked path uses, and the maxima are recomputed
// on the way back up, so the root holds the next pick.
//
// Exact.  A skipped block provably keeps every value (kSkipRel allows for
// float rounding), min() is exact, and the kernel is the one every path
// calls: each row's min-distance is bit-for-bit the eager algorithm's.  Ties
// go to the lowest original index (compared through perm), a total order, so
// the picks depend neither on the order of the rows nor on the tree's shape.
#include "kcenter_spatial.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "distance.hpp"
#include "packing.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace smallgan {
namespace {

// Rounding margin of the skip test (Walk::candidates).  For a row x inside
// a node's box, the exact distance satisfies |x - c|^2 >= L, the exact
// squared distance from c to the box.  The kernel's float result for
// |x - c|^2 is at least |x - c|^2 (1 - u)^(d + 3) (one rounding per
// subtraction, product and sum; u = 2^-24); the box distance computed here is
// at most L (1 + u)^(d + 3).  So float(|x - c|^2) >= L_computed
// (1 - (2d + 6) u), and L_computed >= bound (1 + 1e-5) implies
// float(|x - c|^2) >= bound for d up to 80 (kSpatialLimitD).  The margin is
// needed: the AVX2 and AVX-512 kernels sum the d squares in another order
// than the box test, and rows exist whose distance comes out an ulp below
// the box test's (tests/test_coreset_spatial.py builds one per level).  The
// absolute term covers underflow, where each rounding can lose 2^-149 (no
// case was found where it matters: sums of subnormals are exact; it keeps the
// argument whole).
constexpr float kSkipRel = 1.0f + 1e-5f;
constexpr float kSkipAbs = std::numeric_limits<float>::min();

constexpr std::int32_t kNoRow = std::numeric_limits<std::int32_t>::max();

struct NodeBest {
    float val;          // largest min-distance (squared) of an unselected row below; kSelected if none
    std::int32_t pos;   // its sorted position (lowest original index among equal values); kNoRow if none
};

// The total order of the argmax: larger value, then lower original index.
// Positions are compared through perm only on exact ties (rare: repeated
// points, or rows all at distance 0), so a walk rarely touches perm.
inline NodeBest best_of(NodeBest a, NodeBest b, const std::int32_t* perm) {
    if (b.val != a.val) return b.val > a.val ? b : a;
    if (b.pos == kNoRow) return a;
    if (a.pos == kNoRow) return b;
    return perm[b.pos] < perm[a.pos] ? b : a;
}

constexpr std::size_t kFan = 8;  // children per tree node

// The blocks under an 8-ary tree.  Level 0 is the root; the children of node
// i of level h are nodes 8i .. 8i + 7 of level h + 1, and those of the last
// level (height - 1) are blocks 8i .. 8i + 7.  A node stores its 8
// children's boxes and bests side by side, so one pass over 8 lanes tests
// them all.  Missing children (past the last block) have an empty box and
// value kSelected, so no test ever selects them.
struct Tree {
    std::size_t blocks = 0;
    int height = 1;
    std::size_t fs = 0;                         // floats per node: (2d + 1) * 8
    std::vector<std::vector<float>> f;          // per level, node i at [i fs): lo[d][8], hi[d][8], val[8]
    std::vector<std::vector<std::int32_t>> o;   // per level, node i at [8 i): pos[8]
    NodeBest root{kSelected, kNoRow};
};

// Morton order: the bits of the d quantised coordinates interleaved, so
// sorting by code walks a Z-shaped curve through the grid.
inline std::uint64_t spread2(std::uint64_t x) {  // bit i -> bit 2i (32 bits)
    x &= 0xffffffffu;
    x = (x | (x << 16)) & 0x0000ffff0000ffffull;
    x = (x | (x << 8)) & 0x00ff00ff00ff00ffull;
    x = (x | (x << 4)) & 0x0f0f0f0f0f0f0f0full;
    x = (x | (x << 2)) & 0x3333333333333333ull;
    x = (x | (x << 1)) & 0x5555555555555555ull;
    return x;
}
inline std::uint64_t spread3(std::uint64_t x) {  // bit i -> bit 3i (21 bits)
    x &= 0x1fffffu;
    x = (x | (x << 32)) & 0x001f00000000ffffull;
    x = (x | (x << 16)) & 0x001f0000ff0000ffull;
    x = (x | (x << 8)) & 0x100f00f00f00f00full;
    x = (x | (x << 4)) & 0x10c30c30c30c30c3ull;
    x = (x | (x << 2)) & 0x1249249249249249ull;
    return x;
}

struct Morton {
    int d = 1, bits = 0;          // bits per coordinate (0: keep the input order)
    std::uint64_t spread[256] = {};  // any d: a byte's 8 bits placed every d-th bit
    float lo[kSpatialLimitD] = {}, scale = 0.0f, top_f = 0.0f;
    std::uint64_t top = 0;        // 2^bits - 1

    void init(int d_, int bits_, const float* lo_, double range) {
        d = d_;
        bits = bits_;
        std::copy(lo_, lo_ + d, lo);
        top = bits > 0 ? (std::uint64_t{1} << bits) - 1 : 0;
        top_f = static_cast<float>(top);
        // one scale for every axis keeps the cells cubic for flat data
        // (capped: a box a few ulps wide must not make the scale inf, and
        // (x - lo) * scale then NaN)
        scale = range > 0.0 ? static_cast<float>(std::min(static_cast<double>(top) / range, 1e37)) : 0.0f;
        for (unsigned v = 0; v < 256; ++v) {
            std::uint64_t s = 0;
            for (int b = 0; b < 8 && b * d < 64; ++b)
                if ((v >> b) & 1u) s |= std::uint64_t{1} << (b * d);
            spread[v] = s;
        }
    }

    // The cell of a coordinate; rounding only moves a row to a neighbouring
    // cell, which changes the order a little and the results not at all.
    std::uint64_t cell(float x, int j) const {
        const float v = std::min(std::max((x - lo[j]) * scale, 0.0f), top_f);
        return std::min(static_cast<std::uint64_t>(v), top);
    }

    std::uint64_t code(const float* row) const {
        if (bits == 0) return 0;
        if (d == 2) return spread2(cell(row[0], 0)) | (spread2(cell(row[1], 1)) << 1);
        if (d == 3) return spread3(cell(row[0], 0)) | (spread3(cell(row[1], 1)) << 1) | (spread3(cell(row[2], 2)) << 2);
        std::uint64_t c = 0;
        for (int j = 0; j < d; ++j) {
            const std::uint64_t q = cell(row[j], j);
            for (int i = 0; 8 * i < bits; ++i) c |= spread[(q >> (8 * i)) & 0xff] << (8 * i * d + j);
        }
        return c;
    }
};

// Stable LSD radix sort of a[0, n) on bits [lo_bit, lo_bit + bits) of each
// key; tmp has room for n keys.  Stable, so keys with equal codes keep their
// input (original index) order.
void radix_sort(std::uint64_t* a, std::uint64_t* tmp, std::size_t n, int lo_bit, int bits) {
    if (bits <= 0 || n < 2) return;
    const int passes = (bits + 10) / 11;  // digits of at most 11 bits: 16 KiB of counters
    const int w = (bits + passes - 1) / passes;
    std::vector<std::size_t> count(std::size_t{1} << w);
    const std::uint64_t mask = (std::uint64_t{1} << w) - 1;
    std::uint64_t* src = a;
    std::uint64_t* dst = tmp;
    for (int p = 0; p < passes; ++p) {
        const int shift = lo_bit + p * w;
        std::fill(count.begin(), count.end(), 0);
        for (std::size_t i = 0; i < n; ++i) ++count[(src[i] >> shift) & mask];
        if (std::any_of(count.begin(), count.end(), [n](std::size_t c) { return c == n; }))
            continue;  // one digit value throughout: this pass would not move anything
        std::size_t sum = 0;
        for (auto& c : count) {
            const std::size_t t = c;
            c = sum;
            sum += t;
        }
        for (std::size_t i = 0; i < n; ++i) dst[count[(src[i] >> shift) & mask]++] = src[i];
        std::swap(src, dst);
    }
    if (src != a) std::memcpy(a, src, n * sizeof(std::uint64_t));
}

int bit_width(std::uint64_t v) {
    int b = 0;
    while (v != 0) {
        ++b;
        v >>= 1;
    }
    return b;
}

// Bits per coordinate for m rows in d dimensions: cells 2^-3 as wide as
// those of a uniform grid with one row per cell, within the 64 - idx_bits
// the key has room for.
int morton_bits(std::uint64_t m, int d, int idx_bits) {
    return std::min({(64 - idx_bits) / d, (bit_width(m) + d - 1) / d + 3, 32});
}

// More rows than this in one Morton cell are ordered again inside the cell.
constexpr std::size_t kRunMax = 2 * kBlock;
// Refinement depth limit (each level is about 2^(bits) times finer; rows
// that are still together after that many levels are near-duplicates).
constexpr int kMaxRefine = 6;

template <typename Read>
void refine_runs(std::uint64_t* keys, std::uint64_t* tmp, std::size_t a, std::size_t b, int idx_bits, int d,
                 Read& read, int depth);

// Orders keys[a, b), which share one Morton cell, by a Morton code on their
// own bounding box, and recurses into the cells of that grid that still hold
// more than kRunMax rows.  This makes the order adaptive like an octree: a
// tight cluster far from the rest of x (where the global grid would put
// everything in one cell, leaving its blocks in index order and their boxes
// as large as the cluster) gets blocks as compact as uniform data.  Rows
// that all coincide keep their index order.
template <typename Read>
void refine(std::uint64_t* keys, std::uint64_t* tmp, std::size_t a, std::size_t b, int idx_bits, int d,
            Read& read, int depth) {
    const std::uint64_t idx_mask = (std::uint64_t{1} << idx_bits) - 1;
    float lo[kSpatialLimitD], hi[kSpatialLimitD], r[kSpatialLimitD];
    std::fill(lo, lo + d, std::numeric_limits<float>::infinity());
    std::fill(hi, hi + d, -std::numeric_limits<float>::infinity());
    for (std::size_t i = a; i < b; ++i) {
        read(static_cast<std::int64_t>(keys[i] & idx_mask), r);
        for (int j = 0; j < d; ++j) {
            lo[j] = std::min(lo[j], r[j]);
            hi[j] = std::max(hi[j], r[j]);
        }
    }
    double range = 0.0;
    for (int j = 0; j < d; ++j) range = std::max(range, static_cast<double>(hi[j]) - static_cast<double>(lo[j]));
    if (range == 0.0) return;  // all the same point
    const int bits = morton_bits(b - a, d, idx_bits);
    Morton mc;
    mc.init(d, bits, lo, range);
    for (std::size_t i = a; i < b; ++i) {
        const std::uint64_t idx = keys[i] & idx_mask;
        read(static_cast<std::int64_t>(idx), r);
        keys[i] = (mc.code(r) << idx_bits) | idx;
    }
    radix_sort(keys + a, tmp, b - a, idx_bits, bits * d);
    if (depth < kMaxRefine) refine_runs(keys, tmp, a, b, idx_bits, d, read, depth + 1);
}

// Refines every run of equal Morton code in keys[a, b) longer than kRunMax.
template <typename Read>
void refine_runs(std::uint64_t* keys, std::uint64_t* tmp, std::size_t a, std::size_t b, int idx_bits, int d,
                 Read& read, int depth) {
    for (std::size_t s = a; s < b;) {
        const std::uint64_t code = keys[s] >> idx_bits;
        std::size_t e = s + 1;
        while (e < b && (keys[e] >> idx_bits) == code) ++e;
        if (e - s > kRunMax) refine(keys, tmp, s, e, idx_bits, d, read, depth);
        s = e;
    }
}

// The kernel returns the lowest lane among a block's largest values; the
// rows of a block are in Morton order, so on a tie (several lanes equal to
// the largest value: repeated points, or rows all at distance 0) the lowest
// original index is found here.  perm is read only then.
inline std::int32_t lowest_index_among_ties(const float* md, Best bb, const std::int32_t* perm) {
    const std::int64_t base = bb.idx - bb.idx % static_cast<std::int64_t>(kBlock);
#if defined(__SSE2__)
    const __m128 top = _mm_set1_ps(bb.val);
    const unsigned eq = static_cast<unsigned>(_mm_movemask_ps(_mm_cmpeq_ps(_mm_load_ps(md), top))) |
                        static_cast<unsigned>(_mm_movemask_ps(_mm_cmpeq_ps(_mm_load_ps(md + 4), top))) << 4 |
                        static_cast<unsigned>(_mm_movemask_ps(_mm_cmpeq_ps(_mm_load_ps(md + 8), top))) << 8 |
                        static_cast<unsigned>(_mm_movemask_ps(_mm_cmpeq_ps(_mm_load_ps(md + 12), top))) << 12;
#else
    unsigned eq = 0;
    for (std::size_t l = 0; l < kBlock; ++l) eq |= static_cast<unsigned>(md[l] == bb.val) << l;
#endif
    std::int32_t pos = static_cast<std::int32_t>(bb.idx);
    for (unsigned rest = eq & (eq - 1); rest != 0; rest &= rest - 1) {  // the lanes after the first
        const std::int32_t p = static_cast<std::int32_t>(base) + __builtin_ctz(rest);
        if (perm[p] < perm[pos]) pos = p;
    }
    return pos;
}

// The walk of one step over the tree.  D > 0: d known at compile time (the
// box tests unroll); D == 0: any d.
template <int D>
struct Walk {
    Tree& t;
    std::size_t d;
    float* B;             // the blocks: rows (d x 16 floats) then min-distances (16), per block
    const std::int32_t* perm;
    ApplyFn apply;
    const float* c;       // the new centre, d floats
    std::size_t forced;   // 1 + the block holding c (its row was just marked), or 0
    std::int64_t updates = 0;

    std::size_t dims() const { return D > 0 ? static_cast<std::size_t>(D) : d; }
    float* block(std::size_t b) const { return B + b * (dims() + 1) * kBlock; }

    // The children of a node that c may bring closer: lane j is set unless
    // every row below child j is already at least as close to a centre as
    // it can be to c (no unselected row, all at distance 0, or the box
    // too far: see kSkipRel for the rounding).
    unsigned candidates(const float* nd) const {
        const std::size_t dd = dims();
        const float* val = nd + 2 * dd * kFan;
#if defined(__SSE2__)
        // two 4-lane halves (SSE2 is part of x86-64 itself)
        const __m128 zero = _mm_setzero_ps();
        __m128 s0 = zero, s1 = zero;
        for (std::size_t k = 0; k < dd; ++k) {
            const __m128 ck = _mm_set1_ps(c[k]);
            const float* lo = nd + k * kFan;
            const float* hi = nd + (dd + k) * kFan;
            // at most one of lo - c and c - hi is positive
            const __m128 g0 = _mm_max_ps(_mm_max_ps(_mm_sub_ps(_mm_loadu_ps(lo), ck), _mm_sub_ps(ck, _mm_loadu_ps(hi))), zero);
            const __m128 g1 = _mm_max_ps(_mm_max_ps(_mm_sub_ps(_mm_loadu_ps(lo + 4), ck), _mm_sub_ps(ck, _mm_loadu_ps(hi + 4))), zero);
            s0 = _mm_add_ps(s0, _mm_mul_ps(g0, g0));
            s1 = _mm_add_ps(s1, _mm_mul_ps(g1, g1));
        }
        const __m128 rel = _mm_set1_ps(kSkipRel), abs = _mm_set1_ps(kSkipAbs);
        const __m128 v0 = _mm_loadu_ps(val), v1 = _mm_loadu_ps(val + 4);
        const __m128 go0 = _mm_and_ps(_mm_cmpgt_ps(v0, zero), _mm_cmplt_ps(s0, _mm_add_ps(_mm_mul_ps(v0, rel), abs)));
        const __m128 go1 = _mm_and_ps(_mm_cmpgt_ps(v1, zero), _mm_cmplt_ps(s1, _mm_add_ps(_mm_mul_ps(v1, rel), abs)));
        return static_cast<unsigned>(_mm_movemask_ps(go0)) | (static_cast<unsigned>(_mm_movemask_ps(go1)) << 4);
#else
        float g2[kFan] = {};
        for (std::size_t k = 0; k < dd; ++k) {
            const float* lo = nd + k * kFan;
            const float* hi = nd + (dd + k) * kFan;
            for (std::size_t j = 0; j < kFan; ++j) {
                const float g = std::max(std::max(lo[j] - c[k], c[k] - hi[j]), 0.0f);
                g2[j] += g * g;
            }
        }
        unsigned mask = 0;
        for (std::size_t j = 0; j < kFan; ++j)
            mask |= static_cast<unsigned>(val[j] > 0.0f && g2[j] < val[j] * kSkipRel + kSkipAbs) << j;
        return mask;
#endif
    }

    // Brings node i of level h up to date.  Returns whether a child's best
    // changed, and then the node's new best in `out`.
    bool visit(int h, std::size_t i, NodeBest& out) {
        const std::size_t dd = dims();
        float* nd = t.f[static_cast<std::size_t>(h)].data() + i * t.fs;
        std::int32_t* pos = t.o[static_cast<std::size_t>(h)].data() + i * kFan;
        float* val = nd + 2 * dd * kFan;
        unsigned mask = candidates(nd);
        if (forced != 0) {
            const std::size_t fb = forced - 1;
            const int below = 3 * (t.height - 1 - h);  // bits of fb below this level's child index
            if ((fb >> (below + 3)) == i) mask |= 1u << ((fb >> below) & 7u);
        }
        const bool leaves = h + 1 == t.height;
        // Start every load first: the blocks (or child nodes) of one step are
        // scattered, and waiting on each miss in turn is what a walk costs.
        for (unsigned todo = mask; todo != 0; todo &= todo - 1) {
            const std::size_t j = static_cast<std::size_t>(__builtin_ctz(todo));
            const char* p = leaves ? reinterpret_cast<const char*>(block(i * kFan + j))
                                   : reinterpret_cast<const char*>(t.f[static_cast<std::size_t>(h) + 1].data() + (i * kFan + j) * t.fs);
            const std::size_t bytes = leaves ? (dd + 1) * kBlock * sizeof(float) : t.fs * sizeof(float);
            for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
        }
        bool changed = false;
        while (mask != 0) {
            const std::size_t j = static_cast<std::size_t>(__builtin_ctz(mask));
            mask &= mask - 1;
            NodeBest now;
            if (leaves) {
                const std::size_t b = i * kFan + j;
                float* blk = block(b);
                const Best bb = apply(blk, dd, nullptr, 0, c, blk + dd * kBlock, static_cast<std::int64_t>(b * kBlock));
                ++updates;
                now = NodeBest{bb.val, bb.idx >= 0 ? lowest_index_among_ties(blk + dd * kBlock, bb, perm) : kNoRow};
            } else if (!visit(h + 1, i * kFan + j, now)) {
                continue;
            }
            if (now.val != val[j] || now.pos != pos[j]) {
                val[j] = now.val;
                pos[j] = now.pos;
                changed = true;
            }
        }
        if (!changed) return false;
        out = NodeBest{val[0], pos[0]};
        for (std::size_t j = 1; j < kFan; ++j) out = best_of(out, NodeBest{val[j], pos[j]}, perm);
        return true;
    }
};

template <int D>
std::int64_t walk(Tree& t, std::size_t d, float* B, const std::int32_t* perm, ApplyFn apply, const float* c,
                  std::size_t forced) {
    Walk<D> w{t, d, B, perm, apply, c, forced};
    NodeBest root;
    if (w.visit(0, 0, root)) t.root = root;
    return w.updates;
}

using WalkFn = std::int64_t (*)(Tree&, std::size_t, float*, const std::int32_t*, ApplyFn, const float*, std::size_t);

WalkFn walk_for(std::int64_t d) {
    switch (d) {
        case 1: return &walk<1>;
        case 2: return &walk<2>;
        case 3: return &walk<3>;
        case 4: return &walk<4>;
        case 5: return &walk<5>;
        case 6: return &walk<6>;
        case 7: return &walk<7>;
        case 8: return &walk<8>;
        default: return &walk<0>;
    }
}

// Builds the tree once the blocks are packed: block boxes as
// packing found them (bbox: lo[d], hi[d] per block), values +inf (the first centre visits every block), then the levels
// above, bottom-up.
void build_tree(Tree& t, std::size_t d, const float* bbox, const std::int32_t* perm) {
    const float inf = std::numeric_limits<float>::infinity();
    const std::size_t nbl = t.blocks;
    t.height = 1;
    for (std::size_t cap = kFan; cap < nbl; cap *= kFan) ++t.height;
    t.fs = (2 * d + 1) * kFan;
    t.f.assign(static_cast<std::size_t>(t.height), {});
    t.o.assign(static_cast<std::size_t>(t.height), {});
    std::vector<std::size_t> count(static_cast<std::size_t>(t.height));
    std::size_t below = nbl;
    for (int h = t.height - 1; h >= 0; --h) {
        below = (below + kFan - 1) / kFan;
        count[static_cast<std::size_t>(h)] = below;
        t.f[static_cast<std::size_t>(h)].resize(below * t.fs);
        t.o[static_cast<std::size_t>(h)].assign(below * kFan, kNoRow);
    }
    // child j of node i at level h: empty, or the box/best given by `fill`
    auto set_child = [&](int h, std::size_t i, std::size_t j, const float* lo, const float* hi, NodeBest nb) {
        float* nd = t.f[static_cast<std::size_t>(h)].data() + i * t.fs;
        for (std::size_t k = 0; k < d; ++k) {
            nd[k * kFan + j] = lo != nullptr ? lo[k] : inf;
            nd[(d + k) * kFan + j] = hi != nullptr ? hi[k] : -inf;
        }
        nd[2 * d * kFan + j] = nb.val;
        t.o[static_cast<std::size_t>(h)][i * kFan + j] = nb.pos;
    };
    std::vector<float> lo(d), hi(d);
    const int last = t.height - 1;
    for (std::size_t i = 0; i < count[static_cast<std::size_t>(last)]; ++i)
        for (std::size_t j = 0; j < kFan; ++j) {
            const std::size_t b = i * kFan + j;
            if (b >= t.blocks) {
                set_child(last, i, j, nullptr, nullptr, NodeBest{kSelected, kNoRow});
                continue;
            }
            const float* box = bbox + b * 2 * d;
            std::copy(box, box + d, lo.begin());
            std::copy(box + d, box + 2 * d, hi.begin());
            set_child(last, i, j, lo.data(), hi.data(), NodeBest{inf, kNoRow});
        }
    for (int h = last - 1; h >= 0; --h)
        for (std::size_t i = 0; i < count[static_cast<std::size_t>(h)]; ++i)
            for (std::size_t j = 0; j < kFan; ++j) {
                const std::size_t ci = i * kFan + j;
                if (ci >= count[static_cast<std::size_t>(h + 1)]) {
                    set_child(h, i, j, nullptr, nullptr, NodeBest{kSelected, kNoRow});
                    continue;
                }
                const float* cn = t.f[static_cast<std::size_t>(h + 1)].data() + ci * t.fs;
                const std::int32_t* co = t.o[static_cast<std::size_t>(h + 1)].data() + ci * kFan;
                NodeBest nb{kSelected, kNoRow};
                for (std::size_t k = 0; k < d; ++k) {
                    lo[k] = inf;
                    hi[k] = -inf;
                }
                for (std::size_t q = 0; q < kFan; ++q) {
                    for (std::size_t k = 0; k < d; ++k) {
                        lo[k] = std::min(lo[k], cn[k * kFan + q]);
                        hi[k] = std::max(hi[k], cn[(d + k) * kFan + q]);
                    }
                    nb = best_of(nb, NodeBest{cn[2 * d * kFan + q], co[q]}, perm);
                }
                set_child(h, i, j, lo.data(), hi.data(), nb);
            }
    const float* rn = t.f[0].data();
    t.root = NodeBest{kSelected, kNoRow};
    for (std::size_t q = 0; q < kFan; ++q) t.root = best_of(t.root, NodeBest{rn[2 * d * kFan + q], t.o[0][q]}, perm);
}

// This thread's place in the current parallel region (a team of one
// without OpenMP), and a barrier that is free for a team of one.
struct Team {
    int tid = 0, nt = 1;
    void barrier() const {
#if defined(_OPENMP)
        if (nt > 1) {
#pragma omp barrier
        }
#endif
    }
};

Team team() {
#if defined(_OPENMP)
    return Team{omp_get_thread_num(), omp_get_num_threads()};
#else
    return Team{};
#endif
}

}  // namespace

KCenterStats kcenter_spatial(const KCenterInput& in, int T) {
    const std::int64_t n = in.n, d = in.d;
    const std::int64_t S = static_cast<std::int64_t>(in.selected.size());
    if (d > kSpatialLimitD)
        throw std::invalid_argument("the spatial path takes at most " + std::to_string(kSpatialLimitD) +
                                    " columns, got d = " + std::to_string(d));
    const ApplyFn apply = apply_kernel(in.simd);
    const WalkFn walk_fn = walk_for(d);
    const std::size_t ud = static_cast<std::size_t>(d);
    const int di = static_cast<int>(d);
    const std::size_t nb = static_cast<std::size_t>((n + kBlock - 1) / kBlock);
    T = static_cast<int>(std::max<std::size_t>(1, std::min<std::size_t>(static_cast<std::size_t>(T), nb)));

    KCenterStats out;
    out.threads_used = T;
    out.path = Path::Spatial;

    // Sort keys: Morton code above the original index, so one 64-bit sort
    // carries the permutation.  Freed before the blocks are allocated, so
    // peak memory stays one float32 copy plus O(n).
    const int idx_bits = std::max(1, bit_width(static_cast<std::uint64_t>(n - 1)));
    const int bits = morton_bits(static_cast<std::uint64_t>(n), di, idx_bits);
    AlignedBuf<std::uint64_t> keys = aligned_array<std::uint64_t>(static_cast<std::size_t>(n));
    Morton mc;
    // The blocks: block b at B + b * bs holds its rows (distance.hpp's d x 16
    // layout) and then their 16 min-distances, so one update reads one
    // contiguous stretch.
    const std::size_t bs = (ud + 1) * kBlock;
    AlignedBuf<float> B;
    std::vector<std::int32_t> perm;       // sorted position -> original row (kNoRow: padding)
    std::vector<float> bbox(nb * 2 * ud);  // per block: lo[d], hi[d] of its rows
    // per-thread bounds; a team smaller than T (OMP_DYNAMIC) leaves the rest empty
    std::vector<float> tlo(static_cast<std::size_t>(T) * ud, std::numeric_limits<float>::infinity());
    std::vector<float> thi(static_cast<std::size_t>(T) * ud, -std::numeric_limits<float>::infinity());
    std::vector<char> chunk_ok(static_cast<std::size_t>(T), 1);

    // Building is split over the threads (two parallel regions, three
    // barriers in all); the walk runs on one thread, after them: a step
    // touches a few dozen blocks around one centre, less work than a
    // per-step barrier would cost, and the result is then trivially the same
    // for any thread count.  Everything that allocates (and so may throw)
    // runs between the regions: no exception may leave an OpenMP region.
#if defined(_OPENMP)
#pragma omp parallel num_threads(T) if (T > 1)
#endif
    {
        const Team tm = team();
        // 1. Check the values and find the bounding box (rows split evenly).
        const std::int64_t i0 = n * tm.tid / tm.nt, i1 = n * (tm.tid + 1) / tm.nt;
        const std::size_t utid = static_cast<std::size_t>(tm.tid);
        chunk_ok[utid] = with_row_reader(in, [&](auto read) {
            // local arrays: the compiler keeps them apart from x (no aliasing)
            float lo[kSpatialLimitD], hi[kSpatialLimitD], r[kSpatialLimitD];
            std::fill(lo, lo + ud, std::numeric_limits<float>::infinity());
            std::fill(hi, hi + ud, -std::numeric_limits<float>::infinity());
            bool ok = true;
            for (std::int64_t i = i0; i < i1; ++i) {
                ok &= read(i, r);
                for (std::size_t j = 0; j < ud; ++j) {
                    lo[j] = std::min(lo[j], r[j]);
                    hi[j] = std::max(hi[j], r[j]);
                }
            }
            std::copy(lo, lo + ud, tlo.data() + utid * ud);
            std::copy(hi, hi + ud, thi.data() + utid * ud);
            return ok;
        }) ? 1 : 0;
    }
    if (!std::all_of(chunk_ok.begin(), chunk_ok.end(), [](char c) { return c != 0; }))
        throw std::invalid_argument(describe_bad_values(in));

    // 2. The grid: between the 1st and 99th percentiles of a strided sample
    // of rows in each column (one scale for all), not the full bounding box:
    // a few far points would otherwise squeeze most rows into a few cells,
    // and re-sorting those (refine) would cost a second full build.  Rows
    // outside are clamped into the edge cells and ordered there by refine.
    {
        const std::size_t m = static_cast<std::size_t>(std::min<std::int64_t>(n, 4096));
        std::vector<float> sample(m * ud);
        with_row_reader(in, [&](auto read) {
            float r[kSpatialLimitD];
            for (std::size_t q = 0; q < m; ++q) {
                read(static_cast<std::int64_t>(q * static_cast<std::size_t>(n) / m), r);
                for (std::size_t j = 0; j < ud; ++j) sample[j * m + q] = r[j];
            }
            return true;
        });
        float glo[kSpatialLimitD];
        double range = 0.0, full = 0.0;
        for (std::size_t j = 0; j < ud; ++j) {
            float l = tlo[j], h = thi[j];
            for (std::size_t q = 1; q < static_cast<std::size_t>(T); ++q) {
                l = std::min(l, tlo[q * ud + j]);
                h = std::max(h, thi[q * ud + j]);
            }
            float* col = sample.data() + j * m;
            std::nth_element(col, col + m / 100, col + m);
            const float p01 = col[m / 100];
            std::nth_element(col, col + (m - 1) - m / 100, col + m);
            const float p99 = col[(m - 1) - m / 100];
            glo[j] = p01;
            range = std::max(range, static_cast<double>(p99) - static_cast<double>(p01));
            full = std::max(full, static_cast<double>(h) - static_cast<double>(l));
        }
        if (range == 0.0) {  // mostly one point: the full box, from its low corner
            for (std::size_t j = 0; j < ud; ++j) {
                float l = tlo[j];
                for (std::size_t q = 1; q < static_cast<std::size_t>(T); ++q) l = std::min(l, tlo[q * ud + j]);
                glo[j] = l;
            }
            range = full;
        }
        mc.init(di, bits, glo, range);
    }

    // Morton keys, rows split over the threads.
#if defined(_OPENMP)
#pragma omp parallel num_threads(T) if (T > 1)
#endif
    {
        const Team tm = team();
        const std::int64_t i0 = n * tm.tid / tm.nt, i1 = n * (tm.tid + 1) / tm.nt;
        with_row_reader(in, [&](auto read) {
            float r[kSpatialLimitD];
            for (std::int64_t i = i0; i < i1; ++i) {
                read(i, r);
                keys[i] = (mc.code(r) << idx_bits) | static_cast<std::uint64_t>(i);
            }
            return true;
        });
    }

    // 3. Sort and refine crowded cells, read out the permutation, swap the
    // keys for the blocks (peak memory: keys and scratch, or the blocks).
    {
        AlignedBuf<std::uint64_t> scratch = aligned_array<std::uint64_t>(static_cast<std::size_t>(n));
        radix_sort(keys.get(), scratch.get(), static_cast<std::size_t>(n), idx_bits, bits * di);
        with_row_reader(in, [&](auto read) {
            refine_runs(keys.get(), scratch.get(), 0, static_cast<std::size_t>(n), idx_bits, di, read, 1);
            return true;
        });
    }
    perm.assign(nb * kBlock, kNoRow);
    const std::uint64_t idx_mask = (std::uint64_t{1} << idx_bits) - 1;
    for (std::int64_t p = 0; p < n; ++p) perm[static_cast<std::size_t>(p)] = static_cast<std::int32_t>(keys[p] & idx_mask);
    keys.reset();
    B = aligned_array<float>(nb * bs);

    // 4. Pack each thread's share of the blocks (first touch by the thread
    // that packs them) and note each block's box.
#if defined(_OPENMP)
#pragma omp parallel num_threads(T) if (T > 1)
#endif
    {
        const Team tm = team();
        const std::size_t b0 = nb * static_cast<std::size_t>(tm.tid) / static_cast<std::size_t>(tm.nt);
        const std::size_t b1 = nb * static_cast<std::size_t>(tm.tid + 1) / static_cast<std::size_t>(tm.nt);
        const char* x_bytes = static_cast<const char*>(in.data);
        const std::int64_t row_bytes = in.row_stride * (in.dtype == DType::Float64 ? 8 : 4);
        with_row_reader(in, [&](auto read) {
            float lo[kSpatialLimitD], hi[kSpatialLimitD], r[kSpatialLimitD];
            for (std::size_t b = b0; b < b1; ++b) {
                // the rows of the block four ahead: reading x in sorted order
                // is a random gather, bound by waiting on misses otherwise
                if (b + 4 < b1)
                    for (std::size_t l = 0; l < kBlock; ++l) {
                        const std::int32_t o = perm[(b + 4) * kBlock + l];
                        if (o != kNoRow) __builtin_prefetch(x_bytes + o * row_bytes);
                    }
                const std::int32_t* pb = perm.data() + b * kBlock;
                float* blk = B.get() + b * bs;
                float* md = blk + ud * kBlock;
                std::fill(lo, lo + ud, std::numeric_limits<float>::infinity());
                std::fill(hi, hi + ud, -std::numeric_limits<float>::infinity());
                for (std::size_t l = 0; l < kBlock; ++l) {
                    if (pb[l] != kNoRow) {
                        read(pb[l], r);
                        for (std::size_t j = 0; j < ud; ++j) {
                            blk[j * kBlock + l] = r[j];
                            lo[j] = std::min(lo[j], r[j]);
                            hi[j] = std::max(hi[j], r[j]);
                        }
                        md[l] = std::numeric_limits<float>::infinity();
                    } else {
                        for (std::size_t j = 0; j < ud; ++j) blk[j * kBlock + l] = 0.0f;
                        md[l] = kSelected;
                    }
                }
                std::copy(lo, lo + ud, bbox.data() + b * 2 * ud);
                std::copy(hi, hi + ud, bbox.data() + b * 2 * ud + ud);
            }
            return true;
        });
    }

    // 5. The tree, the centres in `selected`, then the traversal (Alg. 1).
    Tree tr;
    tr.blocks = nb;
    build_tree(tr, ud, bbox.data(), perm.data());
    std::vector<float>().swap(bbox);
    auto dist_at = [&](std::size_t pos) -> float& { return B[(pos / kBlock) * bs + ud * kBlock + pos % kBlock]; };
    std::vector<float> c(ud);
    // Applies the centre at sorted position `pos`; `marked`: its row was just
    // marked selected, so its block's best must be redone even where the box
    // test would skip it.
    auto apply_centre = [&](std::size_t pos, bool marked) {
        const float* blk = B.get() + (pos / kBlock) * bs;
        for (std::size_t j = 0; j < ud; ++j) c[j] = blk[j * kBlock + pos % kBlock];
        out.block_updates += walk_fn(tr, ud, B.get(), perm.data(), apply, c.data(), marked ? 1 + pos / kBlock : 0);
    };
    // Sorted positions of the rows in `selected` and of `first`: one pass
    // over perm with a lookup of the original rows asked for.
    std::vector<std::int64_t> wanted(in.selected.begin(), in.selected.end());
    if (in.first >= 0) wanted.push_back(in.first);
    std::vector<std::size_t> where(wanted.size());
    if (S == 0 && in.first >= 0) {
        where[0] = static_cast<std::size_t>(std::find(perm.begin(), perm.end(), static_cast<std::int32_t>(in.first)) - perm.begin());
    } else if (!wanted.empty()) {
        std::vector<std::int32_t> slot(static_cast<std::size_t>(n), -1);
        for (std::size_t q = 0; q < wanted.size(); ++q) slot[static_cast<std::size_t>(wanted[q])] = static_cast<std::int32_t>(q);
        for (std::size_t p = 0; p < static_cast<std::size_t>(n); ++p)
            if (slot[static_cast<std::size_t>(perm[p])] >= 0) where[static_cast<std::size_t>(slot[static_cast<std::size_t>(perm[p])])] = p;
    }
    for (std::int64_t q = 0; q < S; ++q) dist_at(where[static_cast<std::size_t>(q)]) = kSelected;
    for (std::int64_t q = 0; q < S; ++q) apply_centre(where[static_cast<std::size_t>(q)], false);

    std::size_t cpos;
    float val;
    if (in.first >= 0) {
        cpos = where.back();
        val = S == 0 ? std::numeric_limits<float>::infinity() : dist_at(cpos);
    } else {  // the farthest row from `selected`
        cpos = static_cast<std::size_t>(tr.root.pos);
        val = tr.root.val;
    }
    for (std::int64_t t = 0; t < in.k; ++t) {
        in.indices[t] = perm[cpos];
        if (in.distances != nullptr) in.distances[t] = std::sqrt(static_cast<double>(std::max(val, 0.0f)));
        dist_at(cpos) = kSelected;
        apply_centre(cpos, true);
        cpos = static_cast<std::size_t>(tr.root.pos);  // farthest row from all centres so far
        val = tr.root.val;
    }
    // the farthest remaining row's distance: the k-center objective (0 once
    // every row is a centre)
    out.radius = std::sqrt(static_cast<double>(std::max(0.0f, val)));
    return out;
}

}  // namespace smallgan

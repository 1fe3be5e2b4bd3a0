#include "kcenter.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "distance.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace smallgan {
namespace {

// Below this many floats of distance work per thread and step, a barrier
// (~0.3 us) and the lost cache locality cost more than the split saves
// (measured with bench/compare.py on a 2-core EPYC; see bench/README.md).
constexpr std::int64_t kMinWorkPerThread = 1 << 15;

struct AlignedFree {
    void operator()(float* p) const { std::free(p); }
};
using AlignedBuf = std::unique_ptr<float[], AlignedFree>;

AlignedBuf aligned_floats(std::size_t count) {
    // aligned_alloc wants a size that is a multiple of the alignment
    std::size_t bytes = ((count * sizeof(float) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return AlignedBuf(static_cast<float*>(p));
}

// Copies blocks [b0, b1) of x into the blocked float32 layout (distance.hpp),
// converting float64 and following any strides; padding rows are zero.
template <typename T>
void pack_blocks(const T* x, std::int64_t n, std::int64_t d, std::int64_t rs, std::int64_t cs,
                 float* P, std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
        float* blk = P + b * d * kBlock;
        for (std::size_t l = 0; l < kBlock; ++l) {
            const std::int64_t i = static_cast<std::int64_t>(b * kBlock + l);
            if (i < n) {
                const T* row = x + i * rs;
                for (std::int64_t j = 0; j < d; ++j) blk[j * kBlock + l] = static_cast<float>(row[j * cs]);
            } else {
                for (std::int64_t j = 0; j < d; ++j) blk[j * kBlock + l] = 0.0f;
            }
        }
    }
}

void pack(const KCenterInput& in, float* P, std::size_t b0, std::size_t b1) {
    if (in.dtype == DType::Float64)
        pack_blocks(static_cast<const double*>(in.data), in.n, in.d, in.row_stride, in.col_stride, P, b0, b1);
    else
        pack_blocks(static_cast<const float*>(in.data), in.n, in.d, in.row_stride, in.col_stride, P, b0, b1);
}

inline void gather_row(const float* P, std::size_t d, std::int64_t i, float* c) {
    const float* blk = P + (static_cast<std::size_t>(i) / kBlock) * d * kBlock;
    const std::size_t l = static_cast<std::size_t>(i) % kBlock;
    for (std::size_t j = 0; j < d; ++j) c[j] = blk[j * kBlock + l];
}

}  // namespace

bool have_openmp() {
#if defined(_OPENMP)
    return true;
#else
    return false;
#endif
}

int max_threads() {
#if defined(_OPENMP)
    return std::max(1, omp_get_max_threads());
#else
    return 1;
#endif
}

int choose_threads(std::int64_t n, std::int64_t d, int requested) {
    int t = requested > 0 ? requested : max_threads();
#if !defined(_OPENMP)
    t = 1;
#endif
    const std::int64_t work = n * d;
    const std::int64_t by_work = std::max<std::int64_t>(1, work / kMinWorkPerThread);
    const std::int64_t blocks = (n + static_cast<std::int64_t>(kBlock) - 1) / static_cast<std::int64_t>(kBlock);
    return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>({t, by_work, blocks})));
}

KCenterStats kcenter(const KCenterInput& in) {
    const std::int64_t n = in.n, d = in.d;
    const std::int64_t S = static_cast<std::int64_t>(in.selected.size());
    if (n < 1 || d < 1) throw std::invalid_argument("x must have at least one row and one column");
    if (n > (std::int64_t{1} << 31) - static_cast<std::int64_t>(kBlock))
        throw std::invalid_argument("n = " + std::to_string(n) + " rows is more than this engine indexes (2**31 - 16)");
    if (in.k < 1 || in.k > n - S)
        throw std::invalid_argument("k = " + std::to_string(in.k) + " must be in [1, " + std::to_string(n - S) + "]");
    if (in.first < -1 || in.first >= n) throw std::invalid_argument("first = " + std::to_string(in.first) + " out of range");
    if (in.first < 0 && S == 0) throw std::invalid_argument("first must be given when selected is empty");
    if (in.indices == nullptr) throw std::invalid_argument("no output buffer for the indices");
    for (std::int64_t s : in.selected)
        if (s < 0 || s >= n) throw std::invalid_argument("selected index " + std::to_string(s) + " out of range");

    const UpdateFn update = update_kernel(in.simd);
    const std::size_t nb = static_cast<std::size_t>((n + kBlock - 1) / kBlock);
    const std::size_t ud = static_cast<std::size_t>(d);
    AlignedBuf P = aligned_floats(nb * kBlock * ud);
    AlignedBuf mind = aligned_floats(nb * kBlock);

    KCenterStats out;
    const int T = choose_threads(n, d, in.threads);
    out.threads_used = T;

    // Per-thread partial results, double-buffered by step parity: after the
    // barrier of step s every thread merges slot[s & 1] in thread order, and
    // slot[s & 1] is not written again before the barrier of step s + 1, by
    // which time every thread has finished reading it.  One barrier per step.
    std::vector<Best> slots(2 * static_cast<std::size_t>(T));
    const std::int64_t total_steps = S + in.k;  // updates: each old centre, then each new one
    double radius_sq = 0.0;

#if defined(_OPENMP)
#pragma omp parallel num_threads(T) if (T > 1)
#endif
    {
#if defined(_OPENMP)
        const int tid = omp_get_thread_num();
        const int nt = omp_get_num_threads();
#else
        const int tid = 0;
        const int nt = 1;
#endif
        // contiguous chunk of blocks: rows of lower threads have lower indices,
        // so merging in thread order keeps the lowest index among ties
        const std::size_t b0 = nb * static_cast<std::size_t>(tid) / static_cast<std::size_t>(nt);
        const std::size_t b1 = nb * static_cast<std::size_t>(tid + 1) / static_cast<std::size_t>(nt);
        const std::int64_t r0 = static_cast<std::int64_t>(b0 * kBlock);
        const std::int64_t r1 = static_cast<std::int64_t>(b1 * kBlock);
        auto owns = [&](std::int64_t i) { return i >= r0 && i < r1; };

        // each thread packs (and so first-touches) its own chunk
        pack(in, P.get(), b0, b1);
        for (std::size_t i = b0 * kBlock; i < b1 * kBlock; ++i)
            mind[i] = static_cast<std::int64_t>(i) < n ? std::numeric_limits<float>::infinity() : kSelected;
        std::vector<float> c(ud);
        Best merged{kSelected, -1};
#if defined(_OPENMP)
#pragma omp barrier
#endif
        std::int64_t center = S > 0 ? in.selected[0] : in.first;
        for (std::int64_t step = 0; step < total_steps; ++step) {
            if (step >= S) {
                // a new pick: record it with the distance at which it was picked
                const std::int64_t t = step - S;
                if (t == 0 && in.first >= 0 && S > 0) {
                    // forced first centre after `selected`: read its distance, then a
                    // barrier so no owner marks it before every thread has read it
                    center = in.first;
                    merged.val = mind[center];
#if defined(_OPENMP)
#pragma omp barrier
#endif
                } else if (t == 0 && S == 0) {
                    merged.val = std::numeric_limits<float>::infinity();
                }
                if (tid == 0) {
                    in.indices[t] = center;
                    if (in.distances != nullptr)
                        in.distances[t] =
                            std::sqrt(static_cast<double>(std::max(merged.val, 0.0f)));
                }
            }
            gather_row(P.get(), ud, center, c.data());
            if (owns(center)) mind[center] = kSelected;
            Best local = update(P.get(), ud, c.data(), mind.get(), b0, b1);
            Best* slot = slots.data() + (step & 1) * T;
            slot[tid] = local;
#if defined(_OPENMP)
            if (nt > 1) {
#pragma omp barrier
            }
#endif
            merged = Best{kSelected, -1};
            for (int q = 0; q < nt; ++q) merged = better(merged, slot[q]);
            if (step + 1 < S) {
                center = in.selected[static_cast<std::size_t>(step + 1)];
            } else {
                center = merged.idx;  // farthest row from all centres so far (Alg. 1)
            }
        }
        if (tid == 0) radius_sq = std::max(0.0f, merged.val);
    }
    // After the last update `merged` holds the farthest remaining row: its
    // distance is the k-center objective (0 once every row is a centre).
    out.radius = std::sqrt(radius_sq);
    return out;
}

}  // namespace smallgan

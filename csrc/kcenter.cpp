#include "kcenter.hpp"
#include "float_limits.hpp"

#include <algorithm>
#include <atomic>
#include <vector>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>

#include "distance.hpp"
#include "kcenter_spatial.hpp"
#include "packing.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace smallgan {
namespace {

// Below this many floats of data per thread, a second thread does not pay:
// with lazy updates a step touches only a few blocks, so the per-step barrier
// (~0.3 us, far more when the machine is oversubscribed) outweighs the split.
// (512,128) and (1024,32) run serial; (1024,256) and larger use threads.
// Measured with bench/compare.py on a 2-core EPYC; see bench/README.md.
constexpr std::int64_t kMinWorkPerThread = 1 << 17;

using AlignedFloats = AlignedBuf<float>;
AlignedFloats aligned_floats(std::size_t count) { return aligned_array<float>(count); }

// Copies blocks [b0, b1) of x into the blocked float32 layout (distance.hpp),
// converting float64 and following any strides; padding rows are zero.
// Returns false if a value is NaN, Inf or |v| >= max_abs_for(d) (one compare
// per value, fused into the copy; the details are found only on that error
// path).
template <typename T>
bool pack_blocks(const T* x, std::int64_t n, std::int64_t d, std::int64_t rs, std::int64_t cs,
                 float* P, std::size_t b0, std::size_t b1) {
    const T limit = static_cast<T>(max_abs_for(d));
    bool ok = true;
    for (std::size_t b = b0; b < b1; ++b) {
        float* blk = P + b * d * kBlock;
        for (std::size_t l = 0; l < kBlock; ++l) {
            const std::int64_t i = static_cast<std::int64_t>(b * kBlock + l);
            if (i < n) {
                const T* row = x + i * rs;
                for (std::int64_t j = 0; j < d; ++j) {
                    const T v = row[j * cs];
                    ok &= std::fabs(v) < limit;  // false for NaN too
                    blk[j * kBlock + l] = static_cast<float>(v);
                }
            } else {
                for (std::int64_t j = 0; j < d; ++j) blk[j * kBlock + l] = 0.0f;
            }
        }
    }
    return ok;
}

bool pack(const KCenterInput& in, float* P, std::size_t b0, std::size_t b1) {
    if (in.dtype == DType::Float64)
        return pack_blocks(static_cast<const double*>(in.data), in.n, in.d, in.row_stride, in.col_stride, P, b0, b1);
    return pack_blocks(static_cast<const float*>(in.data), in.n, in.d, in.row_stride, in.col_stride, P, b0, b1);
}

inline void gather_row(const float* P, std::size_t d, std::int64_t i, float* c) {
    const float* blk = P + (static_cast<std::size_t>(i) / kBlock) * d * kBlock;
    const std::size_t l = static_cast<std::size_t>(i) % kBlock;
    for (std::size_t j = 0; j < d; ++j) c[j] = blk[j * kBlock + l];
}

// One row of x as float32, converted exactly as pack_blocks does.
void copy_row(const KCenterInput& in, std::int64_t i, float* out) {
    if (in.dtype == DType::Float64) {
        const double* x = static_cast<const double*>(in.data) + i * in.row_stride;
        for (std::int64_t j = 0; j < in.d; ++j) out[j] = static_cast<float>(x[j * in.col_stride]);
    } else {
        const float* x = static_cast<const float*>(in.data) + i * in.row_stride;
        for (std::int64_t j = 0; j < in.d; ++j) out[j] = x[j * in.col_stride];
    }
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

Path choose_path(std::int64_t n, std::int64_t d, std::int64_t centres) {
    // Fewest centres at which the Spatial path is faster, by d (1 thread,
    // min of repeats on uniform and Gaussian-mixture data; the ratio hardly
    // depends on n from 4096 to 65536 rows).  At d = 7, 8 it depends on the
    // data: clustered data crosses near 256 centres, uniform 8-d data only
    // near 4096 (boxes of 16 rows are loose there).
    static constexpr std::int64_t min_centres[9] = {0, 128, 128, 256, 512, 512, 1024, 2048, 2048};
    (void)n;
    if (d < 1 || d > 8) return Path::Blocked;
    return centres >= min_centres[d] ? Path::Spatial : Path::Blocked;
}

int choose_threads(std::int64_t n, std::int64_t d, int requested) {
#if !defined(_OPENMP)
    (void)requested;
    return 1;
#else
    const std::int64_t blocks = (n + static_cast<std::int64_t>(kBlock) - 1) / static_cast<std::int64_t>(kBlock);
    // an explicit request is honoured (a thread needs at least one block);
    // the automatic choice also stops where threads stop paying (see above)
    std::int64_t t = requested > 0 ? requested : std::min<std::int64_t>(max_threads(), std::max<std::int64_t>(1, n * d / kMinWorkPerThread));
    return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(t, blocks)));
#endif
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

    const bool spatial = in.prune && (in.path == Path::Spatial ||
                                      (in.path == Path::Auto && choose_path(n, d, S + in.k) == Path::Spatial));
    // Its walk is serial; only building is split over threads, only when
    // asked, and one thread per 2^16 rows at most: on the 2-core dev machine
    // under load, 2 threads made a 100k-row build several times slower
    // (barriers waiting on a descheduled thread), and on an idle machine
    // they could save at most half of a build that takes ~35 ns a row.
    if (spatial) {
        const int cap = static_cast<int>(std::max<std::int64_t>(1, n >> 16));
        return kcenter_spatial(in, in.threads > 0 ? std::min(choose_threads(n, d, in.threads), cap) : 1);
    }

    const ApplyFn apply = apply_kernel(in.simd);
    const std::size_t nb = static_cast<std::size_t>((n + kBlock - 1) / kBlock);
    const std::size_t ud = static_cast<std::size_t>(d);
    AlignedFloats P = aligned_floats(nb * kBlock * ud);
    AlignedFloats mind = aligned_floats(nb * kBlock);
    // Centres in the order they were chosen (old `selected` first), as rows.
    AlignedFloats C = aligned_floats(static_cast<std::size_t>(S + in.k) * ud);
    // Lazy updates: block b has had the first synced[b] centres applied, and
    // bound[b] >= the largest min-distance of its unselected rows.
    std::vector<std::int64_t> synced(nb, 0);
    std::vector<float> bound(nb, std::numeric_limits<float>::infinity());
    for (std::int64_t s = 0; s < S; ++s) copy_row(in, in.selected[static_cast<std::size_t>(s)], C.get() + s * d);

    KCenterStats out;
    const int T = choose_threads(n, d, in.threads);
    out.threads_used = T;
    out.path = Path::Blocked;

    // Per-thread partial results, double-buffered by search parity: after the
    // barrier of search s every thread merges slot[s & 1] in thread order, and
    // slot[s & 1] is not written again before the barrier of search s + 1, by
    // which time every thread has finished reading it.  One barrier per step.
    std::vector<Best> slots(2 * static_cast<std::size_t>(T));
    std::vector<char> chunk_ok(static_cast<std::size_t>(T), 1);
    // Largest true min-distance any thread has found in the current search,
    // rotated over three slots: slot s % 3 serves search s, thread 0 resets
    // slot (s + 1) % 3 during search s (nobody uses it between the barriers
    // of searches s - 2 and s + 1).  Threads skip blocks whose bound is below
    // it: which blocks are skipped then depends on timing, the result never
    // does (a skipped block cannot hold the farthest row).
    std::atomic<float> shared_best[3];
    for (auto& a : shared_best) a.store(kSelected);
    bool values_ok = true;
    float first_val = 0.0f;
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
        chunk_ok[static_cast<std::size_t>(tid)] = pack(in, P.get(), b0, b1) ? 1 : 0;
        for (std::size_t i = b0 * kBlock; i < b1 * kBlock; ++i)
            mind[i] = static_cast<std::int64_t>(i) < n ? std::numeric_limits<float>::infinity() : kSelected;
        for (std::int64_t s : in.selected)
            if (owns(s)) mind[s] = kSelected;
        std::vector<float> last(ud);  // the newest centre, private to each thread
#if defined(_OPENMP)
#pragma omp barrier
#endif
        // every thread reads the same flags after the barrier, so all of them
        // skip the work together (no barrier is left half-reached)
        const bool go = std::all_of(chunk_ok.begin(), chunk_ok.end(), [](char c) { return c != 0; });
        if (tid == 0 && !go) values_ok = false;
        // Rows [0, visible) of C can be read by every thread.  The newest
        // centre is written to C by thread 0 during its step and becomes
        // visible at that step's barrier; until then each thread applies its
        // private copy `last`.
        std::int64_t visible = S;
        long search_no = 0;

        auto bring_up_to_date = [&](std::size_t b, const float* newest) -> Best {
            const std::int64_t from = synced[b];
            Best bb = apply(P.get() + b * ud * kBlock, ud, C.get() + from * d,
                            static_cast<std::size_t>(visible - from), newest, mind.get() + b * kBlock,
                            static_cast<std::int64_t>(b * kBlock));
            synced[b] = visible + (newest != nullptr ? 1 : 0);
            bound[b] = bb.val;
            return bb;
        };

        // Finds the farthest row from all centres (exact).  A block whose
        // bound is below a value already found in this chunk cannot hold the
        // farthest row: its update waits, and is applied later together with
        // the centres that arrive meanwhile, while the block sits in L1.
        auto search = [&](const float* newest) -> Best {
            Best local{kSelected, -1};
            std::atomic<float>& found = shared_best[search_no % 3];
            if (tid == 0) shared_best[(search_no + 1) % 3].store(kSelected, std::memory_order_relaxed);
            auto publish = [&](float v) {
                float cur = found.load(std::memory_order_relaxed);
                while (v > cur && !found.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
                }
            };
            if (b0 < b1) {
                if (in.prune) {
                    std::size_t top = b0;  // the most promising block first
                    for (std::size_t b = b0 + 1; b < b1; ++b)
                        if (bound[b] > bound[top]) top = b;
                    local = better(local, bring_up_to_date(top, newest));
                    if (nt > 1) publish(local.val);
                    for (std::size_t b = b0; b < b1; ++b) {
                        if (b == top) continue;
                        const float floor_val = nt > 1 ? std::max(local.val, found.load(std::memory_order_relaxed)) : local.val;
                        if (bound[b] < floor_val) continue;
                        const Best bb = bring_up_to_date(b, newest);
                        if (bb.val > local.val && nt > 1) publish(bb.val);
                        local = better(local, bb);
                    }
                } else {
                    for (std::size_t b = b0; b < b1; ++b) local = better(local, bring_up_to_date(b, newest));
                }
            }
            Best* slot = slots.data() + (search_no & 1) * T;
            ++search_no;
            slot[tid] = local;
#if defined(_OPENMP)
            if (nt > 1) {
#pragma omp barrier
            }
#endif
            Best merged{kSelected, -1};
            for (int q = 0; q < nt; ++q) merged = better(merged, slot[q]);
            return merged;
        };

        std::int64_t center = -1;
        float val = 0.0f;
        const std::int64_t picks = go ? in.k : 0;
        if (!go) {
            // rejected input: nothing to select
        } else if (S == 0) {
            center = in.first;
            val = std::numeric_limits<float>::infinity();
        } else if (in.first >= 0) {
            // forced first centre after `selected`: its owner brings its block
            // up to date to read its distance; a barrier publishes the value
            center = in.first;
            if (owns(center)) {
                bring_up_to_date(static_cast<std::size_t>(center) / kBlock, nullptr);
                first_val = mind[center];
            }
#if defined(_OPENMP)
#pragma omp barrier
#endif
            val = first_val;
        } else {
            const Best b = search(nullptr);  // the farthest row from `selected`
            center = b.idx;
            val = b.val;
        }

        for (std::int64_t t = 0; t < picks; ++t) {
            if (tid == 0) {
                in.indices[t] = center;
                if (in.distances != nullptr) in.distances[t] = std::sqrt(static_cast<double>(std::max(val, 0.0f)));
            }
            if (owns(center)) mind[center] = kSelected;  // its block's bound stays an upper bound
            gather_row(P.get(), ud, center, last.data());
            if (tid == 0) std::copy(last.begin(), last.end(), C.get() + visible * d);
            const Best b = search(last.data());
            ++visible;
            center = b.idx;  // farthest row from all centres so far (Alg. 1)
            val = b.val;
        }
        // After the last search `val` is the farthest remaining row's distance:
        // the k-center objective (0 once every row is a centre).
        if (tid == 0) radius_sq = std::max(0.0f, val);
    }
    if (!values_ok) throw std::invalid_argument(describe_bad_values(in));
    out.radius = std::sqrt(radius_sq);
    return out;
}

}  // namespace smallgan

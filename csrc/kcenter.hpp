// Exact greedy k-center (farthest-first traversal; Alg. 1 of Sinha et al.,
// "Small-GAN", ICML 2020; Gonzalez 1985).  Python-free: pointers, sizes and
// strides in, results written to caller-owned buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "simd.hpp"

namespace smallgan {

enum class DType : int { Float32 = 0, Float64 = 1 };

struct KCenterInput {
    const void* data = nullptr;   // IN  x[i, j] at data + i*row_stride + j*col_stride (elements)
    DType dtype = DType::Float32;
    std::int64_t n = 0, d = 0;
    std::int64_t row_stride = 0, col_stride = 0;  // in elements, may be negative
    std::int64_t k = 0;           // IN  number of new centres to pick
    std::int64_t first = -1;      // IN  first new centre, or -1: the farthest from `selected`
    std::vector<std::int64_t> selected;  // IN  existing centres (distinct, in range)
    int threads = 0;              // IN  0: automatic (see choose_threads)
    SimdLevel simd = SimdLevel::Baseline;
    bool prune = true;            // IN  lazy block updates (exact); false: every block every step
    // Output buffers, allocated by the caller before the work starts:
    std::int64_t* indices = nullptr;   // OUT k new centres in selection order (required)
    double* distances = nullptr;       // OUT k distances of each pick to the centres before it
                                       //     (+inf for the very first), or nullptr
};

struct KCenterStats {
    double radius = 0.0;   // max over rows of the distance to the nearest centre (old and new)
    int threads_used = 1;
};

// Validates sizes (throws std::invalid_argument) and runs the traversal.
// Extra memory: one float32 copy of x in the blocked layout plus O(n).
KCenterStats kcenter(const KCenterInput& in);

// Threads a call would use: `requested` if > 0, else the OpenMP maximum
// (which honours OMP_NUM_THREADS) capped so each thread gets at least
// kMinWorkPerThread floats of data; never more than the 16-row blocks; 1
// without OpenMP.
int choose_threads(std::int64_t n, std::int64_t d, int requested);

int max_threads();       // what threads=None resolves to before the work cap
bool have_openmp();

}  // namespace smallgan

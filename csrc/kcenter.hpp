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

// Which of the two exact traversals runs.  Both compute every (row, centre)
// distance with the same kernel (distance.hpp) and break ties by the lowest
// row index, so they return identical picks and distances; they differ only
// in which blocks they can prove need no update.
enum class Path : int {
    Auto = 0,     // Spatial when d <= kSpatialMaxD and n >= spatial_min_rows(d), else Blocked
    Blocked = 1,  // rows in input order, lazy per-block bounds (any d)
    Spatial = 2,  // rows in Morton order under a box hierarchy (low d; kcenter_spatial.cpp)
};

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
                                  //     (the eager reference; always the Blocked path)
    Path path = Path::Auto;       // IN  which traversal (results do not depend on it)
    // Output buffers, allocated by the caller before the work starts:
    std::int64_t* indices = nullptr;   // OUT k new centres in selection order (required)
    double* distances = nullptr;       // OUT k distances of each pick to the centres before it
                                       //     (+inf for the very first), or nullptr
};

struct KCenterStats {
    double radius = 0.0;   // max over rows of the distance to the nearest centre (old and new)
    int threads_used = 1;
    Path path = Path::Blocked;        // the traversal that ran
    std::int64_t block_updates = 0;   // Spatial path: 16-row block kernel calls (its work, for tests
                                      // and benchmarks); not counted by the Blocked path (0)
};

// The path Path::Auto takes for n rows, d columns and `centres` = k +
// len(selected) centres in all: Spatial when d <= 8 and centres reach a
// d-dependent count (128 at d <= 2 ... 2048 at d = 7, 8), else Blocked.  The
// Spatial path pays a sort (~35 ns a row) once, the Blocked path a little per
// row and step; the counts are where the two cross, measured on uniform and
// clustered data (bench/README.md, section 5).
Path choose_path(std::int64_t n, std::int64_t d, std::int64_t centres);

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

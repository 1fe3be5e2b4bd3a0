// Exact greedy k-center (farthest-first traversal, Alg. 1 of Sinha et al.,
// "Small-GAN", ICML 2020) on a CUDA device, for data already on the GPU.
//
// A plain C++ header: no CUDA and no Python headers, so the binding
// (csrc/bindings.cpp, compiled by the host compiler) can include it.  Device
// memory is passed as raw pointers (torch's data_ptr()), the stream as the
// integer value of a cudaStream_t.  The launcher allocates nothing, never
// synchronises the host and launches only on the given stream, so a call is
// asynchronous and can be captured in a CUDA graph.
//
// Semantics are the CPU engine's (csrc/kcenter.hpp): squared distances in
// float32 (sum over j of (x_ij - c_j)^2, j in order), ties to the lowest row,
// rows already chosen never chosen again, `selected` applied first, `first`
// or else the row farthest from `selected`.
#pragma once

#include <cstddef>
#include <cstdint>

namespace smallgan {
namespace cuda {

// dtype codes of x (the binding's `dtype` argument)
enum class XType : int { Float32 = 0, Float64 = 1, Float16 = 2, BFloat16 = 3 };

// Largest grid the selection kernel uses (sizes the partial-results buffer).
constexpr std::int64_t kMaxBlocks = 1024;
// Rows of the transposed copy are padded to this many floats (128 bytes), so
// every column starts on a cache-line boundary.
constexpr std::int64_t kRowPad = 32;
// The aux buffer: int64[kAuxLen] on the device, written by the kernels.
//   [0] number of NaN/Inf values in x
//   [1] lowest row holding one (as uint64: 2**64 - 1, i.e. -1 as int64, if none)
//   [2] bit pattern (double) of the largest finite |x| >= max_abs_for(d)
//       (float_limits.hpp), or 0 if none
//   [3] bit pattern (double) of the k-center radius of the result
constexpr int kAuxLen = 4;

inline std::int64_t padded_rows(std::int64_t n) { return (n + kRowPad - 1) / kRowPad * kRowPad; }

// Workspace (one device buffer, 256-byte aligned, allocated by the caller):
// the float32 copy of x transposed to (d, padded_rows(n)), the min-distances
// of all rows (used when they do not fit in shared memory), and the per-block
// partial results of one step, double-buffered.
struct WorkspaceLayout {
    std::size_t x_offset, mind_offset, partials_offset, bytes;
};

inline std::size_t align256(std::size_t v) { return (v + 255) / 256 * 256; }

inline WorkspaceLayout workspace_layout(std::int64_t n, std::int64_t d) {
    const std::size_t ld = static_cast<std::size_t>(padded_rows(n));
    WorkspaceLayout w;
    w.x_offset = 0;
    w.mind_offset = align256(ld * static_cast<std::size_t>(d) * sizeof(float));
    w.partials_offset = w.mind_offset + align256(ld * sizeof(float));
    w.bytes = w.partials_offset + align256(2 * static_cast<std::size_t>(kMaxBlocks) * sizeof(std::uint64_t));
    return w;
}

struct Args {
    const void* x = nullptr;          // IN  x[i, j] at x + i*row_stride + j*col_stride (elements), device
    XType dtype = XType::Float32;
    std::int64_t n = 0, d = 0;
    std::int64_t row_stride = 0, col_stride = 0;
    std::int64_t k = 0;               // IN  number of new centres, 1 <= k <= n - n_selected
    std::int64_t first = -1;          // IN  first new centre, or -1: the row farthest from `selected`
    const std::int64_t* selected = nullptr;  // IN  n_selected distinct rows (device), or nullptr
    std::int64_t n_selected = 0;
    std::int64_t* indices = nullptr;  // OUT k new centres in selection order (device)
    void* distances = nullptr;        // OUT k pick distances (device), or nullptr
    bool distances_f64 = true;        //     float64 (true) or float32
    void* workspace = nullptr;        // TMP workspace_layout(n, d).bytes bytes (device, 256-aligned)
    std::size_t workspace_bytes = 0;
    std::int64_t* aux = nullptr;      // OUT kAuxLen values (device), see above
    bool skip_if_bad = true;          // IN  x with NaN/Inf or |x| >= max_abs_for(d): leave indices unwritten
    int device = 0;                   // IN  CUDA device ordinal of every pointer above
    std::uintptr_t stream = 0;        // IN  cudaStream_t to launch on
    int blocks = 0;                   // IN  grid size (0: automatic; benchmarks may force one)
};

// How a problem is launched (see kcenter.cu).
struct Plan {
    int blocks = 0;                // grid size (1: plain launch, > 1: cooperative)
    int threads = 0;               // threads per block
    int rows_per_block = 0;
    bool resident = false;         // each block keeps its rows of x in shared memory
    bool centre_in_shared = true;  // the current centre is staged in shared memory
    std::size_t shared_bytes = 0;  // dynamic shared memory per block
};

// Validates the arguments (std::invalid_argument) and enqueues the work on
// the stream; CUDA errors raise std::runtime_error.  Asynchronous.
void kcenter(const Args& a);

// The launch kcenter(a) would use for an (n, d) problem on `device`.
Plan plan(int device, std::int64_t n, std::int64_t d, int blocks);

// CUDA runtime version this was built against (e.g. 13000), and the
// device's compute capability (major * 10 + minor).
int runtime_version();
int compute_capability(int device);

// Whether this build has code that runs on `device` (SASS for its
// architecture or PTX it can compile); false also when the device cannot be
// used at all.  Never throws.
bool supported(int device);

}  // namespace cuda
}  // namespace smallgan

// Exact greedy k-center on a CUDA device (farthest-first traversal, Alg. 1 of
// Sinha et al., "Small-GAN", ICML 2020; Gonzalez 1985).  See kcenter_cuda.hpp
// for the contract.
//
// Three launches on the caller's stream, none of which the host waits for:
//   1. init_aux: clears the small status buffer.
//   2. pack: copies x (any strides; float32/64/16, bfloat16) into the
//      workspace as float32, transposed to (d, ld) so that thread i of a warp
//      reads row i of a column: the selection's loads are coalesced.  Counts
//      NaN/Inf values (and their lowest row) and values too large for float32
//      distances into the status buffer.
//   3. select: one persistent kernel runs the whole traversal.  Block b owns
//      a contiguous slice of rows; thread t of a block owns rows t, t + T, ...
//      of the slice and alone reads and writes their min-distances.  A step:
//        - stage the current centre's d coordinates in shared memory
//        - each thread updates its rows' min-distances and keeps the best
//          (largest distance, lowest row) as one 64-bit key
//        - block max of the keys (warp shuffles, then one warp)
//        - one grid-wide barrier; every warp takes the max over the blocks'
//          keys, so every thread knows the next centre.
//      The max over keys is a max under a total order, so the result does not
//      depend on the grid size or the reduction tree.  With one block the
//      grid barrier is a __syncthreads; with several the launch is cooperative
//      (all blocks resident, cooperative_groups grid sync).
//      When a block's slice of x fits in shared memory ("resident"), it is
//      copied there once and every step reads it on chip; otherwise each step
//      streams it from L2/HBM: n * d * 4 bytes per step, the memory floor.
#include "kcenter_cuda.hpp"
#include "float_limits.hpp"

#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace cg = cooperative_groups;

namespace smallgan {
namespace cuda {
namespace {

using u64 = unsigned long long;

constexpr int kThreads = 256;              // threads per block of the selection kernel
constexpr int kWarps = kThreads / 32;
constexpr std::int64_t kMaxCentreShared = 8192;  // stage the centre in shared memory up to this d
constexpr int kStreamBlocksPerSm = 4;      // grid of the streaming kernel: SMs x this (occupancy permitting)

// Floats of shared memory for the centre: d rounded up to a multiple of 8,
// plus 8 floats of padding.  compute-sanitizer on an H200 reported 16-byte
// reads of the centre past its end in the distance loop (unrolled by 8,
// vectorised): one at the centre with d = 1, and such reads racing with the
// min-distance writes next to the centre.  The PTX guards those loads, so
// ptxas moves them above their guard (inferred); their values are never
// used.  With the padding they read only memory that belongs to the centre
// and that nothing writes.
__host__ __device__ constexpr long long centre_floats(long long d) { return (d + 7) / 8 * 8 + 8; }

void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess)
        throw std::runtime_error(std::string("smallgan CUDA kernel: ") + what + " failed: " + cudaGetErrorString(e));
}

// ---- (distance, row) keys ---------------------------------------------------
// key = (order-preserving bits of the float) << 32 | (2**32 - 1 - row): the
// largest key is the largest distance, and among equal distances the lowest
// row.  Distances are never NaN (see update below), so the order is total.
// Key 0 is below every real key.

__device__ __forceinline__ u64 make_key(float v, int row) {
    const unsigned f = __float_as_uint(v);
    const unsigned o = (f & 0x80000000u) ? ~f : (f | 0x80000000u);
    return (static_cast<u64>(o) << 32) | static_cast<u64>(0xFFFFFFFFu - static_cast<unsigned>(row));
}

__device__ __forceinline__ float key_value(u64 key) {
    const unsigned o = static_cast<unsigned>(key >> 32);
    const unsigned f = (o & 0x80000000u) ? (o & 0x7FFFFFFFu) : ~o;
    return __uint_as_float(f);
}

__device__ __forceinline__ int key_row(u64 key) {
    return static_cast<int>(0xFFFFFFFFu - static_cast<unsigned>(key & 0xFFFFFFFFull));
}

__device__ __forceinline__ u64 umax64(u64 a, u64 b) { return a > b ? a : b; }

// Max over the 32 lanes, returned to every lane.  The whole warp must call it.
__device__ __forceinline__ u64 warp_max(u64 key) {
    for (int offset = 16; offset > 0; offset >>= 1) key = umax64(key, __shfl_xor_sync(0xFFFFFFFFu, key, offset));
    return key;
}

// ---- status buffer and the packing pass -------------------------------------

__global__ void init_aux(u64* aux) {
    aux[0] = 0;          // NaN/Inf count
    aux[1] = ~0ull;      // lowest row with one (atomicMin)
    aux[2] = 0;          // largest finite |x| >= max_abs_for(d), as double bits (atomicMax)
    aux[3] = 0;          // radius, as double bits
}

__device__ __forceinline__ double as_double(float v) { return v; }
__device__ __forceinline__ double as_double(double v) { return v; }
__device__ __forceinline__ double as_double(__half v) { return __half2float(v); }
__device__ __forceinline__ double as_double(__nv_bfloat16 v) { return __bfloat162float(v); }

// Block (32, 8) transposes a 32 x 32 tile: x[i0 + r, j0 + c] -> X[(j0 + c) * ld + i0 + r].
// Reads: lane = column (coalesced for row-major x); writes: lane = row.
template <typename T>
__global__ void __launch_bounds__(256) pack(const T* __restrict__ x, int n, int d, long long rs, long long cs,
                                            float* __restrict__ X, long long ld, u64* __restrict__ aux,
                                            double limit) {
    __shared__ float tile[32][33];  // +1: no bank conflicts on the transposed read
    const int tx = threadIdx.x, ty = threadIdx.y;
    const int i0 = blockIdx.x * 32, j0 = blockIdx.y * 32;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int i = i0 + ty + 8 * q;  // the same row for the whole warp
        const int j = j0 + tx;
        float v = 0.0f;
        bool nonfinite = false;
        double big = 0.0;
        if (i < n && j < d) {
            const double dv = as_double(x[static_cast<long long>(i) * rs + static_cast<long long>(j) * cs]);
            nonfinite = !isfinite(dv);
            if (!nonfinite && fabs(dv) >= limit) big = fabs(dv);
            v = static_cast<float>(dv);  // rounds like the CPU engine's static_cast<float>(double)
        }
        tile[ty + 8 * q][tx] = v;
        const unsigned mask = __ballot_sync(0xFFFFFFFFu, nonfinite);
        if (mask != 0u && tx == 0) {
            atomicAdd(&aux[0], static_cast<u64>(__popc(mask)));
            atomicMin(&aux[1], static_cast<u64>(i));
        }
        if (big > 0.0) atomicMax(&aux[2], static_cast<u64>(__double_as_longlong(big)));  // >= 0: bits order as values
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < 4; ++q) {
        const int j = j0 + ty + 8 * q;
        const int i = i0 + tx;
        if (i < n && j < d) X[static_cast<long long>(j) * ld + i] = tile[tx][ty + 8 * q];
    }
}

// ---- the selection kernel ---------------------------------------------------

struct SelectParams {
    const float* X;          // IN  (d, ld) transposed float32 copy of x
    long long ld;
    int n, d;
    int rows;                // rows per block (the last block may have fewer)
    float* gmind;            // TMP min-distances of all rows (streaming modes)
    u64* partials;           // TMP 2 * gridDim.x block keys, double-buffered by merge parity
    const long long* selected;  // IN  existing centres
    int n_selected;
    int first;               // IN  first new centre, or -1
    int k;
    long long* indices;      // OUT
    void* distances;         // OUT or nullptr
    int distances_f64;
    u64* aux;                // IN/OUT status; [3] gets the radius
    int skip_if_bad;
};

enum Mode : int {
    kResident = 0,       // x slice, min-distances and centre in shared memory
    kStream = 1,         // x and min-distances in global memory, centre in shared memory
    kStreamWideD = 2,    // as kStream, the centre read from global memory (d > kMaxCentreShared)
};

__device__ __forceinline__ void write_distance(const SelectParams& p, int t, float v) {
    const double dist = sqrt(static_cast<double>(fmaxf(v, 0.0f)));  // fmaxf: -1 (none left) -> 0
    if (p.distances_f64)
        static_cast<double*>(p.distances)[t] = dist;
    else
        static_cast<float*>(p.distances)[t] = static_cast<float>(dist);
}

template <int kMode>
__global__ void __launch_bounds__(kThreads) select_kernel(SelectParams p) {
    constexpr bool kXShared = kMode == kResident;
    constexpr bool kCShared = kMode != kStreamWideD;
    extern __shared__ float smem[];  // [centre: d][min-distances: rows][x slice: d * rows]
    __shared__ u64 warp_keys[kWarps];
    __shared__ u64 block_key;

    // Every thread reads the same status (written by the pack kernel, which
    // finished before this launch), so the whole grid returns or none does.
    if (p.skip_if_bad && (p.aux[0] != 0ull || p.aux[2] != 0ull)) return;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int G = static_cast<int>(gridDim.x);
    const int r0 = static_cast<int>(min(static_cast<long long>(blockIdx.x) * p.rows, static_cast<long long>(p.n)));
    const int nrows = min(p.rows, p.n - r0);
    const int d = p.d;

    float* const cs = smem;
    float* const ms = smem + (kCShared ? centre_floats(d) : 0);
    float* const xs = ms + p.rows;
    float* const m = kXShared ? ms : p.gmind + r0;          // this block's min-distances
    const float* const xb = kXShared ? xs : p.X + r0;      // this block's x: column j at xb + j * xld
    const long long xld = kXShared ? static_cast<long long>(p.rows) : p.ld;

    for (int r = tid; r < nrows; r += kThreads) m[r] = INFINITY;
    if (kXShared) {
        for (int j = 0; j < d; ++j)
            for (int r = tid; r < nrows; r += kThreads)
                xs[static_cast<long long>(j) * p.rows + r] = p.X[static_cast<long long>(j) * p.ld + r0 + r];
    }

    // Applies centre c to this thread's rows (c itself becomes -1: never
    // picked again; min(-1, anything) stays -1) and returns their best key.
    // fminf ignores a NaN distance (non-finite x with skip_if_bad off), so
    // min-distances are never NaN and indices stay valid and distinct.
    auto update = [&](int c) -> u64 {
        __syncthreads();  // everyone is done with the previous centre
        if (kCShared)
            for (int j = tid; j < d; j += kThreads) cs[j] = p.X[static_cast<long long>(j) * p.ld + c];
        __syncthreads();
        const float* const cp = kCShared ? cs : p.X + c;
        const long long cst = kCShared ? 1 : p.ld;
        u64 best = 0;
        for (int r = tid; r < nrows; r += kThreads) {
            const float* xp = xb + r;
            float acc = 0.0f;
#pragma unroll 8
            for (int j = 0; j < d; ++j) {
                const float t = xp[static_cast<long long>(j) * xld] - cp[static_cast<long long>(j) * cst];
                acc = fmaf(t, t, acc);  // j in order, as the CPU engine sums
            }
            const int row = r0 + r;
            const float v = row == c ? -1.0f : fminf(m[r], acc);
            m[r] = v;
            best = umax64(best, make_key(v, row));
        }
        return best;
    };

    // The grid-wide max of the threads' keys, returned to every thread.
    int merges = 0;
    auto merge = [&](u64 mine) -> u64 {
        const int parity = merges++ & 1;
        mine = warp_max(mine);
        if (lane == 0) warp_keys[warp] = mine;
        __syncthreads();
        if (warp == 0) {
            u64 b = lane < kWarps ? warp_keys[lane] : 0ull;
            b = warp_max(b);
            if (lane == 0) {
                if (G > 1)
                    p.partials[parity * G + blockIdx.x] = b;
                else
                    block_key = b;
            }
        }
        if (G == 1) {
            __syncthreads();
            return block_key;  // rewritten only after the next merge's first barrier
        }
        // Slot `parity` is written again two merges later, after the barrier
        // of the next merge, which no block passes before every block has
        // finished reading it here.
        cg::this_grid().sync();
        u64 g = 0;
        for (int b = lane; b < G; b += 32) g = umax64(g, __ldcg(p.partials + parity * G + b));
        return warp_max(g);
    };

    // `selected`: centres applied first, nothing written.
    for (int s = 0; s < p.n_selected; ++s) (void)update(static_cast<int>(p.selected[s]));

    int centre;
    float value;
    if (p.first >= 0) {
        centre = p.first;
        value = INFINITY;  // no centre before it
        if (p.n_selected > 0 && p.distances != nullptr) {
            // its distance to `selected`: the owner thread holds it
            const int r = centre - r0;
            if (r >= 0 && r < nrows && r % kThreads == tid) write_distance(p, 0, m[r]);
        }
    } else {
        // the row farthest from `selected`
        u64 best = 0;
        for (int r = tid; r < nrows; r += kThreads) best = umax64(best, make_key(m[r], r0 + r));
        const u64 g = merge(best);
        centre = key_row(g);
        value = key_value(g);
    }
    const bool writer = blockIdx.x == 0 && tid == 0;
    if (writer) {
        p.indices[0] = centre;
        if (p.distances != nullptr && !(p.first >= 0 && p.n_selected > 0)) write_distance(p, 0, value);
    }

    for (int t = 0; t < p.k; ++t) {
        const u64 g = merge(update(centre));
        centre = key_row(g);  // the farthest row from all centres so far
        value = key_value(g);
        if (writer) {
            if (t + 1 < p.k) {
                p.indices[t + 1] = centre;
                if (p.distances != nullptr) write_distance(p, t + 1, value);
            } else {
                // after the last centre: the k-center objective (0 if no row is left)
                p.aux[3] = static_cast<u64>(__double_as_longlong(sqrt(static_cast<double>(fmaxf(value, 0.0f)))));
            }
        }
    }
}

// ---- host side ----------------------------------------------------------------

const void* select_fn(int mode) {
    switch (mode) {
        case kResident: return reinterpret_cast<const void*>(&select_kernel<kResident>);
        case kStream: return reinterpret_cast<const void*>(&select_kernel<kStream>);
        default: return reinterpret_cast<const void*>(&select_kernel<kStreamWideD>);
    }
}

struct DeviceInfo {
    bool ready = false;
    int sms = 0;
    int cooperative = 0;
    int cc = 0;
    std::int64_t max_dynamic[3] = {0, 0, 0};  // per mode: opt-in limit less static shared memory
};

std::mutex g_mu;
std::vector<DeviceInfo> g_devices;

// Makes `device` current for the scope and restores the previous one.
class DeviceGuard {
   public:
    explicit DeviceGuard(int device) {
        check(cudaGetDevice(&prev_), "cudaGetDevice");
        if (prev_ != device) check(cudaSetDevice(device), "cudaSetDevice");
    }
    ~DeviceGuard() {
        int now = -1;
        if (cudaGetDevice(&now) == cudaSuccess && now != prev_) (void)cudaSetDevice(prev_);
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

   private:
    int prev_ = 0;
};

// Queried once per device (the device must be current).
DeviceInfo device_info(int device) {
    std::lock_guard<std::mutex> lock(g_mu);
    if (device < 0) throw std::invalid_argument("bad CUDA device ordinal " + std::to_string(device));
    if (g_devices.size() <= static_cast<std::size_t>(device)) g_devices.resize(static_cast<std::size_t>(device) + 1);
    DeviceInfo& di = g_devices[static_cast<std::size_t>(device)];
    if (!di.ready) {
        int optin = 0, major = 0, minor = 0;
        check(cudaDeviceGetAttribute(&di.sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute");
        check(cudaDeviceGetAttribute(&di.cooperative, cudaDevAttrCooperativeLaunch, device), "cudaDeviceGetAttribute");
        check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "cudaDeviceGetAttribute");
        check(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device), "cudaDeviceGetAttribute");
        check(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device), "cudaDeviceGetAttribute");
        di.cc = major * 10 + minor;
        for (int mode = 0; mode < 3; ++mode) {
            cudaFuncAttributes fa;
            check(cudaFuncGetAttributes(&fa, select_fn(mode)), "cudaFuncGetAttributes");
            const int dyn = optin - static_cast<int>(fa.sharedSizeBytes);
            // One fixed value per kernel and device: concurrent callers never
            // see a smaller limit than the one they plan with.
            check(cudaFuncSetAttribute(select_fn(mode), cudaFuncAttributeMaxDynamicSharedMemorySize, dyn),
                  "cudaFuncSetAttribute");
            di.max_dynamic[mode] = dyn;
        }
        di.ready = true;
    }
    return di;
}

int blocks_per_sm(int mode, std::size_t shared_bytes) {
    int b = 0;
    check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&b, select_fn(mode), kThreads, shared_bytes),
          "cudaOccupancyMaxActiveBlocksPerMultiprocessor");
    return b;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// Grid size and mode.  Resident when every block's slice of x fits in shared
// memory with one block per SM; the automatic grid then gives each thread
// about one row (more blocks when needed to fit, never more than the SMs).
// Otherwise streaming, with kStreamBlocksPerSm blocks per SM.  `requested`
// (> 0) fixes the grid size instead (capped to what can be co-resident).
Plan make_plan(const DeviceInfo& di, std::int64_t n, std::int64_t d, int requested) {
    Plan pl;
    pl.threads = kThreads;
    const std::int64_t sms = std::max(1, di.sms);
    const std::int64_t max_blocks = di.cooperative ? std::min<std::int64_t>(kMaxBlocks, n) : 1;

    // largest rows per block whose resident footprint (C + R + d * R floats,
    // C = centre_floats(d)) fits
    const std::int64_t budget_floats = di.max_dynamic[kResident] / static_cast<std::int64_t>(sizeof(float));
    const std::int64_t C = centre_floats(d);
    const std::int64_t r_fit = budget_floats > C ? (budget_floats - C) / (d + 1) : 0;

    std::int64_t G;
    if (requested > 0) {
        G = std::min<std::int64_t>(requested, max_blocks);
    } else {
        G = std::min<std::int64_t>(std::max<std::int64_t>(1, ceil_div(n, kThreads)), sms);
        if (r_fit >= 1) G = std::max<std::int64_t>(G, std::min<std::int64_t>(ceil_div(n, r_fit), sms));
        G = std::min(G, max_blocks);
    }
    std::int64_t R = ceil_div(n, G);
    G = ceil_div(n, R);
    if (R <= r_fit) {
        const std::size_t bytes = static_cast<std::size_t>(C + R + d * R) * sizeof(float);
        if (G == 1 || G <= static_cast<std::int64_t>(blocks_per_sm(kResident, bytes)) * sms) {
            pl.blocks = static_cast<int>(G);
            pl.rows_per_block = static_cast<int>(R);
            pl.resident = true;
            pl.centre_in_shared = true;
            pl.shared_bytes = bytes;
            return pl;
        }
    }
    const bool c_shared = d <= kMaxCentreShared;
    const int mode = c_shared ? kStream : kStreamWideD;
    const std::size_t bytes = c_shared ? static_cast<std::size_t>(C) * sizeof(float) : 0;
    const std::int64_t fit = std::max<std::int64_t>(1, static_cast<std::int64_t>(blocks_per_sm(mode, bytes)) * sms);
    std::int64_t cap = std::min(max_blocks, fit);
    if (requested > 0)
        G = std::min<std::int64_t>(requested, cap);
    else
        G = std::min<std::int64_t>({cap, sms * kStreamBlocksPerSm, std::max<std::int64_t>(1, ceil_div(n, 32))});
    R = ceil_div(n, G);
    G = ceil_div(n, R);
    pl.blocks = static_cast<int>(G);
    pl.rows_per_block = static_cast<int>(R);
    pl.resident = false;
    pl.centre_in_shared = c_shared;
    pl.shared_bytes = bytes;
    return pl;
}

void validate(const Args& a) {
    if (a.n < 1 || a.d < 1) throw std::invalid_argument("x must have at least one row and one column");
    if (a.n > INT_MAX - kRowPad)
        throw std::invalid_argument("n = " + std::to_string(a.n) + " rows is more than the CUDA kernel indexes (2**31 - 33)");
    if (a.d > 65535 * 32)  // the packing grid's y dimension
        throw std::invalid_argument("d = " + std::to_string(a.d) + " is more than the CUDA kernel handles (2097120)");
    if (a.n_selected < 0 || a.n_selected > a.n) throw std::invalid_argument("bad number of selected rows");
    if (a.k < 1 || a.k > a.n - a.n_selected)
        throw std::invalid_argument("k = " + std::to_string(a.k) + " must be in [1, " + std::to_string(a.n - a.n_selected) + "]");
    if (a.first < -1 || a.first >= a.n) throw std::invalid_argument("first = " + std::to_string(a.first) + " out of range");
    if (a.first < 0 && a.n_selected == 0) throw std::invalid_argument("first must be given when selected is empty");
    if (a.x == nullptr || a.indices == nullptr || a.workspace == nullptr || a.aux == nullptr)
        throw std::invalid_argument("null device pointer");
    if (a.n_selected > 0 && a.selected == nullptr) throw std::invalid_argument("null selected pointer");
    if (reinterpret_cast<std::uintptr_t>(a.workspace) % 256 != 0) throw std::invalid_argument("workspace must be 256-byte aligned");
    if (a.workspace_bytes < workspace_layout(a.n, a.d).bytes) throw std::invalid_argument("workspace too small");
    if (static_cast<int>(a.dtype) < 0 || static_cast<int>(a.dtype) > 3) throw std::invalid_argument("bad dtype code");
}

template <typename T>
void launch_pack(const Args& a, float* X, long long ld, u64* aux, cudaStream_t s) {
    const dim3 block(32, 8);
    const dim3 grid(static_cast<unsigned>(ceil_div(a.n, 32)), static_cast<unsigned>(ceil_div(a.d, 32)));
    pack<T><<<grid, block, 0, s>>>(static_cast<const T*>(a.x), static_cast<int>(a.n), static_cast<int>(a.d),
                                   a.row_stride, a.col_stride, X, ld, aux, max_abs_for(a.d));
}

}  // namespace

Plan plan(int device, std::int64_t n, std::int64_t d, int blocks) {
    if (n < 1 || d < 1) throw std::invalid_argument("n and d must be >= 1");
    DeviceGuard guard(device);
    return make_plan(device_info(device), n, d, blocks);
}

int runtime_version() { return CUDART_VERSION; }

bool supported(int device) {
    try {
        DeviceGuard guard(device);
        cudaFuncAttributes fa;
        // fails with cudaErrorNoKernelImageForDevice on an architecture the
        // build has neither SASS nor compatible PTX for
        if (cudaFuncGetAttributes(&fa, select_fn(kResident)) != cudaSuccess) {
            (void)cudaGetLastError();
            return false;
        }
        (void)device_info(device);
        return true;
    } catch (const std::exception&) {
        (void)cudaGetLastError();
        return false;
    }
}

int compute_capability(int device) {
    DeviceGuard guard(device);
    return device_info(device).cc;
}

void kcenter(const Args& a) {
    validate(a);
    DeviceGuard guard(a.device);
    const DeviceInfo di = device_info(a.device);
    const cudaStream_t s = reinterpret_cast<cudaStream_t>(a.stream);
    const WorkspaceLayout w = workspace_layout(a.n, a.d);
    char* const ws = static_cast<char*>(a.workspace);
    float* const X = reinterpret_cast<float*>(ws + w.x_offset);
    const long long ld = padded_rows(a.n);
    u64* const aux = reinterpret_cast<u64*>(a.aux);

    init_aux<<<1, 1, 0, s>>>(aux);
    switch (a.dtype) {
        case XType::Float32: launch_pack<float>(a, X, ld, aux, s); break;
        case XType::Float64: launch_pack<double>(a, X, ld, aux, s); break;
        case XType::Float16: launch_pack<__half>(a, X, ld, aux, s); break;
        case XType::BFloat16: launch_pack<__nv_bfloat16>(a, X, ld, aux, s); break;
    }
    check(cudaGetLastError(), "packing x");

    SelectParams p;
    p.X = X;
    p.ld = ld;
    p.n = static_cast<int>(a.n);
    p.d = static_cast<int>(a.d);
    p.gmind = reinterpret_cast<float*>(ws + w.mind_offset);
    p.partials = reinterpret_cast<u64*>(ws + w.partials_offset);
    p.selected = reinterpret_cast<const long long*>(a.selected);
    p.n_selected = static_cast<int>(a.n_selected);
    p.first = static_cast<int>(a.first);
    p.k = static_cast<int>(a.k);
    p.indices = reinterpret_cast<long long*>(a.indices);
    p.distances = a.distances;
    p.distances_f64 = a.distances_f64 ? 1 : 0;
    p.aux = aux;
    p.skip_if_bad = a.skip_if_bad ? 1 : 0;

    int requested = a.blocks;
    for (;;) {
        const Plan pl = make_plan(di, a.n, a.d, requested);
        p.rows = pl.rows_per_block;
        const int mode = pl.resident ? kResident : (pl.centre_in_shared ? kStream : kStreamWideD);
        cudaError_t e;
        if (pl.blocks == 1) {
            void* args[] = {&p};
            e = cudaLaunchKernel(select_fn(mode), dim3(1), dim3(kThreads), args, pl.shared_bytes, s);
        } else {
            void* args[] = {&p};
            e = cudaLaunchCooperativeKernel(select_fn(mode), dim3(static_cast<unsigned>(pl.blocks)), dim3(kThreads),
                                            args, pl.shared_bytes, s);
        }
        if (e == cudaErrorCooperativeLaunchTooLarge && pl.blocks > 1) {
            // fewer SMs available than the device reports (e.g. under MPS): halve the grid
            (void)cudaGetLastError();
            requested = std::max(1, pl.blocks / 2);
            continue;
        }
        check(e, "launching the selection kernel");
        break;
    }
}

}  // namespace cuda
}  // namespace smallgan

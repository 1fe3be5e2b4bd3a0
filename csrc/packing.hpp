// Reading x into the engine: float32 conversion, the value check fused into
// the copy, and the error message for rejected values.  The spatial path
// (kcenter_spatial.cpp, rows in Morton order) reads rows through here; the
// blocked path (kcenter.cpp) copies whole blocks in its own loop
// (pack_blocks, the training sizes' hot path) with the same compare and the
// same conversion, and both report through describe_bad_values.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>

#include "float_limits.hpp"
#include "kcenter.hpp"

namespace smallgan {
namespace {  // internal linkage: see distance.hpp on per-ISA copies

struct AlignedFree {
    void operator()(void* p) const { std::free(p); }
};
template <typename T>
using AlignedBuf = std::unique_ptr<T[], AlignedFree>;

// 64-byte aligned, uninitialised storage for `count` values of T.
template <typename T>
AlignedBuf<T> aligned_array(std::size_t count) {
    // aligned_alloc wants a size that is a multiple of the alignment
    std::size_t bytes = ((count * sizeof(T) + 63) / 64) * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (p == nullptr) throw std::bad_alloc();
    return AlignedBuf<T>(static_cast<T*>(p));
}

// The error for a rejected x: how many NaN/Inf values and the first row, or
// the largest magnitude, the bound and d.  Same wording as the Python-side
// checks (python/smallgan/coreset.py).
template <typename T>
std::string describe_bad_values(const T* x, std::int64_t n, std::int64_t d, std::int64_t rs, std::int64_t cs) {
    std::int64_t count = 0, first_row = -1;
    double largest = 0.0;
    for (std::int64_t i = 0; i < n; ++i)
        for (std::int64_t j = 0; j < d; ++j) {
            const double v = static_cast<double>(x[i * rs + j * cs]);
            if (!std::isfinite(v)) {
                if (count++ == 0) first_row = i;
            } else {
                largest = std::max(largest, std::fabs(v));
            }
        }
    char buf[256];
    if (count > 0)
        std::snprintf(buf, sizeof buf, "x contains %lld NaN or Inf value(s); the first is in row %lld",
                      static_cast<long long>(count), static_cast<long long>(first_row));
    else
        std::snprintf(buf, sizeof buf,
                      "x has values up to %.4g in magnitude; distances are computed in float32, "
                      "so for d = %lld columns |x| must stay below %.4g: rescale x",
                      largest, static_cast<long long>(d), max_abs_for(d));
    return buf;
}

inline std::string describe_bad_values(const KCenterInput& in) {
    if (in.dtype == DType::Float64)
        return describe_bad_values(static_cast<const double*>(in.data), in.n, in.d, in.row_stride, in.col_stride);
    return describe_bad_values(static_cast<const float*>(in.data), in.n, in.d, in.row_stride, in.col_stride);
}

// Row i of x as float32 (a plain conversion: what every path computes on).
// Returns false if a value is NaN, Inf or |v| >= max_abs_for(d) (one compare
// per value; the details are found only on the error path).
template <typename T>
inline bool read_row(const T* x, std::int64_t i, std::int64_t d, std::int64_t rs, std::int64_t cs,
                     T limit, float* out) {
    const T* row = x + i * rs;
    bool ok = true;
    for (std::int64_t j = 0; j < d; ++j) {
        const T v = row[j * cs];
        ok &= std::fabs(v) < limit;  // false for NaN too
        out[j] = static_cast<float>(v);
    }
    return ok;
}

// Calls f(read) once with a row reader for in's dtype: read(i, out) fills
// out[0..d) with row i as float32 and returns whether its values are valid.
template <typename F>
auto with_row_reader(const KCenterInput& in, F&& f) {
    if (in.dtype == DType::Float64) {
        const double* x = static_cast<const double*>(in.data);
        const double limit = max_abs_for(in.d);
        return f([=, &in](std::int64_t i, float* out) {
            return read_row(x, i, in.d, in.row_stride, in.col_stride, limit, out);
        });
    }
    const float* x = static_cast<const float*>(in.data);
    const float limit = static_cast<float>(max_abs_for(in.d));
    return f([=, &in](std::int64_t i, float* out) {
        return read_row(x, i, in.d, in.row_stride, in.col_stride, limit, out);
    });
}

}  // namespace
}  // namespace smallgan

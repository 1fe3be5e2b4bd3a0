#include "simd.hpp"

#include <cstdlib>
#include <stdexcept>

namespace smallgan {

SimdLevel detect_simd_level() {
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#if defined(__GNUC__) || defined(__clang__)
    __builtin_cpu_init();
#if defined(SMALLGAN_HAVE_AVX512)
    // The AVX-512 kernel uses F only (masks, min, fmadd); BW/DQ/VL are not needed.
    if (__builtin_cpu_supports("avx512f")) return SimdLevel::AVX512;
#endif
#if defined(SMALLGAN_HAVE_AVX2)
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::AVX2;
#endif
#endif
#endif
    return SimdLevel::Baseline;
}

const char* simd_level_name(SimdLevel level) {
    switch (level) {
        case SimdLevel::AVX512: return "avx512";
        case SimdLevel::AVX2: return "avx2";
        default: return "baseline";
    }
}

SimdLevel parse_simd_level(const std::string& name) {
    if (name == "baseline" || name == "scalar") return SimdLevel::Baseline;
    if (name == "avx2") return SimdLevel::AVX2;
    if (name == "avx512") return SimdLevel::AVX512;
    throw std::invalid_argument("unknown SIMD level '" + name +
                                "': expected one of 'baseline', 'avx2', 'avx512'");
}

SimdLevel default_simd_level() {
    // Function-local static: computed once, thread-safe initialisation (C++11).
    static const SimdLevel level = [] {
        SimdLevel best = detect_simd_level();
        const char* env = std::getenv("SMALLGAN_SIMD");
        if (env == nullptr || *env == '\0') return best;
        SimdLevel asked = parse_simd_level(env);
        if (static_cast<int>(asked) > static_cast<int>(best)) {
            throw std::invalid_argument(std::string("SMALLGAN_SIMD=") + env +
                                        " is not supported on this CPU/build (best: " +
                                        simd_level_name(best) + ")");
        }
        return asked;
    }();
    return level;
}

}  // namespace smallgan

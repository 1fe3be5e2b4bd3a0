// SIMD level detection and dispatch for the distance kernels.
//
// Each instruction set has its own translation unit compiled with its own
// flags (distance_avx2.cpp, distance_avx512.cpp); everything else, this file
// included, is compiled for the baseline ISA so the module loads on any
// x86-64.  The level is detected once; SMALLGAN_SIMD=baseline|avx2|avx512
// lowers it (tests use this to run every level on one machine).
#pragma once

#include <string>

namespace smallgan {

enum class SimdLevel : int { Baseline = 0, AVX2 = 1, AVX512 = 2 };

// Highest level this CPU supports AND this build was compiled with.
SimdLevel detect_simd_level();

// The level used when a call does not ask for one: detect_simd_level(),
// lowered by the SMALLGAN_SIMD environment variable (read once).  Throws
// std::invalid_argument for an unknown name or a level the CPU cannot run.
SimdLevel default_simd_level();

const char* simd_level_name(SimdLevel level);
// Parses "baseline" (alias "scalar"), "avx2", "avx512"; throws std::invalid_argument.
SimdLevel parse_simd_level(const std::string& name);

}  // namespace smallgan

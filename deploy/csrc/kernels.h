// Instruction-set specific building blocks of the binary convolution.
//
// The variants differ in the XNOR/popcount inner product over an im2col tile (hand-written
// per ISA). The sign packing and the output transform are the same plain loops
// (variant_generic_impl.h), compiled in each variant's translation unit with its ISA flags
// so the compiler vectorizes them. Everything else (bit im2col, padding correction,
// threading) is shared in binary_conv.cc and compiled for the baseline ISA.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bnn {

// Output channels are processed in blocks of this many (packed weight layout below).
constexpr int kOutBlock = 8;
// Every tile's pixel count is a multiple of this (covers all variants' pixel blocks).
constexpr int kPixelAlign = 16;

// Inner product of an im2col tile with all output-channel blocks:
//   out[o][q] = sum_k popcount(a[k][q] XOR b[o / 8][k][o % 8])
// a: [k64][tile] 64-bit words (pixels contiguous), b: [o_blocks][k64][8],
// out: [o_blocks * 8][tile] int32. tile is a multiple of kPixelAlign.
struct PopcountGemmArgs {
  const uint64_t* a;
  int64_t tile;
  int64_t k64;
  const uint64_t* b;
  int64_t o_blocks;
  int32_t* out;
};

// Signs of one image's channels [C][HW] for pixels [p0, p1) into out[p][words_per_pixel]:
// channel c -> word c / 32, bit c % 32; a set bit means the value is not >= 0 (i.e. -1, NaN).
struct PackSignsArgs {
  const float* x;
  int64_t C;
  int64_t HW;
  int64_t p0, p1;
  int64_t words_per_pixel;
  uint32_t* out;
};

// Output transform of one tile of `count` pixels (see binary_conv.h / OP_CONTRACT.md):
// y[o][q] = ((dot * post_scale[o]) * row_factor[q]) * col_factor[q] + post_bias[o]
//           (+ residual[o][q]) with dot = valid_taps[q] * channels - 2 * counts[o][q].
// y and residual point at the tile's first pixel of output channel 0; channel planes are
// `plane` floats apart. counts is [O][tile].
struct EpilogueArgs {
  const int32_t* counts;
  int64_t tile, count, O, plane;
  const int32_t* valid_taps;
  int32_t channels;
  const float* post_scale;
  const float* post_bias;
  const float* row_factor;
  const float* col_factor;
  const float* residual;  // or null
  float* y;
  // Pixels of the next tile of the same image (0 if none): the epilogue prefetches that
  // tile's output (and residual) lines while it writes this one. Output planes are written
  // 64-256 bytes at a time, O planes apart, a pattern the hardware prefetcher cannot follow,
  // so without this every store line waits for its read-for-ownership.
  int64_t next_count;
};

struct KernelVariant {
  const char* name;
  void (*pack_signs)(const PackSignsArgs&);
  void (*popcount_gemm)(const PopcountGemmArgs&);
  void (*epilogue)(const EpilogueArgs&);
};

const KernelVariant& portable_kernel();
const KernelVariant& avx2_kernel();
const KernelVariant& avx512_kernel();

// The variant to use: BNN_TASKS_KERNEL=portable|avx2|avx512 forces one (error if unknown or if
// this CPU lacks it); unset/empty/"auto" picks the best the CPU supports.
// Returns nullptr and fills *error on failure.
const KernelVariant* select_kernel(const char** error);

}  // namespace bnn

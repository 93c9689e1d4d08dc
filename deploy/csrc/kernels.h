// Instruction-set specific building blocks of the binary convolution.
//
// The popcount variants (portable, avx2, avx512) differ in the XNOR/popcount inner product
// over an im2col tile (hand-written per ISA). The sign packing and the output transform are
// the same plain loops (variant_generic_impl.h), compiled in each variant's translation unit
// with its ISA flags so the compiler vectorizes them. Everything else (bit im2col, padding
// correction, threading) is shared in binary_conv.cc and compiled for the baseline ISA.
//
// The amx variant computes on int8 tiles instead of bits, so it has its own data layout and
// runs the whole convolution in its translation unit (Int8TileConv below, kernel_amx.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "binary_conv_op.h"

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

// Calls fn(data, i) for every i in [0, total), possibly concurrently. Returns false on failure.
using ParallelFor = bool (*)(void* ctx, void (*fn)(void*, size_t), size_t total, void* data);

// Output transform operands (OP_CONTRACT.md "Semantics"); optional ones may be null.
struct Transform {
  const float* post_scale;  // [O]
  const float* post_bias;   // [O]
  const float* row_scale;   // [Ho] or null
  const float* col_scale;   // [Wo] or null
  const float* residual;    // [N][O][Ho][Wo] or null
};

// Geometry of the int8 weight tiles (made by unpack_weights_to_int8_tiles).
// The channels are split into chunks of k_chunk bytes, one tile row each (C rounded up to 4
// if C < 64, else 64; channels past C are 0); K runs chunk by chunk, taps inside a chunk.
struct Int8TileLayout {
  int64_t k_chunk;         // channels per chunk (a multiple of 4, <= 64)
  int64_t chunks_per_tap;  // ceil(C / k_chunk)
  int64_t o_pairs;         // output channels in pairs of 16-row tiles: ceil(O / 32)
};

// Everything the int8 tile path needs, as plain pointers (its translation unit uses no
// shared inline/template code). weights: [o_pairs][chunks_per_tap][taps][2][k_chunk/4][16][4]
// int8 (+1/-1, 0 past C and past O; int8_tile_weights.h).
struct Int8ConvArgs {
  const ConvShape* shape;
  const float* x;  // [N][C][H][W]
  const int8_t* weights;
  Int8TileLayout layout;
  Transform transform;
  float* y;  // [N][O][Ho][Wo]
  ParallelFor parallel_for;
  void* parallel_ctx;
};

struct KernelVariant {
  const char* name;
  // Popcount variants: the per-ISA pieces driven by binary_conv.cc (null for amx).
  void (*pack_signs)(const PackSignsArgs&);
  void (*popcount_gemm)(const PopcountGemmArgs&);
  void (*epilogue)(const EpilogueArgs&);
  // Int8 tile variants: the whole convolution (null for the popcount variants). Returns
  // null or an error message.
  const char* (*int8_tile_conv)(const Int8ConvArgs&);
};

const KernelVariant& portable_kernel();
const KernelVariant& avx2_kernel();
const KernelVariant& avx512_kernel();
const KernelVariant& amx_kernel();

// Layer attributes the automatic choice looks at (the input's H and W are not known when a
// session is created).
struct LayerShape {
  int64_t in_channels, out_channels, taps, stride_h, stride_w, dilation_h, dilation_w;
};

// The variant to use: BNN_TASKS_KERNEL=portable|avx2|avx512|amx forces one (error if unknown
// or if this CPU lacks it); unset/empty/"auto" picks the best the CPU supports for this layer
// (layer may be null: the best for a typical layer). Returns nullptr and fills *error on
// failure.
const KernelVariant* select_kernel(const char** error, const LayerShape* layer);

}  // namespace bnn

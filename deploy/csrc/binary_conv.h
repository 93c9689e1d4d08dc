// Binary convolution driver: weight repacking, bit im2col, padding correction, output
// transform and work splitting. Independent of ONNX Runtime (threads come in as a callback).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "binary_conv_op.h"
#include "kernels.h"

namespace bnn {

// Weights repacked from the contract's OHWI32 layout for the kernel variant that runs them:
// bit blocks for the popcount GEMM, or int8 tiles for the amx variant (only one is filled).
struct PackedWeights {
  int64_t O = 0, taps = 0, words_per_pixel = 0, k64 = 0, o_blocks = 0;
  std::vector<uint64_t> blocks;     // [o_blocks][k64][kOutBlock], zero padded
  std::vector<int32_t> tap_popcount;  // [taps][O]: set bits of each tap's weight words
  std::vector<int32_t> total_popcount;  // [O]
  Int8TileLayout int8_layout{};     // int8 tiles (see kernels.h Int8ConvArgs)
  std::vector<int8_t> int8_tiles;
  std::vector<int32_t> source;      // the OHWI32 words these were made from (cache key)
};

// Repack `words` ([O][kh][kw][ceil(C/32)], bits past C are ignored) for the given shape, in
// the layout `kernel` computes on. Needs only the attributes of `s` (not N, H, W).
void repack_weights(const int32_t* words, const ConvShape& s, const KernelVariant& kernel,
                    PackedWeights* out);

// y = BinaryConv2d(x) for validated shapes. Returns an empty string or an error message.
std::string run_binary_conv(const ConvShape& s, const float* x, const PackedWeights& w,
                            const Transform& t, float* y, const KernelVariant& kernel,
                            ParallelFor parallel_for, void* parallel_ctx);

}  // namespace bnn

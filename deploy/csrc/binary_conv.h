// Binary convolution driver: weight repacking, bit im2col, padding correction, output
// transform and work splitting. Independent of ONNX Runtime (threads come in as a callback).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "binary_conv_op.h"
#include "kernels.h"

namespace bnn {

// Weights repacked from the contract's OHWI32 layout for the popcount GEMM.
struct PackedWeights {
  int64_t O = 0, taps = 0, words_per_pixel = 0, k64 = 0, o_blocks = 0;
  std::vector<uint64_t> blocks;     // [o_blocks][k64][kOutBlock], zero padded
  std::vector<int32_t> tap_popcount;  // [taps][O]: set bits of each tap's weight words
  std::vector<int32_t> total_popcount;  // [O]
  std::vector<int32_t> source;      // the OHWI32 words these were made from (cache key)
};

// Repack `words` ([O][kh][kw][ceil(C/32)], bits past C are ignored) for the given shape.
void repack_weights(const int32_t* words, const ConvShape& s, PackedWeights* out);

// Output transform operands (OP_CONTRACT.md "Semantics"); optional ones may be null.
struct Transform {
  const float* post_scale;  // [O]
  const float* post_bias;   // [O]
  const float* row_scale;   // [Ho] or null
  const float* col_scale;   // [Wo] or null
  const float* residual;    // [N][O][Ho][Wo] or null
};

// Calls fn(data, i) for every i in [0, total), possibly concurrently. Returns false on failure.
using ParallelFor = bool (*)(void* ctx, void (*fn)(void*, size_t), size_t total, void* data);

// y = BinaryConv2d(x) for validated shapes. Returns an empty string or an error message.
std::string run_binary_conv(const ConvShape& s, const float* x, const PackedWeights& w,
                            const Transform& t, float* y, const KernelVariant& kernel,
                            ParallelFor parallel_for, void* parallel_ctx);

}  // namespace bnn

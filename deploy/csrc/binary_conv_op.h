// bnn_tasks::BinaryConv2d: names and limits shared by the ONNX Runtime glue and the kernels.
// The semantics live in deploy/OP_CONTRACT.md (the single written contract); keep both in sync.
#pragma once

#include <cstdint>

namespace bnn {

constexpr const char* kOpDomain = "bnn_tasks";
constexpr const char* kOpType = "BinaryConv2d";
constexpr int kOpVersion = 1;
constexpr const char* kWeightLayoutOHWI32 = "OHWI32";

// Positional inputs (OP_CONTRACT.md, "Inputs").
enum Input : int {
  kInputX = 0,
  kInputWeights = 1,
  kInputPostScale = 2,
  kInputPostBias = 3,
  kInputRowScale = 4,
  kInputColScale = 5,
  kInputResidual = 6,
  kNumInputs = 7,
};

// Attribute sanity bound: keeps every size computation far away from int64 overflow.
constexpr int64_t kMaxAttributeValue = int64_t{1} << 20;

// Conv geometry once the input shape is known. All values validated (> 0 / >= 0).
struct ConvShape {
  int64_t N, C, H, W;   // input
  int64_t O;            // output channels
  int64_t kh, kw, sh, sw, dh, dw;
  int64_t pt, pl, pb, pr;
  int64_t Ho, Wo;       // output size

  int64_t taps() const { return kh * kw; }
  int64_t words_per_pixel() const { return (C + 31) / 32; }  // 32-bit words per packed pixel
};

// Output size of one spatial dim per the contract; may be <= 0 for impossible geometry.
inline int64_t conv_output_size(int64_t in, int64_t k, int64_t s, int64_t pad0, int64_t pad1,
                                int64_t d) {
  const int64_t span = in + pad0 + pad1 - d * (k - 1) - 1;
  if (span < 0) return 0;
  return span / s + 1;
}

}  // namespace bnn

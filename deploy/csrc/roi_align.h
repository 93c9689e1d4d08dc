// bnn_tasks::MultiLevelRoiAlign: RoIAlign of each RoI on its own FPN level (mmdet's
// SingleRoIExtractor with average RoIAlign), independent of ONNX Runtime. The semantics live
// in deploy/OP_CONTRACT.md; the ONNX Runtime glue is roi_align_op.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels.h"  // ParallelFor

namespace bnn {

constexpr const char* kRoiAlignOpType = "MultiLevelRoiAlign";

// One FPN level: features [N][C][H][W] and the factor from image to feature coordinates.
struct RoiLevel {
  const float* data;
  int64_t H, W;
  float spatial_scale;
};

// Attributes of a node (validated by the glue).
struct RoiAlignParams {
  int64_t N = 0, C = 0;              // images and channels, the same on every level
  int64_t out_h = 0, out_w = 0;      // output_height, output_width
  int64_t sampling_ratio = 0;        // samples per bin and axis; 0: ceil(bin size)
  bool aligned = true;               // half-pixel offset (mmcv aligned=True)
  float finest_scale = 56.f;         // RoI scale that maps to level 0
};

// The level a RoI [x1, y1, x2, y2] is pooled on: floor(log2(sqrt(w * h) / finest_scale +
// 1e-6)) clamped to [0, num_levels - 1] (SingleRoIExtractor.map_roi_levels).
int64_t roi_level(const float* box, float finest_scale, int64_t num_levels);

// y[r][c][i][j] for rois [R][5] (batch index, x1, y1, x2, y2) in image pixels. Returns an empty
// string or an error message (a batch index outside [0, N) is one).
std::string multilevel_roi_align(const RoiAlignParams& p, const std::vector<RoiLevel>& levels,
                                 const float* rois, int64_t num_rois, float* y,
                                 ParallelFor parallel_for, void* parallel_ctx);

// The SIMD width the bilinear accumulation uses on this CPU ("avx512", "avx2" or "portable").
const char* roi_align_variant();

}  // namespace bnn

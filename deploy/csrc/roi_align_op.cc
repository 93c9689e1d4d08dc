// ONNX Runtime glue for bnn_tasks::MultiLevelRoiAlign: attribute and input validation, output
// allocation; the pooling itself is roi_align.cc. Every failure is an OrtStatus naming the node
// and the problem (OP_CONTRACT.md, "MultiLevelRoiAlign").
#include "roi_align_op.h"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "binary_conv_op.h"  // kOpDomain, kOpVersion, kMaxAttributeValue
#include "ort_glue.h"
#include "roi_align.h"

namespace bnn {
namespace {

using ort::dims_string;
using ort::g_api;
using ort::TensorView;

struct RoiAlignKernel {
  std::string node_name;
  RoiAlignParams params;            // N and C are filled per run
  std::vector<float> spatial_scales;  // one per feature input
};

const std::string& roi_op_name() {
  static const std::string name = std::string(kOpDomain) + "::" + kRoiAlignOpType;
  return name;
}

OrtStatus* error(const std::string& node, const std::string& message) {
  return ort::op_error(roi_op_name(), node, message);
}

OrtStatus* parse_attributes(const OrtKernelInfo* info, RoiAlignKernel* k) {
  const ort::AttributeReader read(info, roi_op_name(), k->node_name);
  RoiAlignParams& p = k->params;
  RETURN_IF_STATUS(read.int64_in("output_height", 1, kMaxAttributeValue, &p.out_h));
  RETURN_IF_STATUS(read.int64_in("output_width", 1, kMaxAttributeValue, &p.out_w));
  RETURN_IF_STATUS(read.int64_in("sampling_ratio", 0, kMaxAttributeValue, &p.sampling_ratio));
  int64_t aligned = 1;
  RETURN_IF_STATUS(read.int64_in("aligned", 0, 1, &aligned));
  p.aligned = aligned != 0;
  RETURN_IF_STATUS(read.float32("finest_scale", &p.finest_scale));
  if (!(p.finest_scale > 0.f) || !std::isfinite(p.finest_scale))
    return read.error("attribute 'finest_scale' must be a positive number, got " +
                      std::to_string(p.finest_scale));
  RETURN_IF_STATUS(read.float32s("spatial_scales", &k->spatial_scales));
  for (size_t i = 0; i < k->spatial_scales.size(); ++i)
    if (!(k->spatial_scales[i] > 0.f) || !std::isfinite(k->spatial_scales[i]))
      return read.error("attribute 'spatial_scales' must be positive numbers, got " +
                        std::to_string(k->spatial_scales[i]) + " at " + std::to_string(i));
  return nullptr;
}

OrtStatus* read_float_input(OrtKernelContext* ctx, const std::string& node, size_t index,
                            const std::string& name, TensorView* view) {
  bool is_tensor = true;
  RETURN_IF_STATUS(ort::read_input(ctx, index, view, &is_tensor));
  if (!is_tensor || view->value == nullptr) return error(node, "input '" + name + "' must be a tensor");
  if (view->type != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT)
    return error(node, "input '" + name + "' must be float32");
  return nullptr;
}

OrtStatus* compute(RoiAlignKernel& k, OrtKernelContext* ctx) {
  const std::string& node = k.node_name;
  size_t inputs = 0;
  RETURN_IF_STATUS(g_api->KernelContext_GetInputCount(ctx, &inputs));
  const size_t num_levels = inputs - 1;
  if (num_levels != k.spatial_scales.size())
    return error(node, "got " + std::to_string(num_levels) + " feature inputs but attribute "
                       "'spatial_scales' has " + std::to_string(k.spatial_scales.size()) + " values");
  TensorView rois;
  RETURN_IF_STATUS(read_float_input(ctx, node, 0, "rois", &rois));
  if (rois.dims.size() != 2 || rois.dims[1] != 5)
    return error(node, "input 'rois' must have shape [R, 5] (batch index, x1, y1, x2, y2), got " +
                           dims_string(rois.dims));
  RoiAlignParams p = k.params;
  std::vector<RoiLevel> levels;
  for (size_t i = 0; i < num_levels; ++i) {
    const std::string name = "features_" + std::to_string(i);
    TensorView f;
    RETURN_IF_STATUS(read_float_input(ctx, node, i + 1, name, &f));
    if (f.dims.size() != 4 || f.dims[2] <= 0 || f.dims[3] <= 0 || f.dims[1] <= 0)
      return error(node, "input '" + name + "' must be [N, C, H, W] with C, H, W > 0, got " +
                             dims_string(f.dims));
    if (i == 0) {
      p.N = f.dims[0];
      p.C = f.dims[1];
    } else if (f.dims[0] != p.N || f.dims[1] != p.C) {
      return error(node, "input '" + name + "' has shape " + dims_string(f.dims) + " but features_0 "
                         "has N = " + std::to_string(p.N) + ", C = " + std::to_string(p.C) +
                         " (every level must have the same N and C)");
    }
    levels.push_back(RoiLevel{static_cast<const float*>(f.data), f.dims[2], f.dims[3],
                              k.spatial_scales[i]});
  }
  const int64_t R = rois.dims[0];
  if (R * p.C * p.out_h * p.out_w > (int64_t{1} << 40))
    return error(node, "output would have more than 2^40 elements");
  const int64_t out_dims[4] = {R, p.C, p.out_h, p.out_w};
  OrtValue* y = nullptr;
  RETURN_IF_STATUS(g_api->KernelContext_GetOutput(ctx, 0, out_dims, 4, &y));
  void* y_data = nullptr;
  RETURN_IF_STATUS(g_api->GetTensorMutableData(y, &y_data));
  const std::string failure =
      multilevel_roi_align(p, levels, static_cast<const float*>(rois.data), R,
                           static_cast<float*>(y_data), ort::parallel_for, ctx);
  if (!failure.empty()) return error(node, failure);
  return nullptr;
}

// ---- OrtCustomOp callbacks ----

OrtStatus* ORT_API_CALL create_kernel(const OrtCustomOp*, const OrtApi*, const OrtKernelInfo* info,
                                      void** kernel) noexcept {
  try {
    auto k = std::make_unique<RoiAlignKernel>();
    k->node_name = ort::node_name(info);
    RETURN_IF_STATUS(parse_attributes(info, k.get()));
    *kernel = k.release();
    return nullptr;
  } catch (const std::exception& e) {
    return error("", e.what());
  }
}

OrtStatus* ORT_API_CALL compute_kernel(void* kernel, OrtKernelContext* ctx) noexcept {
  try {
    return compute(*static_cast<RoiAlignKernel*>(kernel), ctx);
  } catch (const std::exception& e) {
    return error(static_cast<RoiAlignKernel*>(kernel)->node_name, e.what());
  }
}

void ORT_API_CALL destroy_kernel(void* kernel) noexcept { delete static_cast<RoiAlignKernel*>(kernel); }

const char* ORT_API_CALL op_name(const OrtCustomOp*) noexcept { return kRoiAlignOpType; }
// Input 0: rois; input 1: the feature levels (variadic, at least one, all float32).
size_t ORT_API_CALL input_count(const OrtCustomOp*) noexcept { return 2; }
ONNXTensorElementDataType ORT_API_CALL input_type(const OrtCustomOp*, size_t) noexcept {
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}
OrtCustomOpInputOutputCharacteristic ORT_API_CALL input_characteristic(const OrtCustomOp*,
                                                                       size_t index) noexcept {
  return index == 0 ? INPUT_OUTPUT_REQUIRED : INPUT_OUTPUT_VARIADIC;
}
int ORT_API_CALL min_arity(const OrtCustomOp*) noexcept { return 1; }
int ORT_API_CALL homogeneous(const OrtCustomOp*) noexcept { return 1; }

OrtCustomOp make_op() {
  OrtCustomOp op = ort::cpu_op_table();
  op.GetName = op_name;
  op.GetInputType = input_type;
  op.GetInputTypeCount = input_count;
  op.GetInputCharacteristic = input_characteristic;
  op.GetVariadicInputMinArity = min_arity;
  op.GetVariadicInputHomogeneity = homogeneous;
  op.KernelDestroy = destroy_kernel;
  op.CreateKernelV2 = create_kernel;
  op.KernelComputeV2 = compute_kernel;
  return op;
}

const OrtCustomOp g_roi_align_op = make_op();

}  // namespace

const OrtCustomOp* roi_align_custom_op() { return &g_roi_align_op; }

}  // namespace bnn

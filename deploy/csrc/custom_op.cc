// ONNX Runtime glue for bnn_tasks::BinaryConv2d (attribute and input validation, weight cache,
// threading through the runtime's intra-op pool) and the registration of the library's ops
// (MultiLevelRoiAlign's glue is roi_align_op.cc).
//
// Written against the C API only and never linked against onnxruntime: the runtime hands us
// its API table in RegisterCustomOps. Every failure becomes an OrtStatus naming the problem.
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "binary_conv.h"
#include "binary_conv_op.h"
#include "kernels.h"
#include "onnxruntime_c_api.h"
#include "ort_glue.h"
#include "roi_align_op.h"

#define BNN_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

using bnn::ort::dims_string;
using bnn::ort::g_api;
using bnn::ort::TensorView;

// Oldest API version providing everything used here (CreateKernelV2, KernelContext_ParallelFor).
constexpr uint32_t kMinApiVersion = 17;

struct ConvAttributes {
  std::string node_name;
  int64_t in_channels = 0, out_channels = 0;
  int64_t kh = 0, kw = 0, sh = 0, sw = 0, dh = 0, dw = 0;
  int64_t pt = 0, pl = 0, pb = 0, pr = 0;
};

struct Kernel {
  ConvAttributes attrs;
  const bnn::KernelVariant* variant = nullptr;
  std::mutex cache_mutex;
  std::shared_ptr<const bnn::PackedWeights> weights;  // repacked once, reused while unchanged
  // W_packed is a constant initializer (the exported case): its words cannot change between
  // runs, so the per-run comparison with the cached copy (300 KB for 512->512) is skipped.
  bool weights_constant = false;
};

const std::string& conv_op_name() {
  static const std::string name = std::string(bnn::kOpDomain) + "::" + bnn::kOpType;
  return name;
}

OrtStatus* error(const ConvAttributes* attrs, const std::string& message) {
  return bnn::ort::op_error(conv_op_name(), attrs != nullptr ? attrs->node_name : "", message);
}

OrtStatus* parse_attributes(const OrtKernelInfo* info, ConvAttributes* a) {
  a->node_name = bnn::ort::node_name(info);
  const bnn::ort::AttributeReader read(info, conv_op_name(), a->node_name);
  constexpr int64_t kMax = bnn::kMaxAttributeValue;
  RETURN_IF_STATUS(read.int64_in("in_channels", 1, kMax, &a->in_channels));
  RETURN_IF_STATUS(read.int64_in("out_channels", 1, kMax, &a->out_channels));
  int64_t kernel[2], strides[2], dilations[2], pads[4];
  RETURN_IF_STATUS(read.int64s("kernel_shape", 2, kernel));
  RETURN_IF_STATUS(read.int64s("strides", 2, strides));
  RETURN_IF_STATUS(read.int64s("pads", 4, pads));
  RETURN_IF_STATUS(read.int64s("dilations", 2, dilations));
  std::string layout;
  RETURN_IF_STATUS(read.text("weight_layout", &layout));
  if (layout != bnn::kWeightLayoutOHWI32)
    return error(a, "unknown weight_layout '" + layout + "' (this library knows: '" +
                        bnn::kWeightLayoutOHWI32 + "')");
  for (int i = 0; i < 2; ++i) {
    const std::string at = "[" + std::to_string(i) + "]";
    RETURN_IF_STATUS(read.check_range("kernel_shape" + at, kernel[i], 1, kMax));
    RETURN_IF_STATUS(read.check_range("strides" + at, strides[i], 1, kMax));
    RETURN_IF_STATUS(read.check_range("dilations" + at, dilations[i], 1, kMax));
  }
  static const char* kPadNames[4] = {"pads[0] (top)", "pads[1] (left)", "pads[2] (bottom)",
                                     "pads[3] (right)"};
  for (int i = 0; i < 4; ++i) RETURN_IF_STATUS(read.check_range(kPadNames[i], pads[i], 0, kMax));
  a->kh = kernel[0]; a->kw = kernel[1];
  a->sh = strides[0]; a->sw = strides[1];
  a->dh = dilations[0]; a->dw = dilations[1];
  a->pt = pads[0]; a->pl = pads[1]; a->pb = pads[2]; a->pr = pads[3];
  // The dot product must stay exact in float32 (|dot| <= 2^24).
  if (a->kh * a->kw * a->in_channels > (int64_t{1} << 24))
    return error(a, "kernel_shape[0] * kernel_shape[1] * in_channels exceeds 2^24 (the float32 "
                    "output would no longer be exact)");
  return nullptr;
}

OrtStatus* get_input(OrtKernelContext* ctx, const ConvAttributes& a, size_t index,
                     const char* name, TensorView* view) {
  bool is_tensor = true;
  RETURN_IF_STATUS(bnn::ort::read_input(ctx, index, view, &is_tensor));
  if (!is_tensor) return error(&a, std::string("input '") + name + "' must be a tensor");
  return nullptr;
}

OrtStatus* expect(const ConvAttributes& a, const TensorView& t, const char* name,
                  ONNXTensorElementDataType type, const char* type_name,
                  const std::vector<int64_t>& dims, const char* dims_meaning) {
  if (t.type != type) return error(&a, std::string("input '") + name + "' must be " + type_name);
  if (t.dims != dims)
    return error(&a, std::string("input '") + name + "' must have shape " + dims_string(dims) +
                         " " + dims_meaning + ", got " + dims_string(t.dims));
  return nullptr;
}

// The geometry the weights depend on, known from the attributes alone (N, H, W are not).
bnn::ConvShape attribute_shape(const ConvAttributes& a) {
  bnn::ConvShape s{};
  s.C = a.in_channels;
  s.O = a.out_channels;
  s.kh = a.kh; s.kw = a.kw; s.sh = a.sh; s.sw = a.sw; s.dh = a.dh; s.dw = a.dw;
  s.pt = a.pt; s.pl = a.pl; s.pb = a.pb; s.pr = a.pr;
  return s;
}

OrtStatus* compute(Kernel& k, OrtKernelContext* ctx) {
  const ConvAttributes& a = k.attrs;
  TensorView x, w, scale, bias, row, col, res;
  RETURN_IF_STATUS(get_input(ctx, a, bnn::kInputX, "X", &x));
  RETURN_IF_STATUS(get_input(ctx, a, bnn::kInputWeights, "W_packed", &w));
  RETURN_IF_STATUS(get_input(ctx, a, bnn::kInputPostScale, "post_scale", &scale));
  RETURN_IF_STATUS(get_input(ctx, a, bnn::kInputPostBias, "post_bias", &bias));
  RETURN_IF_STATUS(get_input(ctx, a, bnn::kInputRowScale, "row_scale", &row));
  RETURN_IF_STATUS(get_input(ctx, a, bnn::kInputColScale, "col_scale", &col));
  RETURN_IF_STATUS(get_input(ctx, a, bnn::kInputResidual, "residual", &res));
  if (!x.value || !w.value || !scale.value || !bias.value)
    return error(&a, "inputs X, W_packed, post_scale and post_bias are required");

  constexpr auto kFloat = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
  constexpr auto kInt32 = ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32;
  if (x.type != kFloat) return error(&a, "input 'X' must be float32");
  if (x.dims.size() != 4)
    return error(&a, "input 'X' must be 4-D [N, C_in, H, W], got rank " + std::to_string(x.dims.size()) +
                         " " + dims_string(x.dims));
  if (x.dims[1] != a.in_channels)
    return error(&a, "input 'X' has " + std::to_string(x.dims[1]) +
                         " channels but attribute in_channels is " + std::to_string(a.in_channels));
  if (x.dims[2] <= 0 || x.dims[3] <= 0)
    return error(&a, "input 'X' must have positive height and width, got " + dims_string(x.dims));

  bnn::ConvShape s;
  s.N = x.dims[0]; s.C = x.dims[1]; s.H = x.dims[2]; s.W = x.dims[3];
  s.O = a.out_channels;
  s.kh = a.kh; s.kw = a.kw; s.sh = a.sh; s.sw = a.sw; s.dh = a.dh; s.dw = a.dw;
  s.pt = a.pt; s.pl = a.pl; s.pb = a.pb; s.pr = a.pr;
  s.Ho = bnn::conv_output_size(s.H, s.kh, s.sh, s.pt, s.pb, s.dh);
  s.Wo = bnn::conv_output_size(s.W, s.kw, s.sw, s.pl, s.pr, s.dw);
  if (s.Ho <= 0 || s.Wo <= 0)
    return error(&a, "empty output: input " + std::to_string(s.H) + "x" + std::to_string(s.W) +
                         " with kernel " + std::to_string(s.kh) + "x" + std::to_string(s.kw) +
                         ", dilation " + std::to_string(s.dh) + "x" + std::to_string(s.dw) +
                         " and pads " + dims_string({s.pt, s.pl, s.pb, s.pr}) +
                         " gives output size " + std::to_string(s.Ho) + "x" + std::to_string(s.Wo));
  if (s.N * s.O * s.Ho * s.Wo > (int64_t{1} << 40))
    return error(&a, "output would have more than 2^40 elements");

  RETURN_IF_STATUS(expect(a, w, "W_packed", kInt32, "int32 (bit-packed words)",
                          {s.O, s.kh, s.kw, s.words_per_pixel()},
                          "(out_channels, kernel_h, kernel_w, ceil(in_channels / 32)) for layout OHWI32"));
  RETURN_IF_STATUS(expect(a, scale, "post_scale", kFloat, "float32", {s.O}, "(out_channels)"));
  RETURN_IF_STATUS(expect(a, bias, "post_bias", kFloat, "float32", {s.O}, "(out_channels)"));
  if (row.value)
    RETURN_IF_STATUS(expect(a, row, "row_scale", kFloat, "float32", {s.Ho}, "(output height)"));
  if (col.value)
    RETURN_IF_STATUS(expect(a, col, "col_scale", kFloat, "float32", {s.Wo}, "(output width)"));
  if (res.value)
    RETURN_IF_STATUS(expect(a, res, "residual", kFloat, "float32", {s.N, s.O, s.Ho, s.Wo},
                            "(N, out_channels, output height, output width)"));

  // Repack the weights once; repack again only if their words change (e.g. a graph input).
  std::shared_ptr<const bnn::PackedWeights> packed;
  {
    const size_t words = static_cast<size_t>(s.O * s.taps() * s.words_per_pixel());
    std::lock_guard<std::mutex> lock(k.cache_mutex);
    if (!k.weights || k.weights->source.size() != words ||
        (!k.weights_constant &&
         std::memcmp(k.weights->source.data(), w.data, words * sizeof(int32_t)) != 0)) {
      auto fresh = std::make_shared<bnn::PackedWeights>();
      bnn::repack_weights(static_cast<const int32_t*>(w.data), s, *k.variant, fresh.get());
      k.weights = std::move(fresh);
    }
    packed = k.weights;
  }

  const int64_t out_dims[4] = {s.N, s.O, s.Ho, s.Wo};
  OrtValue* y = nullptr;
  RETURN_IF_STATUS(g_api->KernelContext_GetOutput(ctx, 0, out_dims, 4, &y));
  void* y_data = nullptr;
  RETURN_IF_STATUS(g_api->GetTensorMutableData(y, &y_data));

  bnn::Transform t;
  t.post_scale = static_cast<const float*>(scale.data);
  t.post_bias = static_cast<const float*>(bias.data);
  t.row_scale = row.value ? static_cast<const float*>(row.data) : nullptr;
  t.col_scale = col.value ? static_cast<const float*>(col.data) : nullptr;
  t.residual = res.value ? static_cast<const float*>(res.data) : nullptr;
  const std::string failure =
      bnn::run_binary_conv(s, static_cast<const float*>(x.data), *packed, t,
                           static_cast<float*>(y_data), *k.variant, bnn::ort::parallel_for, ctx);
  if (!failure.empty()) return g_api->CreateStatus(ORT_RUNTIME_EXCEPTION, failure.c_str());
  return nullptr;
}

// A constant W_packed (the exported case) is repacked when the session is created, so the
// first run does not pay for it (the amx variant unpacks it to int8 tiles here). A tensor
// of the wrong type or shape is left alone: the first run reports it.
void prepack_constant_weights(Kernel* k, const OrtValue* constant) {
  TensorView w;
  OrtStatus* st = bnn::ort::read_tensor(constant, &w);
  if (st != nullptr) {
    g_api->ReleaseStatus(st);
    return;
  }
  const bnn::ConvShape s = attribute_shape(k->attrs);
  const std::vector<int64_t> expected = {s.O, s.kh, s.kw, s.words_per_pixel()};
  if (w.type != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 || w.dims != expected) return;
  auto packed = std::make_shared<bnn::PackedWeights>();
  bnn::repack_weights(static_cast<const int32_t*>(w.data), s, *k->variant, packed.get());
  k->weights = std::move(packed);
}

// ---- OrtCustomOp callbacks ----

OrtStatus* ORT_API_CALL create_kernel(const OrtCustomOp*, const OrtApi*, const OrtKernelInfo* info,
                                      void** kernel) noexcept {
  try {
    auto k = std::make_unique<Kernel>();
    RETURN_IF_STATUS(parse_attributes(info, &k->attrs));
    const char* why = "unknown error";
    const bnn::LayerShape layer{k->attrs.in_channels, k->attrs.out_channels,
                                k->attrs.kh * k->attrs.kw, k->attrs.sh, k->attrs.sw,
                                k->attrs.dh, k->attrs.dw};
    k->variant = bnn::select_kernel(&why, &layer);
    if (k->variant == nullptr) return error(&k->attrs, why);
    int is_constant = 0;
    const OrtValue* constant = nullptr;
    OrtStatus* st = g_api->KernelInfoGetConstantInput_tensor(info, bnn::kInputWeights, &is_constant,
                                                             &constant);
    if (st != nullptr) {  // not knowing only costs the comparison
      g_api->ReleaseStatus(st);
      is_constant = 0;
    }
    k->weights_constant = is_constant != 0 && constant != nullptr;
    if (k->weights_constant) prepack_constant_weights(k.get(), constant);
    *kernel = k.release();
    return nullptr;
  } catch (const std::exception& e) {
    return g_api->CreateStatus(ORT_FAIL, (std::string("bnn_tasks::BinaryConv2d: ") + e.what()).c_str());
  }
}

OrtStatus* ORT_API_CALL compute_kernel(void* kernel, OrtKernelContext* ctx) noexcept {
  try {
    return compute(*static_cast<Kernel*>(kernel), ctx);
  } catch (const std::exception& e) {
    return g_api->CreateStatus(ORT_FAIL, (std::string("bnn_tasks::BinaryConv2d: ") + e.what()).c_str());
  }
}

void ORT_API_CALL destroy_kernel(void* kernel) noexcept { delete static_cast<Kernel*>(kernel); }

const char* ORT_API_CALL op_name(const OrtCustomOp*) noexcept { return bnn::kOpType; }
size_t ORT_API_CALL input_count(const OrtCustomOp*) noexcept { return bnn::kNumInputs; }
ONNXTensorElementDataType ORT_API_CALL input_type(const OrtCustomOp*, size_t index) noexcept {
  return index == bnn::kInputWeights ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32
                                     : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}
OrtCustomOpInputOutputCharacteristic ORT_API_CALL input_characteristic(const OrtCustomOp*,
                                                                       size_t index) noexcept {
  return index >= bnn::kInputRowScale ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
}

OrtCustomOp make_op() {
  OrtCustomOp op = bnn::ort::cpu_op_table();
  op.GetName = op_name;
  op.GetInputType = input_type;
  op.GetInputTypeCount = input_count;
  op.GetInputCharacteristic = input_characteristic;
  op.KernelDestroy = destroy_kernel;
  op.CreateKernelV2 = create_kernel;
  op.KernelComputeV2 = compute_kernel;
  return op;
}

const OrtCustomOp g_binary_conv_op = make_op();

// Domains must outlive every session that uses them; they live as long as the library.
std::mutex g_domains_mutex;
std::vector<OrtCustomOpDomain*> g_domains;

}  // namespace

BNN_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options,
                                                     const OrtApiBase* api_base) {
  // Thread-safe one-time init; every runtime in the process hands out the same table.
  static const OrtApi* const api = [api_base] {
    const OrtApi* table = api_base->GetApi(ORT_API_VERSION);
    if (table == nullptr) table = api_base->GetApi(kMinApiVersion);  // older runtime: enough
    g_api = table;
    return table;
  }();
  if (api == nullptr) {
    std::fprintf(stderr, "bnn_tasks: this ONNX Runtime provides neither C API version %d nor %u; "
                         "its ops are not registered\n", ORT_API_VERSION, kMinApiVersion);
    return nullptr;  // cannot create a status without an API table
  }
  OrtCustomOpDomain* domain = nullptr;
  RETURN_IF_STATUS(g_api->CreateCustomOpDomain(bnn::kOpDomain, &domain));
  OrtStatus* st = g_api->CustomOpDomain_Add(domain, &g_binary_conv_op);
  if (st == nullptr) st = g_api->CustomOpDomain_Add(domain, bnn::roi_align_custom_op());
  if (st == nullptr) st = g_api->AddCustomOpDomain(options, domain);
  if (st != nullptr) {
    g_api->ReleaseCustomOpDomain(domain);
    return st;
  }
  std::lock_guard<std::mutex> lock(g_domains_mutex);
  g_domains.push_back(domain);
  return nullptr;
}

// Which kernel variant a session created now would use ("avx512", ...), or the reason none can
// be used. For tools and tests (loaded with ctypes); not part of the ONNX Runtime interface.
BNN_EXPORT const char* BnnTasksSelectedKernel() {
  const char* why = "unknown error";
  const bnn::KernelVariant* v = bnn::select_kernel(&why, nullptr);
  return v ? v->name : why;
}

// The same for a node with these attributes (the automatic choice is made per layer).
BNN_EXPORT const char* BnnTasksSelectedKernelForLayer(int64_t in_channels, int64_t out_channels,
                                                      int64_t taps, int64_t stride_h,
                                                      int64_t stride_w, int64_t dilation_h,
                                                      int64_t dilation_w) {
  const char* why = "unknown error";
  const bnn::LayerShape layer{in_channels, out_channels, taps, stride_h, stride_w, dilation_h,
                              dilation_w};
  const bnn::KernelVariant* v = bnn::select_kernel(&why, &layer);
  return v ? v->name : why;
}

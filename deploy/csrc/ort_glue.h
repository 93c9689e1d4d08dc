// What the ONNX Runtime glue of every op in the library shares: the runtime's API table, the
// status macro, tensor views and the intra-op thread pool. No op-specific code here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "onnxruntime_c_api.h"

#define RETURN_IF_STATUS(expr)              \
  do {                                      \
    OrtStatus* status_ = (expr);            \
    if (status_ != nullptr) return status_; \
  } while (0)

namespace bnn {
namespace ort {

// The runtime's API table, set by RegisterCustomOps before any kernel is created.
extern const OrtApi* g_api;

// A tensor input's element type, dims and data; value is null for an omitted optional input.
struct TensorView {
  const OrtValue* value = nullptr;
  ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  std::vector<int64_t> dims;
  void* data = nullptr;
};

std::string dims_string(const std::vector<int64_t>& dims);

// Fills `view` from a tensor value (type, dims, data).
OrtStatus* read_tensor(const OrtValue* value, TensorView* view);

// Input `index` of the node into `view`; view->value stays null if the input is absent.
// *is_tensor is false (and view unfilled) if the input is not a tensor.
OrtStatus* read_input(OrtKernelContext* ctx, size_t index, TensorView* view, bool* is_tensor);

// The node's name, or "" if the runtime does not tell.
std::string node_name(const OrtKernelInfo* info);

// An OrtCustomOp table with what every op of the library shares filled in: CPU provider, one
// required float32 output, default input memory, the domain's opset version. Each op adds its
// name, inputs and kernel callbacks.
OrtCustomOp cpu_op_table();

// bnn::ParallelFor over the runtime's intra-op pool (ctx: the OrtKernelContext).
bool parallel_for(void* ctx, void (*fn)(void*, size_t), size_t total, void* data);

}  // namespace ort
}  // namespace bnn

// What the ONNX Runtime glue of every op in the library shares: the runtime's API table, the
// status macro, tensor views and the intra-op thread pool. No op-specific code here.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
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

// An ORT_INVALID_ARGUMENT status "<op> (node '<node>'): <message>" (no node part when the
// runtime did not name it); `op` is the qualified op name, e.g. "bnn_tasks::BinaryConv2d".
OrtStatus* op_error(const std::string& op, const std::string& node, const std::string& message);

// Reads one node's attributes at kernel creation; every error names the op, the node and the
// attribute (with the runtime's own message when the attribute is missing or mistyped).
class AttributeReader {
 public:
  AttributeReader(const OrtKernelInfo* info, std::string op, std::string node)
      : info_(info), op_(std::move(op)), node_(std::move(node)) {}

  OrtStatus* error(const std::string& message) const { return op_error(op_, node_, message); }
  // An int in [lowest, highest].
  OrtStatus* int64_in(const char* name, int64_t lowest, int64_t highest, int64_t* out) const;
  // Exactly `expected` ints.
  OrtStatus* int64s(const char* name, size_t expected, int64_t* out) const;
  OrtStatus* text(const char* name, std::string* out) const;
  OrtStatus* float32(const char* name, float* out) const;
  // One float or more.
  OrtStatus* float32s(const char* name, std::vector<float>* out) const;
  // `value` (attribute `what`, or an entry of one, e.g. "pads[1] (left)") in [lowest, highest].
  OrtStatus* check_range(const std::string& what, int64_t value, int64_t lowest,
                         int64_t highest) const;

 private:
  // The runtime's status for reading `name`, prefixed with the op, node and attribute.
  OrtStatus* named(OrtStatus* status, const char* name) const;

  const OrtKernelInfo* info_;
  std::string op_;
  std::string node_;
};

// An OrtCustomOp table with what every op of the library shares filled in: CPU provider, one
// required float32 output, default input memory, the domain's opset version. Each op adds its
// name, inputs and kernel callbacks.
OrtCustomOp cpu_op_table();

// bnn::ParallelFor over the runtime's intra-op pool (ctx: the OrtKernelContext).
bool parallel_for(void* ctx, void (*fn)(void*, size_t), size_t total, void* data);

}  // namespace ort
}  // namespace bnn

// Shared ONNX Runtime glue (see ort_glue.h).
#include "ort_glue.h"

#include <cstring>

#include "binary_conv_op.h"  // kOpVersion: the version of the whole domain

namespace bnn {
namespace ort {

const OrtApi* g_api = nullptr;

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

OrtStatus* read_tensor(const OrtValue* value, TensorView* view) {
  view->value = value;
  OrtTensorTypeAndShapeInfo* info = nullptr;
  RETURN_IF_STATUS(g_api->GetTensorTypeAndShape(value, &info));
  size_t rank = 0;
  OrtStatus* st = g_api->GetTensorElementType(info, &view->type);
  if (st == nullptr) st = g_api->GetDimensionsCount(info, &rank);
  if (st == nullptr) {
    view->dims.assign(rank, 0);
    st = g_api->GetDimensions(info, view->dims.data(), rank);
  }
  g_api->ReleaseTensorTypeAndShapeInfo(info);
  RETURN_IF_STATUS(st);
  return g_api->GetTensorMutableData(const_cast<OrtValue*>(value), &view->data);
}

OrtStatus* read_input(OrtKernelContext* ctx, size_t index, TensorView* view, bool* is_tensor) {
  *is_tensor = true;
  view->value = nullptr;
  size_t count = 0;
  RETURN_IF_STATUS(g_api->KernelContext_GetInputCount(ctx, &count));
  if (index >= count) return nullptr;
  const OrtValue* value = nullptr;
  RETURN_IF_STATUS(g_api->KernelContext_GetInput(ctx, index, &value));
  if (value == nullptr) return nullptr;
  int tensor = 0;
  RETURN_IF_STATUS(g_api->IsTensor(value, &tensor));
  if (!tensor) {
    *is_tensor = false;
    return nullptr;
  }
  return read_tensor(value, view);
}

std::string node_name(const OrtKernelInfo* info) {
  size_t size = 0;
  OrtStatus* st = g_api->KernelInfo_GetNodeName(info, nullptr, &size);
  std::vector<char> name(size + 1, '\0');
  if (st == nullptr && size > 0) st = g_api->KernelInfo_GetNodeName(info, name.data(), &size);
  if (st != nullptr) {
    g_api->ReleaseStatus(st);
    return "";
  }
  return name.data();
}

namespace {

const char* ORT_API_CALL cpu_provider(const OrtCustomOp*) noexcept { return "CPUExecutionProvider"; }
size_t ORT_API_CALL one_output(const OrtCustomOp*) noexcept { return 1; }
ONNXTensorElementDataType ORT_API_CALL float_output(const OrtCustomOp*, size_t) noexcept {
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
}
OrtCustomOpInputOutputCharacteristic ORT_API_CALL required_output(const OrtCustomOp*,
                                                                  size_t) noexcept {
  return INPUT_OUTPUT_REQUIRED;
}
OrtMemType ORT_API_CALL default_memory(const OrtCustomOp*, size_t) noexcept {
  return OrtMemTypeDefault;
}
int ORT_API_CALL domain_version(const OrtCustomOp*) noexcept { return kOpVersion; }

}  // namespace

OrtStatus* op_error(const std::string& op, const std::string& node, const std::string& message) {
  std::string text = op;
  if (!node.empty()) text += " (node '" + node + "')";
  text += ": " + message;
  return g_api->CreateStatus(ORT_INVALID_ARGUMENT, text.c_str());
}

OrtStatus* AttributeReader::named(OrtStatus* status, const char* name) const {
  if (status == nullptr) return nullptr;
  std::string detail = g_api->GetErrorMessage(status);
  g_api->ReleaseStatus(status);
  return error(std::string("missing or invalid attribute '") + name + "': " + detail);
}

OrtStatus* AttributeReader::check_range(const std::string& what, int64_t value, int64_t lowest,
                                        int64_t highest) const {
  if (value >= lowest && value <= highest) return nullptr;
  return error("attribute '" + what + "' must be in [" + std::to_string(lowest) + ", " +
               std::to_string(highest) + "], got " + std::to_string(value));
}

OrtStatus* AttributeReader::int64_in(const char* name, int64_t lowest, int64_t highest,
                                     int64_t* out) const {
  RETURN_IF_STATUS(named(g_api->KernelInfoGetAttribute_int64(info_, name, out), name));
  return check_range(name, *out, lowest, highest);
}

OrtStatus* AttributeReader::int64s(const char* name, size_t expected, int64_t* out) const {
  size_t size = 0;
  RETURN_IF_STATUS(named(g_api->KernelInfoGetAttributeArray_int64(info_, name, nullptr, &size), name));
  if (size != expected)
    return error(std::string("attribute '") + name + "' must have " + std::to_string(expected) +
                 " values, got " + std::to_string(size));
  return named(g_api->KernelInfoGetAttributeArray_int64(info_, name, out, &size), name);
}

OrtStatus* AttributeReader::text(const char* name, std::string* out) const {
  size_t size = 0;
  RETURN_IF_STATUS(named(g_api->KernelInfoGetAttribute_string(info_, name, nullptr, &size), name));
  std::vector<char> buffer(size + 1, '\0');
  RETURN_IF_STATUS(named(g_api->KernelInfoGetAttribute_string(info_, name, buffer.data(), &size), name));
  *out = std::string(buffer.data());
  return nullptr;
}

OrtStatus* AttributeReader::float32(const char* name, float* out) const {
  return named(g_api->KernelInfoGetAttribute_float(info_, name, out), name);
}

OrtStatus* AttributeReader::float32s(const char* name, std::vector<float>* out) const {
  size_t count = 0;
  RETURN_IF_STATUS(named(g_api->KernelInfoGetAttributeArray_float(info_, name, nullptr, &count), name));
  if (count == 0) return error(std::string("attribute '") + name + "' must have a value, got none");
  out->assign(count, 0.f);
  return named(g_api->KernelInfoGetAttributeArray_float(info_, name, out->data(), &count), name);
}

OrtCustomOp cpu_op_table() {
  OrtCustomOp op;
  std::memset(&op, 0, sizeof(op));
  op.version = ORT_API_VERSION;
  op.GetExecutionProviderType = cpu_provider;
  op.GetOutputTypeCount = one_output;
  op.GetOutputType = float_output;
  op.GetOutputCharacteristic = required_output;
  op.GetInputMemoryType = default_memory;
  op.GetStartVersion = domain_version;
  op.GetEndVersion = domain_version;
  return op;
}

bool parallel_for(void* ctx, void (*fn)(void*, size_t), size_t total, void* data) {
  OrtStatus* st = g_api->KernelContext_ParallelFor(static_cast<const OrtKernelContext*>(ctx), fn,
                                                   total, 0, data);
  if (st == nullptr) return true;
  g_api->ReleaseStatus(st);
  return false;
}

}  // namespace ort
}  // namespace bnn

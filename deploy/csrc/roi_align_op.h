// ONNX Runtime glue for bnn_tasks::MultiLevelRoiAlign (registered by custom_op.cc).
#pragma once

#include "onnxruntime_c_api.h"

namespace bnn {

// The op's OrtCustomOp table; valid for the life of the library.
const OrtCustomOp* roi_align_custom_op();

}  // namespace bnn

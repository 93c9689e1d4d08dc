// Run-time choice of the kernel variant by CPU features, overridable with BNN_TASKS_KERNEL.
#include <cstdlib>
#include <cstring>

#include "kernels.h"

namespace {

// The AVX2/AVX-512 translation units are only built for x86-64 (BNN_TASKS_X86_KERNELS).
bool cpu_has_avx2() {
#if defined(BNN_TASKS_X86_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
  return false;
#endif
}

bool cpu_has_avx512() {
#if defined(BNN_TASKS_X86_KERNELS)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vpopcntdq");
#else
  return false;
#endif
}

}  // namespace

#if !defined(BNN_TASKS_X86_KERNELS)
// Never called (the CPU checks above are false), but select_kernel names them.
const bnn::KernelVariant& bnn::avx2_kernel() { return portable_kernel(); }
const bnn::KernelVariant& bnn::avx512_kernel() { return portable_kernel(); }
#endif

const bnn::KernelVariant* bnn::select_kernel(const char** error) {
  const char* forced = std::getenv("BNN_TASKS_KERNEL");
  if (forced == nullptr || forced[0] == '\0' || std::strcmp(forced, "auto") == 0) {
    if (cpu_has_avx512()) return &avx512_kernel();
    if (cpu_has_avx2()) return &avx2_kernel();
    return &portable_kernel();
  }
  if (std::strcmp(forced, "portable") == 0) return &portable_kernel();
  if (std::strcmp(forced, "avx2") == 0) {
    if (cpu_has_avx2()) return &avx2_kernel();
    *error = "BNN_TASKS_KERNEL=avx2 but this CPU lacks AVX2/POPCNT";
    return nullptr;
  }
  if (std::strcmp(forced, "avx512") == 0) {
    if (cpu_has_avx512()) return &avx512_kernel();
    *error = "BNN_TASKS_KERNEL=avx512 but this CPU lacks AVX512F/BW/VL/VPOPCNTDQ";
    return nullptr;
  }
  *error = "BNN_TASKS_KERNEL must be one of auto, portable, avx2, avx512";
  return nullptr;
}

// Run-time choice of the kernel variant by CPU features, overridable with BNN_TASKS_KERNEL.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#if defined(BNN_TASKS_AMX_KERNEL)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

// Null if the amx variant can run here, else what is missing. Asked once per process: the
// tile-data permission (Linux >= 5.16) is granted to the whole process and stays.
const char* amx_unavailable_reason() {
#if defined(BNN_TASKS_AMX_KERNEL)
  static const char* const reason = []() -> const char* {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) || !(edx & (1u << 24)))
      return "this CPU lacks AMX-TILE";
    if (!(edx & (1u << 25))) return "this CPU lacks AMX-INT8";
    // Sign packing and the epilogue use AVX-512 (every AMX CPU so far has it).
    if (!cpu_has_avx512()) return "this CPU lacks AVX512F/BW/VL/VPOPCNTDQ";
    constexpr long kArchReqXcompPerm = 0x1023;  // asm/prctl.h
    constexpr long kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0) {
      static char message[160];
      std::snprintf(message, sizeof(message),
                    "the OS did not grant the AMX tile-data permission "
                    "(arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): %s)",
                    std::strerror(errno));
      return message;
    }
    return nullptr;
  }();
  return reason;
#else
  return "this library was built without the AMX kernel (not x86-64, or the compiler lacks "
         "-mamx-int8)";
#endif
}

// Automatic choice between amx and avx512 for one layer, measured on the Bi-Real-18 and
// dilated FCN layers (docs/kernels.md, "Dispatch"): amx is faster on stride-1 layers with
// dilation <= 2; on strided layers (the int8 input costs as much to write as for a stride-1
// layer but feeds a quarter of the outputs) and on dilation-4 layers (the tap rows of a
// pixel block no longer fit in L1) avx512 is as fast or faster. layer == null: a typical
// stride-1 layer.
bool amx_is_faster(const bnn::LayerShape* layer) {
  if (layer == nullptr) return true;
  return layer->stride_h == 1 && layer->stride_w == 1 && layer->dilation_h <= 2 &&
         layer->dilation_w <= 2;
}

}  // namespace

#if !defined(BNN_TASKS_X86_KERNELS)
// Never called (the CPU checks above are false), but select_kernel names them.
const bnn::KernelVariant& bnn::avx2_kernel() { return portable_kernel(); }
const bnn::KernelVariant& bnn::avx512_kernel() { return portable_kernel(); }
#endif
#if !defined(BNN_TASKS_AMX_KERNEL)
const bnn::KernelVariant& bnn::amx_kernel() { return portable_kernel(); }
#endif

const bnn::KernelVariant* bnn::select_kernel(const char** error, const LayerShape* layer) {
  const char* forced = std::getenv("BNN_TASKS_KERNEL");
  if (forced == nullptr || forced[0] == '\0' || std::strcmp(forced, "auto") == 0) {
    if (amx_unavailable_reason() == nullptr && amx_is_faster(layer)) return &amx_kernel();
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
  if (std::strcmp(forced, "amx") == 0) {
    if (amx_unavailable_reason() == nullptr) return &amx_kernel();
    static const char* const message = [] {  // the reason never changes
      static char text[256];
      std::snprintf(text, sizeof(text), "BNN_TASKS_KERNEL=amx but %s", amx_unavailable_reason());
      return text;
    }();
    *error = message;
    return nullptr;
  }
  *error = "BNN_TASKS_KERNEL must be one of auto, portable, avx2, avx512, amx";
  return nullptr;
}

// AVX-512 variant (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vpopcntdq):
// one vpopcntq per 8 pixels x 1 output channel x 64 input bits.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"

namespace {

#include "variant_generic_impl.h"

// 16 pixels (two zmm of 64-bit lanes) x 8 output channels per block: 16 accumulators, the
// weights broadcast from memory, so the block stays in registers for the whole K loop.
void popcount_gemm_avx512(const bnn::PopcountGemmArgs& g) {
  for (int64_t ob = 0; ob < g.o_blocks; ++ob) {
    const uint64_t* b = g.b + ob * g.k64 * bnn::kOutBlock;
    for (int64_t q0 = 0; q0 < g.tile; q0 += 16) {
      __m512i acc0[bnn::kOutBlock], acc1[bnn::kOutBlock];
      for (int r = 0; r < bnn::kOutBlock; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
      for (int64_t k = 0; k < g.k64; ++k) {
        const uint64_t* a = g.a + k * g.tile + q0;
        const __m512i a0 = _mm512_loadu_si512(a);
        const __m512i a1 = _mm512_loadu_si512(a + 8);
        const uint64_t* bk = b + k * bnn::kOutBlock;
        for (int r = 0; r < bnn::kOutBlock; ++r) {
          const __m512i w = _mm512_set1_epi64(static_cast<long long>(bk[r]));
          acc0[r] = _mm512_add_epi64(acc0[r], _mm512_popcnt_epi64(_mm512_xor_si512(a0, w)));
          acc1[r] = _mm512_add_epi64(acc1[r], _mm512_popcnt_epi64(_mm512_xor_si512(a1, w)));
        }
      }
      for (int r = 0; r < bnn::kOutBlock; ++r) {
        int32_t* out = g.out + (ob * bnn::kOutBlock + r) * g.tile + q0;
        // vpmovqd straight to memory: counts fit in 32 bits.
        _mm512_mask_cvtepi64_storeu_epi32(out, 0xff, acc0[r]);
        _mm512_mask_cvtepi64_storeu_epi32(out + 8, 0xff, acc1[r]);
      }
    }
  }
}

const bnn::KernelVariant kAvx512 = {"avx512", pack_signs_generic, popcount_gemm_avx512,
                                     epilogue_generic};

}  // namespace

const bnn::KernelVariant& bnn::avx512_kernel() { return kAvx512; }

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

// Sign packing: one vcmpps gives 16 pixels' sign bits of one channel as a mask, OR-ed into
// those pixels' words. 64 pixels per pass, so each channel row is read as 4 consecutive cache
// lines (the generic 16-pixel loop was bound by load latency across the 32 rows).
void pack_signs_avx512(const bnn::PackSignsArgs& g) {
  constexpr int64_t kBlock = 64;
  const __m512 zero = _mm512_setzero_ps();
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i stride = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int>(g.words_per_pixel)));
  int64_t p = g.p0;
  for (; p + kBlock <= g.p1; p += kBlock) {
    for (int64_t word = 0; word < g.words_per_pixel; ++word) {
      const int64_t c0 = word * 32;
      const int64_t channels = min_i64(32, g.C - c0);
      const float* row = g.x + c0 * g.HW + p;
      __m512i bits[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                         _mm512_setzero_si512()};
      for (int64_t c = 0; c < channels; ++c, row += g.HW) {
        const __m512i bit = _mm512_set1_epi32(static_cast<int>(1u << c));
        for (int v = 0; v < 4; ++v) {
          // NGE_UQ = !(x >= 0): negative and NaN set the bit, +0 and -0 do not.
          const __mmask16 neg = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + 16 * v), zero, _CMP_NGE_UQ);
          bits[v] = _mm512_mask_or_epi32(bits[v], neg, bits[v], bit);
        }
      }
      uint32_t* out = g.out + p * g.words_per_pixel + word;
      for (int v = 0; v < 4; ++v) {
        if (g.words_per_pixel == 1)
          _mm512_storeu_si512(out + 16 * v, bits[v]);
        else
          _mm512_i32scatter_epi32(out + 16 * v * g.words_per_pixel, stride, bits[v], 4);
      }
    }
  }
  if (p < g.p1) {  // the last < 64 pixels
    bnn::PackSignsArgs rest = g;
    rest.p0 = p;
    pack_signs_generic(rest);
  }
}

const bnn::KernelVariant kAvx512 = {"avx512", pack_signs_avx512, popcount_gemm_avx512,
                                     epilogue_generic, nullptr};

}  // namespace

const bnn::KernelVariant& bnn::avx512_kernel() { return kAvx512; }

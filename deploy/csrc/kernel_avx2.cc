// AVX2 variant (compiled with -mavx2 -mpopcnt): popcount by nibble lookup with vpshufb.
#include <immintrin.h>

#include <cstdint>

#include "kernels.h"

namespace {

#include "variant_generic_impl.h"

// 4 pixels (one ymm of 64-bit lanes) x 8 output channels per block. Byte counts from the
// nibble lookup are accumulated for up to 31 words, then vpsadbw sums each 64-bit lane's
// bytes, which is exactly one pixel's count.
void popcount_gemm_avx2(const bnn::PopcountGemmArgs& g) {
  constexpr int64_t kFlush = 31;
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i zero = _mm256_setzero_si256();
  for (int64_t ob = 0; ob < g.o_blocks; ++ob) {
    const uint64_t* b = g.b + ob * g.k64 * bnn::kOutBlock;
    for (int64_t q0 = 0; q0 < g.tile; q0 += 4) {
      __m256i acc[bnn::kOutBlock];
      for (int r = 0; r < bnn::kOutBlock; ++r) acc[r] = zero;
      for (int64_t k0 = 0; k0 < g.k64; k0 += kFlush) {
        const int64_t k1 = k0 + kFlush < g.k64 ? k0 + kFlush : g.k64;
        __m256i bytes[bnn::kOutBlock];
        for (int r = 0; r < bnn::kOutBlock; ++r) bytes[r] = zero;
        for (int64_t k = k0; k < k1; ++k) {
          const __m256i a =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.a + k * g.tile + q0));
          const uint64_t* bk = b + k * bnn::kOutBlock;
          for (int r = 0; r < bnn::kOutBlock; ++r) {
            const __m256i x = _mm256_xor_si256(a, _mm256_set1_epi64x(static_cast<int64_t>(bk[r])));
            const __m256i lo = _mm256_and_si256(x, low4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), low4);
            bytes[r] = _mm256_add_epi8(bytes[r], _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo),
                                                                 _mm256_shuffle_epi8(lut, hi)));
          }
        }
        for (int r = 0; r < bnn::kOutBlock; ++r)
          acc[r] = _mm256_add_epi64(acc[r], _mm256_sad_epu8(bytes[r], zero));
      }
      for (int r = 0; r < bnn::kOutBlock; ++r) {
        // Counts fit in 32 bits: pick the low dword of each 64-bit lane.
        const __m256i packed = _mm256_permutevar8x32_epi32(
            acc[r], _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(g.out + (ob * bnn::kOutBlock + r) * g.tile + q0),
                         _mm256_castsi256_si128(packed));
      }
    }
  }
}

const bnn::KernelVariant kAvx2 = {"avx2", pack_signs_generic, popcount_gemm_avx2,
                                     epilogue_generic, nullptr};

}  // namespace

const bnn::KernelVariant& bnn::avx2_kernel() { return kAvx2; }

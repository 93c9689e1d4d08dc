// Portable variant: plain C++ for the baseline ISA (no popcount instruction assumed).
#include <cstdint>

#include "kernels.h"

namespace {

#include "variant_generic_impl.h"

constexpr uint64_t kOnes1 = 0x5555555555555555ull;
constexpr uint64_t kOnes2 = 0x3333333333333333ull;
constexpr uint64_t kOnes4 = 0x0f0f0f0f0f0f0f0full;
constexpr uint64_t kBytePairs = 0x00ff00ff00ff00ffull;

// Per-byte bit counts (each byte <= 8), the first three steps of the SWAR popcount.
inline uint64_t byte_counts(uint64_t x) {
  x = x - ((x >> 1) & kOnes1);
  x = (x & kOnes2) + ((x >> 2) & kOnes2);
  return (x + (x >> 4)) & kOnes4;
}

// Sum of the 8 bytes of a byte-count accumulator (each byte <= 255).
inline uint32_t sum_bytes(uint64_t x) {
  x = (x & kBytePairs) + ((x >> 8) & kBytePairs);  // four 16-bit sums
  return static_cast<uint32_t>((x * 0x0001000100010001ull) >> 48);
}

inline uint32_t popcount64(uint64_t x) { return sum_bytes(byte_counts(x)); }

// Carry-save adder on 64 bit lanes: hi:lo = a + b + c, bit by bit.
inline void csa(uint64_t& hi, uint64_t& lo, uint64_t a, uint64_t b, uint64_t c) {
  const uint64_t u = a ^ b;
  hi = (a & b) | (u & c);
  lo = u ^ c;
}

// Harley-Seal popcount accumulation: 8 XORed words go through a carry-save adder tree into
// ones/twos/fours/eights bit planes, so only the eights need a full popcount (about 7 ops per
// word instead of 12). Blocks of 4 pixels x 2 output channels keep the state in registers;
// loops run over pixels innermost so the compiler can vectorize them with baseline SIMD.
void popcount_gemm_portable(const bnn::PopcountGemmArgs& g) {
  constexpr int kPix = 4;
  constexpr int kOut = 2;
  for (int64_t ob = 0; ob < g.o_blocks; ++ob) {
    const uint64_t* b = g.b + ob * g.k64 * bnn::kOutBlock;
    for (int r0 = 0; r0 < bnn::kOutBlock; r0 += kOut) {
      for (int64_t q0 = 0; q0 < g.tile; q0 += kPix) {
        uint64_t ones[kOut][kPix] = {}, twos[kOut][kPix] = {}, fours[kOut][kPix] = {};
        uint32_t total[kOut][kPix] = {};  // in units of 8 bits
        uint32_t tail[kOut][kPix] = {};
        int64_t k = 0;
        for (; k + 8 <= g.k64; k += 8) {
          const uint64_t* a = g.a + k * g.tile + q0;
          const uint64_t* bk = b + k * bnn::kOutBlock + r0;
          for (int r = 0; r < kOut; ++r) {
            for (int c = 0; c < kPix; ++c) {
              uint64_t x[8];
              for (int m = 0; m < 8; ++m) x[m] = a[m * g.tile + c] ^ bk[m * bnn::kOutBlock + r];
              uint64_t twos_a, twos_b, fours_a, fours_b, eights;
              csa(twos_a, ones[r][c], ones[r][c], x[0], x[1]);
              csa(twos_b, ones[r][c], ones[r][c], x[2], x[3]);
              csa(fours_a, twos[r][c], twos[r][c], twos_a, twos_b);
              csa(twos_a, ones[r][c], ones[r][c], x[4], x[5]);
              csa(twos_b, ones[r][c], ones[r][c], x[6], x[7]);
              csa(fours_b, twos[r][c], twos[r][c], twos_a, twos_b);
              csa(eights, fours[r][c], fours[r][c], fours_a, fours_b);
              total[r][c] += popcount64(eights);
            }
          }
        }
        for (; k < g.k64; ++k) {
          const uint64_t* a = g.a + k * g.tile + q0;
          const uint64_t* bk = b + k * bnn::kOutBlock + r0;
          for (int r = 0; r < kOut; ++r)
            for (int c = 0; c < kPix; ++c) tail[r][c] += popcount64(a[c] ^ bk[r]);
        }
        for (int r = 0; r < kOut; ++r) {
          int32_t* out = g.out + (ob * bnn::kOutBlock + r0 + r) * g.tile + q0;
          for (int c = 0; c < kPix; ++c)
            out[c] = static_cast<int32_t>(8 * total[r][c] + 4 * popcount64(fours[r][c]) +
                                          2 * popcount64(twos[r][c]) + popcount64(ones[r][c]) +
                                          tail[r][c]);
        }
      }
    }
  }
}

const bnn::KernelVariant kPortable = {"portable", pack_signs_generic, popcount_gemm_portable,
                                     epilogue_generic, nullptr};

}  // namespace

const bnn::KernelVariant& bnn::portable_kernel() { return kPortable; }

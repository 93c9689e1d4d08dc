// The plain-loop parts of a kernel variant (sign extraction + bit packing, output transform),
// written so the compiler vectorizes them for whatever ISA the including translation unit
// targets. Include only inside an anonymous namespace, after
// <cstdint> and kernels.h: each variant must get its own copy (one shared inline definition,
// std::min's included, could be the AVX-512 one), so no std templates here.

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

inline void pack_signs_generic(const bnn::PackSignsArgs& g) {
  // 16 pixels at a time: their 32-bit words stay in (vector) registers while the up to 32
  // channel rows of one word are streamed through.
  constexpr int64_t kBlock = 16;
  for (int64_t word = 0; word < g.words_per_pixel; ++word) {
    const int64_t c0 = word * 32;
    const int64_t channels = min_i64(32, g.C - c0);
    const float* base = g.x + c0 * g.HW;
    uint32_t* out = g.out + word;
    int64_t p = g.p0;
    for (; p + kBlock <= g.p1; p += kBlock) {
      uint32_t bits[kBlock] = {};
      for (int64_t c = 0; c < channels; ++c) {
        const float* row = base + c * g.HW + p;
        const uint32_t bit = uint32_t{1} << c;
        // !(v >= 0): negative values and NaN become -1, +0 and -0 become +1.
        for (int64_t q = 0; q < kBlock; ++q) bits[q] |= (row[q] >= 0.0f) ? 0u : bit;
      }
      for (int64_t q = 0; q < kBlock; ++q) out[(p + q) * g.words_per_pixel] = bits[q];
    }
    for (; p < g.p1; ++p) {
      uint32_t bits = 0;
      for (int64_t c = 0; c < channels; ++c)
        bits |= (base[c * g.HW + p] >= 0.0f) ? 0u : (uint32_t{1} << c);
      out[p * g.words_per_pixel] = bits;
    }
  }
}

// dot = valid_taps * C - 2 * mismatches, then the contract's transform in its order:
// ((dot * post_scale) * row_scale) * col_scale + post_bias (+ residual). Built with
// -ffp-contract=off everywhere, so every variant rounds identically.
inline void epilogue_generic(const bnn::EpilogueArgs& g) {
  for (int64_t o = 0; o < g.O; ++o) {
    const float scale = g.post_scale[o], bias = g.post_bias[o];
    const int32_t* cnt = g.counts + o * g.tile;
    float* out = g.y + o * g.plane;
    for (int64_t q = 0; q < g.next_count; q += 16) {  // 16 floats = one 64-byte line
      __builtin_prefetch(out + g.count + q, 1);
      if (g.residual != nullptr) __builtin_prefetch(g.residual + o * g.plane + g.count + q, 0);
    }
    if (g.residual != nullptr) {
      const float* res = g.residual + o * g.plane;
      for (int64_t q = 0; q < g.count; ++q) {
        const float dot = static_cast<float>(g.valid_taps[q] * g.channels - 2 * cnt[q]);
        out[q] = dot * scale * g.row_factor[q] * g.col_factor[q] + bias + res[q];
      }
    } else {
      for (int64_t q = 0; q < g.count; ++q) {
        const float dot = static_cast<float>(g.valid_taps[q] * g.channels - 2 * cnt[q]);
        out[q] = dot * scale * g.row_factor[q] * g.col_factor[q] + bias;
      }
    }
  }
}

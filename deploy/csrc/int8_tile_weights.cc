// See int8_tile_weights.h. Compiled for the baseline ISA (plain byte stores, run once).
#include "int8_tile_weights.h"

namespace bnn {

namespace {
constexpr int64_t kTileRows = 16;  // output channels per B tile
}  // namespace

Int8TileLayout int8_tile_layout(const ConvShape& s) {
  Int8TileLayout layout;
  // A K chunk is one tile row of at most 64 bytes; small layers use a shorter row (a multiple
  // of 4, the VNNI group) so e.g. 3 input channels cost 4 bytes per tap, not 64.
  layout.k_chunk = s.C < 64 ? (s.C + 3) / 4 * 4 : 64;
  layout.chunks_per_tap = (s.C + layout.k_chunk - 1) / layout.k_chunk;
  layout.o_pairs = (s.O + 2 * kTileRows - 1) / (2 * kTileRows);
  return layout;
}

void unpack_weights_to_int8_tiles(const int32_t* words, const ConvShape& s,
                                  const Int8TileLayout& layout, std::vector<int8_t>* out) {
  const int64_t wpp = s.words_per_pixel();
  const int64_t taps = s.taps();
  const int64_t kc = layout.k_chunk;
  const int64_t tile_bytes = kTileRows * kc;  // kc / 4 rows of 16 outputs x 4 channels
  out->assign(static_cast<size_t>(layout.o_pairs * layout.chunks_per_tap * taps * 2 * tile_bytes), 0);
  for (int64_t o = 0; o < s.O; ++o) {
    const int64_t pair = o / (2 * kTileRows), half = (o / kTileRows) % 2, column = o % kTileRows;
    for (int64_t tap = 0; tap < taps; ++tap) {
      const uint32_t* tap_words =
          reinterpret_cast<const uint32_t*>(words) + (o * taps + tap) * wpp;
      for (int64_t c = 0; c < s.C; ++c) {
        const int64_t chunk = c / kc, k = c % kc;
        const int64_t tile = ((pair * layout.chunks_per_tap + chunk) * taps + tap) * 2 + half;
        const bool negative = (tap_words[c / 32] >> (c % 32)) & 1u;
        // VNNI order: row k / 4 holds channels k..k+3 of each of the 16 outputs.
        (*out)[static_cast<size_t>(tile * tile_bytes + (k / 4) * 64 + column * 4 + k % 4)] =
            negative ? -1 : 1;
      }
    }
  }
}

}  // namespace bnn

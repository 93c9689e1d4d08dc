// Weights for the int8 tile (amx) variant: the bit-packed OHWI32 words unpacked once, when
// the kernel is created, into the B-tile (VNNI) layout tdpbssd multiplies (see kernels.h
// Int8TileLayout). The model file stays bit-packed; only this in-memory copy is int8.
#pragma once

#include <cstdint>
#include <vector>

#include "binary_conv_op.h"
#include "kernels.h"

namespace bnn {

Int8TileLayout int8_tile_layout(const ConvShape& s);

// out: [o_pairs][chunks_per_tap][taps][2][k_chunk / 4][16][4] int8 (a B tile: row r holds
// channels 4r..4r+3 of 16 output channels), +1 for a clear bit, -1 for a set bit, 0 for
// channels >= C and output channels >= O (they add nothing to any dot).
void unpack_weights_to_int8_tiles(const int32_t* words, const ConvShape& s,
                                  const Int8TileLayout& layout, std::vector<int8_t>* out);

}  // namespace bnn

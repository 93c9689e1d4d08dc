// See binary_conv.h. Compiled for the baseline ISA: the ISA-specific work is behind
// KernelVariant.
#include "binary_conv.h"

#include "int8_tile_weights.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <new>

namespace bnn {

namespace {

inline int popcount32(uint32_t v) { return __builtin_popcount(v); }

// Two consecutive packed 32-bit words as one 64-bit word (memcpy: no aliasing UB; one load).
inline uint64_t load64(const uint32_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Pixels per tile: a multiple of kPixelAlign, small enough that a 2-core (or larger) pool gets
// several tiles per image, large enough to amortize the weight block loads.
int64_t choose_tile(int64_t pixels) {
  constexpr int64_t kMaxTile = 64;
  int64_t tile = (pixels + 15) / 16;
  tile = (tile + kPixelAlign - 1) / kPixelAlign * kPixelAlign;
  return std::max<int64_t>(kPixelAlign, std::min(kMaxTile, tile));
}

// Per-thread scratch, reused across tiles and calls.
struct Scratch {
  std::vector<uint64_t> a;          // im2col tile [k64][tile]
  std::vector<uint32_t> row;        // one pixel's im2col row in 32-bit words
  std::vector<int32_t> counts;      // popcount GEMM output [o_blocks * 8][tile]
  std::vector<int32_t> valid_taps;  // per pixel
  std::vector<int64_t> origin;      // per pixel: top-left input row / column of its window
  std::vector<int32_t> window;      // per pixel: valid kernel rows [i0, i1), columns [j0, j1)
  std::vector<uint64_t> tap_mask;   // per pixel: which taps are inside the image
  std::vector<int64_t> offset;      // per pixel: image pixel index of the window origin
  std::vector<int64_t> run;         // per pixel: length of the contiguous interior run from it
  std::vector<float> row_factor, col_factor;
  std::vector<int32_t> window_keys;   // distinct partial windows of the tile (4 ints each)
  std::vector<int32_t> corrections;   // their padded-tap weight popcounts, [O] each
};

thread_local Scratch t_scratch;

struct Job {
  const ConvShape* s;
  const float* x;
  const PackedWeights* w;
  const Transform* t;
  float* y;
  const KernelVariant* kernel;
  uint32_t* bits;  // [N][H*W][words_per_pixel]
  int64_t pack_chunk, pack_chunks_per_image;
  int64_t tile, tiles_per_image;
  std::atomic<bool> failed{false};
};

void pack_task(void* data, size_t index) {
  Job& job = *static_cast<Job*>(data);
  const ConvShape& s = *job.s;
  const int64_t n = static_cast<int64_t>(index) / job.pack_chunks_per_image;
  const int64_t chunk = static_cast<int64_t>(index) % job.pack_chunks_per_image;
  const int64_t hw = s.H * s.W;
  PackSignsArgs args;
  args.x = job.x + n * s.C * hw;
  args.C = s.C;
  args.HW = hw;
  args.p0 = chunk * job.pack_chunk;
  args.p1 = std::min(hw, args.p0 + job.pack_chunk);
  args.words_per_pixel = s.words_per_pixel();
  args.out = job.bits + n * hw * args.words_per_pixel;
  job.kernel->pack_signs(args);
}

// Kernel rows i with 0 <= origin + i * d < size form one contiguous range [first, last).
inline void valid_range(int64_t origin, int64_t size, int64_t k, int64_t d, int64_t* first,
                        int64_t* last) {
  if (origin >= 0 && origin + (k - 1) * d < size) {  // interior: no division
    *first = 0;
    *last = k;
    return;
  }
  int64_t lo = origin >= 0 ? 0 : (-origin + d - 1) / d;
  int64_t hi = origin >= size ? 0 : std::min(k, (size - 1 - origin) / d + 1);
  lo = std::min(lo, k);
  *first = lo;
  *last = std::max(hi, lo);
}

// Bit im2col of one tile into sc.a ([k64][tile], zero past `count`). Taps outside the image
// are written as 0 (i.e. +1) and corrected after the GEMM.
void im2col_tile(const ConvShape& s, const uint32_t* image, int64_t p0, int64_t count,
                 int64_t tile, int64_t k64, Scratch& sc) {
  const int64_t wpp = s.words_per_pixel();
  int64_t ho = p0 / s.Wo, wo = p0 % s.Wo;
  for (int64_t q = 0; q < count; ++q, ++wo) {
    if (wo == s.Wo) {
      wo = 0;
      ++ho;
    }
    const int64_t h0 = ho * s.sh - s.pt, w0 = wo * s.sw - s.pl;
    int64_t i0, i1, j0, j1;
    valid_range(h0, s.H, s.kh, s.dh, &i0, &i1);
    valid_range(w0, s.W, s.kw, s.dw, &j0, &j1);
    int32_t* win = &sc.window[4 * q];
    win[0] = static_cast<int32_t>(i0); win[1] = static_cast<int32_t>(i1);
    win[2] = static_cast<int32_t>(j0); win[3] = static_cast<int32_t>(j1);
    sc.valid_taps[q] = static_cast<int32_t>((i1 - i0) * (j1 - j0));
    sc.origin[2 * q] = h0;
    sc.origin[2 * q + 1] = w0;
  }
  uint64_t* a = sc.a.data();
  if (wpp % 2 == 0 && s.taps() <= 64) {
    // Every tap is whole 64-bit words: copy tap by tap, pixels contiguous in the output.
    // Branch-free: a padded tap reads word 0 of the image and stores 0 instead.
    const int64_t w64 = wpp / 2;
    int64_t* offset = sc.offset.data();      // image pixel index of each window's origin
    uint64_t* valid = sc.tap_mask.data();    // bit (i * kw + j) set if the tap is in the image
    const uint64_t all_taps = s.taps() == 64 ? ~uint64_t{0} : (uint64_t{1} << s.taps()) - 1;
    for (int64_t q = 0; q < count; ++q) {
      const int32_t* win = &sc.window[4 * q];
      uint64_t mask = all_taps;
      if (sc.valid_taps[q] != s.taps()) {  // border pixel
        mask = 0;
        for (int64_t i = win[0]; i < win[1]; ++i)
          for (int64_t j = win[2]; j < win[3]; ++j) mask |= uint64_t{1} << (i * s.kw + j);
      }
      valid[q] = mask;
      offset[q] = sc.origin[2 * q] * s.W + sc.origin[2 * q + 1];
    }
    // run[q]: how many pixels from q on have every tap inside the image and window origins
    // `sw` pixels apart (inside one output row): their words for a tap are equally spaced
    // in the packed image (one contiguous block for stride 1).
    int64_t* run = sc.run.data();
    for (int64_t q = count - 1; q >= 0; --q) {
      const bool full = valid[q] == all_taps;
      run[q] = !full ? 0
               : (q + 1 < count && run[q + 1] > 0 && offset[q + 1] == offset[q] + s.sw) ? run[q + 1] + 1
                                                                                    : 1;
    }
    for (int64_t i = 0; i < s.kh; ++i) {
      for (int64_t j = 0; j < s.kw; ++j) {
        const int64_t tap = i * s.kw + j;
        const int64_t tap_offset = i * s.dh * s.W + j * s.dw;
        uint64_t* dst = a + tap * w64 * tile;
        if (w64 == 1) {  // 64 channels: the most common (and most im2col-bound) case
          for (int64_t q = 0; q < count;) {
            if (run[q] > 1) {  // interior run: one block copy (stride 1) or a strided copy
              const uint32_t* src = image + 2 * (offset[q] + tap_offset);
              if (s.sw == 1) {
                std::memcpy(dst + q, src, static_cast<size_t>(run[q]) * sizeof(uint64_t));
              } else {
                for (int64_t r = 0; r < run[q]; ++r) dst[q + r] = load64(src + 2 * s.sw * r);
              }
              q += run[q];
              continue;
            }
            // all ones if the tap is in the image, else 0: masks both the index and the word
            const uint64_t keep = uint64_t{0} - ((valid[q] >> tap) & 1);
            const int64_t index = static_cast<int64_t>(static_cast<uint64_t>(offset[q] + tap_offset) & keep);
            dst[q] = load64(image + 2 * index) & keep;
            ++q;
          }
          continue;
        }
        for (int64_t q = 0; q < count;) {
          if (run[q] > 1) {  // interior run: its pixels' words are equally spaced in the image
            const uint32_t* src = image + (offset[q] + tap_offset) * wpp;
            const int64_t len = run[q];
            for (int64_t r = 0; r < len; ++r, src += wpp * s.sw)
              for (int64_t c = 0; c < w64; ++c) dst[c * tile + q + r] = load64(src + 2 * c);
            q += len;
            continue;
          }
          const bool ok = (valid[q] >> tap) & 1;
          const uint32_t* src = image + (ok ? (offset[q] + tap_offset) * wpp : 0);
          for (int64_t c = 0; c < w64; ++c) dst[c * tile + q] = ok ? load64(src + 2 * c) : 0;
          ++q;
        }
      }
    }
  } else {
    // Taps straddle 64-bit words: assemble each pixel's row of 32-bit words first.
    const int64_t k32 = s.taps() * wpp;
    uint32_t* row = sc.row.data();
    for (int64_t q = 0; q < count; ++q) {
      const int32_t* win = &sc.window[4 * q];
      const int64_t h0 = sc.origin[2 * q], w0 = sc.origin[2 * q + 1];
      std::fill(row, row + k32, 0u);
      for (int64_t i = win[0]; i < win[1]; ++i) {
        const uint32_t* src_row = image + ((h0 + i * s.dh) * s.W) * wpp;
        for (int64_t j = win[2]; j < win[3]; ++j) {
          const uint32_t* src = src_row + (w0 + j * s.dw) * wpp;
          uint32_t* dst = row + (i * s.kw + j) * wpp;
          for (int64_t c = 0; c < wpp; ++c) dst[c] = src[c];
        }
      }
      for (int64_t k = 0; k < k64; ++k)
        a[k * tile + q] = static_cast<uint64_t>(row[2 * k]) | (static_cast<uint64_t>(row[2 * k + 1]) << 32);
    }
  }
  for (int64_t k = 0; k < k64; ++k)
    for (int64_t q = count; q < tile; ++q) a[k * tile + q] = 0;
}

// Padded taps were XORed against 0 and so added their weight popcount to the mismatch count:
// subtract it. Border pixels share few distinct windows, so each window's correction vector
// is computed once per tile.
void correct_border_pixels(const ConvShape& s, const PackedWeights& w, int64_t count,
                           int64_t tile, Scratch& sc) {
  sc.window_keys.clear();
  sc.corrections.clear();
  for (int64_t q = 0; q < count; ++q) {
    if (sc.valid_taps[q] == s.taps()) continue;
    const int32_t* win = &sc.window[4 * q];
    size_t id = 0;
    const size_t known = sc.window_keys.size() / 4;
    while (id < known && !std::equal(win, win + 4, &sc.window_keys[4 * id])) ++id;
    if (id == known) {
      sc.window_keys.insert(sc.window_keys.end(), win, win + 4);
      sc.corrections.insert(sc.corrections.end(), w.total_popcount.begin(), w.total_popcount.end());
      int32_t* corr = &sc.corrections[id * s.O];
      for (int64_t i = win[0]; i < win[1]; ++i)
        for (int64_t j = win[2]; j < win[3]; ++j) {
          const int32_t* pop = &w.tap_popcount[(i * s.kw + j) * s.O];
          for (int64_t o = 0; o < s.O; ++o) corr[o] -= pop[o];
        }
    }
    const int32_t* corr = &sc.corrections[id * s.O];
    for (int64_t o = 0; o < s.O; ++o) sc.counts[o * tile + q] -= corr[o];
  }
}

void conv_tile(Job& job, int64_t n, int64_t p0, int64_t count, Scratch& sc) {
  const ConvShape& s = *job.s;
  const PackedWeights& w = *job.w;
  const Transform& t = *job.t;
  const int64_t tile = job.tile;
  const int64_t k64 = w.k64;
  const int64_t hw = s.H * s.W;

  sc.a.resize(static_cast<size_t>(k64 * tile));
  sc.row.assign(static_cast<size_t>(k64 * 2), 0);
  sc.counts.resize(static_cast<size_t>(w.o_blocks * kOutBlock * tile));
  sc.valid_taps.resize(static_cast<size_t>(tile));
  sc.origin.resize(static_cast<size_t>(2 * tile));
  sc.window.resize(static_cast<size_t>(4 * tile));
  sc.tap_mask.resize(static_cast<size_t>(tile));
  sc.offset.resize(static_cast<size_t>(tile));
  sc.run.resize(static_cast<size_t>(tile));
  sc.row_factor.resize(static_cast<size_t>(tile));
  sc.col_factor.resize(static_cast<size_t>(tile));

  im2col_tile(s, job.bits + n * hw * s.words_per_pixel(), p0, count, tile, k64, sc);

  PopcountGemmArgs gemm;
  gemm.a = sc.a.data();
  gemm.tile = tile;
  gemm.k64 = k64;
  gemm.b = w.blocks.data();
  gemm.o_blocks = w.o_blocks;
  gemm.out = sc.counts.data();
  job.kernel->popcount_gemm(gemm);

  correct_border_pixels(s, w, count, tile, sc);

  for (int64_t q = 0; q < count; ++q) {
    const int64_t pix = p0 + q;
    sc.row_factor[q] = t.row_scale ? t.row_scale[pix / s.Wo] : 1.0f;
    sc.col_factor[q] = t.col_scale ? t.col_scale[pix % s.Wo] : 1.0f;
  }
  const int64_t plane = s.Ho * s.Wo;
  EpilogueArgs e;
  e.counts = sc.counts.data();
  e.tile = tile;
  e.count = count;
  e.O = s.O;
  e.plane = plane;
  e.valid_taps = sc.valid_taps.data();
  e.channels = static_cast<int32_t>(s.C);
  e.post_scale = t.post_scale;
  e.post_bias = t.post_bias;
  e.row_factor = sc.row_factor.data();
  e.col_factor = sc.col_factor.data();
  e.residual = t.residual ? t.residual + n * s.O * plane + p0 : nullptr;
  e.y = job.y + n * s.O * plane + p0;
  e.next_count = std::max<int64_t>(0, std::min(tile, plane - (p0 + count)));
  job.kernel->epilogue(e);
}

void tile_task(void* data, size_t index) {
  Job& job = *static_cast<Job*>(data);
  const int64_t n = static_cast<int64_t>(index) / job.tiles_per_image;
  const int64_t p0 = (static_cast<int64_t>(index) % job.tiles_per_image) * job.tile;
  const int64_t count = std::min(job.tile, job.s->Ho * job.s->Wo - p0);
  try {
    conv_tile(job, n, p0, count, t_scratch);
  } catch (...) {  // never let an exception escape into the runtime's thread pool
    job.failed.store(true);
  }
}

}  // namespace

void repack_weights(const int32_t* words, const ConvShape& s, const KernelVariant& kernel,
                    PackedWeights* out) {
  const int64_t wpp = s.words_per_pixel();
  const int64_t taps = s.taps();
  const int64_t k32 = taps * wpp;
  out->O = s.O;
  out->taps = taps;
  out->words_per_pixel = wpp;
  out->k64 = (k32 + 1) / 2;
  out->o_blocks = (s.O + kOutBlock - 1) / kOutBlock;
  out->source.assign(words, words + s.O * k32);
  if (kernel.int8_tile_conv != nullptr) {  // int8 tiles only: no bit blocks needed
    out->int8_layout = int8_tile_layout(s);
    unpack_weights_to_int8_tiles(words, s, out->int8_layout, &out->int8_tiles);
    return;
  }
  out->blocks.assign(static_cast<size_t>(out->o_blocks * out->k64 * kOutBlock), 0);
  out->tap_popcount.assign(static_cast<size_t>(taps * s.O), 0);
  out->total_popcount.assign(static_cast<size_t>(s.O), 0);
  // Bits past C_in in the last word must not count (the contract says they are 0; mask anyway).
  const int64_t tail_bits = s.C - (wpp - 1) * 32;
  const uint32_t tail_mask = tail_bits >= 32 ? ~0u : ((1u << tail_bits) - 1u);
  for (int64_t o = 0; o < s.O; ++o) {
    for (int64_t k = 0; k < k32; ++k) {
      uint32_t word = static_cast<uint32_t>(words[o * k32 + k]);
      if (k % wpp == wpp - 1) word &= tail_mask;
      const int64_t tap = k / wpp;
      out->tap_popcount[tap * s.O + o] += popcount32(word);
      out->total_popcount[o] += popcount32(word);
      uint64_t& dst = out->blocks[((o / kOutBlock) * out->k64 + k / 2) * kOutBlock + o % kOutBlock];
      dst |= static_cast<uint64_t>(word) << (32 * (k % 2));
    }
  }
}

std::string run_binary_conv(const ConvShape& s, const float* x, const PackedWeights& w,
                            const Transform& t, float* y, const KernelVariant& kernel,
                            ParallelFor parallel_for, void* parallel_ctx) {
  const int64_t hw = s.H * s.W;
  const int64_t howo = s.Ho * s.Wo;
  if (s.N == 0 || howo == 0) return "";
  if (kernel.int8_tile_conv != nullptr) {
    if (w.int8_tiles.empty()) return "weights were not unpacked for the int8 tile kernel";
    Int8ConvArgs args;
    args.shape = &s;
    args.x = x;
    args.weights = w.int8_tiles.data();
    args.layout = w.int8_layout;
    args.transform = t;
    args.y = y;
    args.parallel_for = parallel_for;
    args.parallel_ctx = parallel_ctx;
    const char* failure = kernel.int8_tile_conv(args);
    return failure == nullptr ? std::string() : std::string(failure);
  }
  // The packed input lives in a per-calling-thread buffer reused across calls: a fresh
  // (zero-filled, mmap-backed) vector per call cost page faults every run. Every word is
  // written by the packing, so it needs no clearing. Pool threads only use it inside the
  // parallel_for calls below, which return before this function does.
  thread_local std::unique_ptr<uint32_t[]> t_bits;
  thread_local size_t t_bits_size = 0;
  const size_t bits_needed = static_cast<size_t>(s.N * hw * s.words_per_pixel());
  if (t_bits_size < bits_needed) {
    t_bits.reset();
    t_bits_size = 0;
    t_bits.reset(new (std::nothrow) uint32_t[bits_needed]);
    if (!t_bits) return "out of memory for the packed input";
    t_bits_size = bits_needed;
  }
  Job job;
  job.s = &s;
  job.x = x;
  job.w = &w;
  job.t = &t;
  job.y = y;
  job.kernel = &kernel;
  job.bits = t_bits.get();
  job.pack_chunk = 4096;
  job.pack_chunks_per_image = (hw + job.pack_chunk - 1) / job.pack_chunk;
  job.tile = choose_tile(howo);
  job.tiles_per_image = (howo + job.tile - 1) / job.tile;

  if (!parallel_for(parallel_ctx, pack_task, static_cast<size_t>(s.N * job.pack_chunks_per_image), &job))
    return "parallel execution of the input packing failed";
  if (!parallel_for(parallel_ctx, tile_task, static_cast<size_t>(s.N * job.tiles_per_image), &job))
    return "parallel execution of the convolution failed";
  if (job.failed.load()) return "out of memory in a convolution tile";
  return "";
}

}  // namespace bnn

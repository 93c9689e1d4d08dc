// AMX variant (compiled with -mamx-tile -mamx-int8 and the AVX-512 flags): the binary conv as
// an int8 GEMM on tiles. The product of two signs is exact in int8 and tdpbssd sums in int32,
// so the dot products equal the popcount variants' bit for bit, and a padded tap is simply a
// 0 byte (no correction). The epilogue is the contract's float transform in its order, so the
// outputs are bit-identical too.
//
// No shared inline or template code here (no std containers): everything compiled with these
// flags stays in this translation unit.
#include <immintrin.h>
// GCC 12 warns inside its own AVX-512 intrinsics (__Y "may be used uninitialized",
// GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <sys/mman.h>

#include "kernels.h"

namespace {

inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

constexpr int64_t kTileRows = 16;      // output channels per A tile, pixels per B tile
constexpr int64_t kPixelPair = 32;     // pixels per 2x2 tile block (two A tiles)
constexpr int64_t kTaskPixels = 256;   // virtual pixels per GEMM task (at most)
constexpr int64_t kTaskPairs = 2;      // output pairs (32 channels each) per GEMM task

// ---- input layout ----------------------------------------------------------------------
//
// The signs of the zero-padded image as int8, channels innermost (one tile row per pixel),
// split by stride phase:
//   image[phase_h][phase_w][entries][channels_padded]
// Entry (hq, wq) of phase (ph, pw) is padded pixel (hq * sh + ph, wq * sw + pw). Output pixel
// (ho, wo) is "virtual pixel" q = ho * Wq + wo, and its tap (i, j) is entry
// q + (i * dh / sh) * Wq + j * dw / sw of phase ((i * dh) % sh, (j * dw) % sw). So the taps of
// 16 consecutive virtual pixels are 16 consecutive entries: one tileloadd of an A tile
// (16 pixels x one K chunk of channels), its rows channels_padded bytes apart and, with 64
// channels or more, always 64-byte aligned whatever the tap. Virtual columns wo >= Wo are
// computed and dropped (Wq - Wo of every Wq: 1-10 % on the benchmark layers, less than the
// rounding of every output row to 16 pixels would cost).
struct Geometry {
  int64_t channels_padded;  // bytes per entry: chunks_per_tap * k_chunk
  int64_t Hq, Wq;           // rows / columns of one phase image
  int64_t entries;          // per phase image (past Hq * Wq: zeros read by the last pixels)
  int64_t phase_stride;     // bytes
  int64_t image_bytes;      // per batch item
  int64_t virtual_pixels;   // Ho * Wq
  // GEMM tasks: blocks of task_pixels virtual pixels x task_pairs output pairs.
  int64_t task_pixels, pixel_blocks;
  int64_t task_pairs, output_blocks;
  int64_t tasks_per_image;
};

Geometry make_geometry(const bnn::ConvShape& s, const bnn::Int8TileLayout& layout) {
  Geometry g;
  g.channels_padded = layout.chunks_per_tap * layout.k_chunk;
  g.Hq = (s.H + s.pt + s.pb + s.sh - 1) / s.sh;
  g.Wq = (s.W + s.pl + s.pr + s.sw - 1) / s.sw;
  g.virtual_pixels = s.Ho * g.Wq;
  const int64_t last_tap = ((s.kh - 1) * s.dh / s.sh) * g.Wq + (s.kw - 1) * s.dw / s.sw;
  // Every A tile read ends before round_up(virtual pixels, 32) + the last tap's offset.
  g.entries = max_i64(g.Hq * g.Wq, round_up(g.virtual_pixels, kPixelPair) + last_tap);
  g.phase_stride = g.entries * g.channels_padded;
  g.image_bytes = s.sh * s.sw * g.phase_stride;
  // Measured on the benchmark layers (1 thread): 256 pixels x 64 outputs per task was as
  // fast as any other choice within noise (128-448 pixels, 32-512 outputs) and leaves
  // enough tasks for the pool.
  g.task_pixels = min_i64(kTaskPixels, round_up(g.virtual_pixels, kPixelPair));
  g.pixel_blocks = (g.virtual_pixels + g.task_pixels - 1) / g.task_pixels;
  g.task_pairs = min_i64(kTaskPairs, layout.o_pairs);
  g.output_blocks = (layout.o_pairs + g.task_pairs - 1) / g.task_pairs;
  g.tasks_per_image = g.pixel_blocks * g.output_blocks;
  return g;
}

// ---- sign packing: float NCHW -> int8 phase images ---------------------------------------

// A growable per-thread buffer (no std containers in this translation unit).
struct Scratch {
  void* data = nullptr;
  size_t size = 0;
  ~Scratch() { std::free(data); }
  void* get(size_t bytes) {
    if (size < bytes) {
      std::free(data);
      size = 0;
      data = std::aligned_alloc(64, static_cast<size_t>(round_up(static_cast<int64_t>(bytes), 64)));
      if (data != nullptr) size = bytes;
    }
    return data;
  }
};
thread_local Scratch t_masks;  // sign packing: per 16-entry block, 64 channels' sign masks
thread_local Scratch t_dots;   // GEMM: one task's int32 accumulator tiles

// A pointer `offset` floats from `base`, possibly outside the array: only used by masked
// loads and stores (masked-off lanes are never accessed) and prefetches (which never fault).
inline const float* lane0(const float* base, int64_t offset) {
  return reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(base) +
                                        static_cast<uintptr_t>(offset) * 4);
}

// Bit j: column col0 + j of `row` is inside [0, W) and its value is not >= 0 (negative or
// NaN), for j < 16 * sw (sw is 1 or 2).
inline uint32_t negative_columns(const float* row, int64_t col0, int64_t W, int64_t sw) {
  const __m512 zero = _mm512_setzero_ps();
  if (col0 >= 0 && col0 + 16 * sw <= W) {  // interior block: plain loads
    uint32_t result = _mm512_cmp_ps_mask(_mm512_loadu_ps(row + col0), zero, _CMP_NGE_UQ);
    if (sw == 2)
      result |= static_cast<uint32_t>(_mm512_cmp_ps_mask(_mm512_loadu_ps(row + col0 + 16), zero,
                                                         _CMP_NGE_UQ)) << 16;
    return result;
  }
  uint32_t result = 0;
  for (int64_t half = 0; half < sw; ++half) {
    const int64_t c = col0 + 16 * half;
    const int64_t lo = max_i64(0, -c), hi = min_i64(16, W - c);  // lanes inside the row
    if (lo >= hi) continue;
    const __mmask16 lanes = static_cast<__mmask16>(((1u << (hi - lo)) - 1u) << lo);
    const __m512 v = _mm512_maskz_loadu_ps(lanes, lane0(row, c));
    result |= static_cast<uint32_t>(_mm512_mask_cmp_ps_mask(lanes, v, zero, _CMP_NGE_UQ)) << (16 * half);
  }
  return result;
}

// Which of the 16 entries of block b of column phase pw are inside the image.
inline uint32_t inside_entries(int64_t col0, int64_t sw, int64_t pw, int64_t W, int64_t entries) {
  uint32_t inside = 0;
  for (int64_t k = 0; k < min_i64(16, entries); ++k) {
    const int64_t column = col0 + k * sw + pw;
    if (column >= 0 && column < W) inside |= 1u << k;
  }
  return inside;
}

// Row h of the image into row hq of column phases first_pw .. first_pw + phases - 1
// (phases: all sw of them if sw <= 2, else 1): dst[p] is phase first_pw + p's row.
// Entry e of phase pw <- column e * sw + pw - pl; entries outside the image and channels past
// C are 0. Channel by channel, 16 entries' signs of all phases come from one pass over
// 16 * sw consecutive columns (the mask bits split by phase); then each block's 64 channel
// masks are transposed to one 64-byte tile row per entry (vptestmw picks bit k of 32 masks
// at once).
bool write_sign_rows(const bnn::ConvShape& s, const Geometry& g, int64_t kc, const float* x_row,
                     int64_t plane, int64_t next_row, int64_t first_pw, int64_t phases,
                     int8_t* const* dst) {
  const int64_t blocks = (g.Wq + 15) / 16;
  const int64_t sw = s.sw;
  uint16_t* masks = static_cast<uint16_t*>(t_masks.get(static_cast<size_t>(2 * blocks * 64) * 2));
  if (masks == nullptr) return false;
  const __m512i plus = _mm512_set1_epi8(1), minus = _mm512_set1_epi8(-1);
  const int64_t chunks = g.channels_padded / kc;
  const uint64_t store_bytes = kc == 64 ? ~uint64_t{0} : (uint64_t{1} << kc) - 1;
  {
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t c0 = chunk * kc;
      const int64_t channels = min_i64(kc, s.C - c0);
      std::memset(masks, 0, static_cast<size_t>(2 * blocks * 64) * 2);
      for (int64_t c = 0; c < channels; ++c) {
        const float* row = x_row + (c0 + c) * plane;
        // The next task's row of this channel (the pool hands each thread consecutive rows):
        // 64 short row streams are too many for the hardware prefetcher.
        for (int64_t col = 0; col < s.W; col += 16) _mm_prefetch(lane0(row, next_row + col), _MM_HINT_T1);
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t col0 = b * 16 * sw - s.pl;  // column of entry 16 b of phase 0
          if (sw == 1) {
            masks[b * 64 + c] = static_cast<uint16_t>(negative_columns(row, col0, s.W, 1));
          } else if (sw == 2) {
            const uint32_t m = negative_columns(row, col0, s.W, 2);
            masks[b * 64 + c] = static_cast<uint16_t>(_pext_u32(m, 0x55555555u));
            masks[(blocks + b) * 64 + c] = static_cast<uint16_t>(_pext_u32(m, 0xaaaaaaaau));
          } else {  // larger strides: one entry at a time (not on any benchmark layer)
            uint32_t m = 0;
            for (int64_t k = 0; k < 16; ++k) {
              const int64_t column = col0 + k * sw + first_pw;
              if (column >= 0 && column < s.W && !(row[column] >= 0.0f)) m |= 1u << k;
            }
            masks[b * 64 + c] = static_cast<uint16_t>(m);
          }
        }
      }
      const uint64_t channel_bytes = channels == 64 ? ~uint64_t{0} : (uint64_t{1} << channels) - 1;
      for (int64_t p = 0; p < phases; ++p) {
        const int64_t pw = first_pw + p;
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t in_row = min_i64(16, g.Wq - b * 16);
          const uint32_t inside = inside_entries(b * 16 * sw - s.pl, sw, pw, s.W, in_row);
          __m512i low = _mm512_loadu_si512(masks + (p * blocks + b) * 64);
          __m512i high = _mm512_loadu_si512(masks + (p * blocks + b) * 64 + 32);
          const __m512i bit0 = _mm512_set1_epi16(1);
          int8_t* out = dst[p] + b * 16 * g.channels_padded + c0;
          for (int64_t k = 0; k < in_row; ++k, out += g.channels_padded) {
            const uint64_t negative = static_cast<uint64_t>(_mm512_test_epi16_mask(low, bit0)) |
                                      static_cast<uint64_t>(_mm512_test_epi16_mask(high, bit0)) << 32;
            low = _mm512_srli_epi16(low, 1);
            high = _mm512_srli_epi16(high, 1);
            const __m512i signs = _mm512_maskz_mov_epi8(
                (inside >> k) & 1 ? channel_bytes : 0, _mm512_mask_blend_epi8(negative, plus, minus));
            _mm512_mask_storeu_epi8(out, store_bytes, signs);
          }
        }
      }
    }
  }
  return true;
}

struct Job {
  const bnn::Int8ConvArgs* args;
  Geometry geo;
  int8_t* image;                 // [N][image_bytes]
  const int64_t* tap_entries;    // [taps] entry offset of each tap
  const int64_t* tap_phase;      // [taps] byte offset of each tap's phase image
  int failed;                    // set to 1 (atomically) if a task fails
};

// Task (n, ph, hq): row hq of the phase images (ph, *) of image n.
void pack_task(void* data, size_t index) {
  Job& job = *static_cast<Job*>(data);
  const bnn::ConvShape& s = *job.args->shape;
  const Geometry& g = job.geo;
  const int64_t hq = static_cast<int64_t>(index) % g.Hq;
  const int64_t ph = static_cast<int64_t>(index) / g.Hq % s.sh;
  const int64_t n = static_cast<int64_t>(index) / g.Hq / s.sh;
  const int64_t h = hq * s.sh + ph - s.pt;
  const int64_t row_bytes = g.Wq * g.channels_padded;
  int8_t* first_phase = job.image + n * g.image_bytes + ph * s.sw * g.phase_stride;
  if (h < 0 || h >= s.H) {
    for (int64_t pw = 0; pw < s.sw; ++pw)
      std::memset(first_phase + pw * g.phase_stride + hq * row_bytes, 0, static_cast<size_t>(row_bytes));
  } else {
    // Strides 1 and 2 fill all their column phases in one pass over the row, larger ones
    // (rare) one phase per pass.
    const int64_t phases = s.sw <= 2 ? s.sw : 1;
    for (int64_t pw = 0; pw < s.sw; pw += phases) {
      int8_t* rows[2];
      for (int64_t p = 0; p < phases; ++p)
        rows[p] = first_phase + (pw + p) * g.phase_stride + hq * row_bytes;
      if (!write_sign_rows(s, g, job.args->layout.k_chunk,
                           job.args->x + n * s.C * s.H * s.W + h * s.W, s.H * s.W,
                           s.sh * s.W, pw, phases, rows))
        __atomic_store_n(&job.failed, 1, __ATOMIC_RELAXED);
    }
  }
  if (hq == g.Hq - 1) {  // entries past the phase images, read by the last virtual pixels
    for (int64_t pw = 0; pw < s.sw; ++pw)
      std::memset(first_phase + pw * g.phase_stride + g.Hq * row_bytes, 0,
                  static_cast<size_t>((g.entries - g.Hq * g.Wq) * g.channels_padded));
  }
}

// ---- tile GEMM + epilogue ----------------------------------------------------------------

// Tiles: 0-3 accumulators C[a][b] = 16 pixels (a) x 16 output channels (b), int32;
// 4-5 pixels (A: 16 pixels x k_chunk channels); 6-7 weights (B: k_chunk / 4 rows of
// 16 outputs x 4 channels).
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

TileConfig make_tile_config(int64_t k_chunk) {
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof(cfg));
  cfg.palette_id = 1;
  for (int t = 0; t < 4; ++t) {
    cfg.rows[t] = kTileRows;
    cfg.colsb[t] = kTileRows * 4;
  }
  for (int t = 4; t < 6; ++t) {
    cfg.rows[t] = kTileRows;
    cfg.colsb[t] = static_cast<uint16_t>(k_chunk);
  }
  for (int t = 6; t < 8; ++t) {
    cfg.rows[t] = static_cast<uint8_t>(k_chunk / 4);
    cfg.colsb[t] = kTileRows * 4;
  }
  return cfg;
}

#if defined(BNN_TASKS_CHECK_TILE_BOUNDS)
// Sanitizer builds: AddressSanitizer does not see tile loads, so check them here.
void check_tile(const void* p, int64_t rows, int64_t row_bytes, int64_t stride, const void* lo,
                int64_t size) {
  const char* first = static_cast<const char*>(p);
  const char* end = first + (rows - 1) * stride + row_bytes;
  if (first < static_cast<const char*>(lo) || end > static_cast<const char*>(lo) + size) {
    __builtin_printf("bnn_tasks amx: tile access out of bounds\n");
    std::abort();
  }
}
#define CHECK_TILE(p, rows, row_bytes, stride, lo, size) check_tile(p, rows, row_bytes, stride, lo, size)
#else
#define CHECK_TILE(p, rows, row_bytes, stride, lo, size) ((void)0)
#endif

constexpr int64_t kTileInts = kTileRows * kTileRows;  // int32 per accumulator tile

// 16x16 int32 transpose: r[p] (pixel p's 16 outputs) -> r[o] (output o's 16 pixels).
inline void transpose16(__m512i* r) {
  __m512i a[16], b[16];
  for (int i = 0; i < 8; ++i) {
    a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int j = 0; j < 4; ++j) {
    b[4 * j] = _mm512_unpacklo_epi64(a[4 * j], a[4 * j + 2]);
    b[4 * j + 1] = _mm512_unpackhi_epi64(a[4 * j], a[4 * j + 2]);
    b[4 * j + 2] = _mm512_unpacklo_epi64(a[4 * j + 1], a[4 * j + 3]);
    b[4 * j + 3] = _mm512_unpackhi_epi64(a[4 * j + 1], a[4 * j + 3]);
  }
  // b[4j + m], 128-bit lane L = column 4L + m of rows 4j..4j+3: a 4x4 transpose of lanes.
  for (int m = 0; m < 4; ++m) {
    const __m512i c0 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0x44);
    const __m512i c1 = _mm512_shuffle_i32x4(b[m], b[4 + m], 0xee);
    const __m512i c2 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0x44);
    const __m512i c3 = _mm512_shuffle_i32x4(b[8 + m], b[12 + m], 0xee);
    r[m] = _mm512_shuffle_i32x4(c0, c2, 0x88);
    r[4 + m] = _mm512_shuffle_i32x4(c0, c2, 0xdd);
    r[8 + m] = _mm512_shuffle_i32x4(c1, c3, 0x88);
    r[12 + m] = _mm512_shuffle_i32x4(c1, c3, 0xdd);
  }
}

// Where the 16 virtual pixels q .. q + 15 go: lanes `first` into output row `row`, from
// column `column` on; lanes `second` into row row + 1 from column 0 (lane `shift` is its
// column 0). Lanes of dropped virtual columns are in neither mask.
struct PixelBlock {
  __mmask16 first, second;
  int64_t first_offset, second_offset;  // output pixel index of lane 0 (second: may be < 0)
  __m512 row_factor, col_factor;
};

// Needs Wq >= 16 (a block then spans at most two rows). lanes: virtual pixels left.
PixelBlock map_pixel_block(const bnn::ConvShape& s, const Geometry& g, const bnn::Transform& t,
                           int64_t q, int64_t lanes) {
  PixelBlock m;
  const int64_t ho = q / g.Wq, wo = q - ho * g.Wq;
  const int64_t n1 = wo < s.Wo ? min_i64(s.Wo - wo, lanes) : 0;
  const int64_t shift = g.Wq - wo;  // first lane in row ho + 1
  const int64_t n2 = shift < lanes ? min_i64(s.Wo, lanes - shift) : 0;
  m.first = static_cast<__mmask16>((1u << n1) - 1u);
  m.second = static_cast<__mmask16>(((1u << n2) - 1u) << (n2 > 0 ? shift : 0));
  m.first_offset = ho * s.Wo + wo;
  m.second_offset = (ho + 1) * s.Wo - shift;
  const float row1 = t.row_scale && n1 > 0 ? t.row_scale[ho] : 1.0f;
  const float row2 = t.row_scale && n2 > 0 ? t.row_scale[ho + 1] : 1.0f;
  m.row_factor = _mm512_mask_blend_ps(m.second, _mm512_set1_ps(row1), _mm512_set1_ps(row2));
  m.col_factor = _mm512_set1_ps(1.0f);
  if (t.col_scale) {
    const __m512 c1 = _mm512_maskz_loadu_ps(m.first, t.col_scale + (n1 > 0 ? wo : 0));
    // lane k of the second part is column k - shift: load from (col_scale - shift).
    const float* base2 = reinterpret_cast<const float*>(
        reinterpret_cast<uintptr_t>(t.col_scale) - static_cast<uintptr_t>(n2 > 0 ? shift : 0) * 4);
    const __m512 c2 = _mm512_maskz_loadu_ps(m.second, base2);
    m.col_factor = _mm512_mask_blend_ps(m.first | m.second, m.col_factor,
                                        _mm512_mask_blend_ps(m.second, c1, c2));
  }
  return m;
}

// Floats ahead of the current block that the epilogue prefetches (a prefetch never faults,
// so past the end of the plane is harmless).
constexpr int64_t kPrefetchAhead = 48;

// The contract's transform of one output channel's 16 pixels, stored through the masks.
inline void store_pixels(const PixelBlock& m, __m512i dots, float scale, float bias,
                         const float* residual_plane, float* out_plane) {
  __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(dots), _mm512_set1_ps(scale));
  v = _mm512_mul_ps(v, m.row_factor);
  v = _mm512_mul_ps(v, m.col_factor);
  v = _mm512_add_ps(v, _mm512_set1_ps(bias));
  if (residual_plane) {
    const __m512 r1 = _mm512_maskz_loadu_ps(m.first, lane0(residual_plane, m.first_offset));
    const __m512 r = _mm512_mask_loadu_ps(r1, m.second, lane0(residual_plane, m.second_offset));
    v = _mm512_add_ps(v, r);
  }
  _mm512_mask_storeu_ps(const_cast<float*>(lane0(out_plane, m.first_offset)), m.first, v);
  if (m.second)  // a block crosses into the next output row once per row
    _mm512_mask_storeu_ps(const_cast<float*>(lane0(out_plane, m.second_offset)), m.second, v);
  // The next blocks' output (and residual) lines: one store stream per output channel, a
  // pattern the hardware prefetcher does not follow (see docs/kernels.md, epilogue).
  __builtin_prefetch(lane0(out_plane, m.first_offset + kPrefetchAhead), 1);
  if (residual_plane) __builtin_prefetch(lane0(residual_plane, m.first_offset + kPrefetchAhead), 0);
}

// Rare narrow images (Wq < 16: a block spans more than two rows): one pixel at a time.
void store_pixels_scalar(const bnn::ConvShape& s, const Geometry& g, const bnn::Transform& t,
                         int64_t q, int64_t lanes, __m512i dots, float scale, float bias,
                         const float* residual_plane, float* out_plane) {
  int32_t d[16];
  _mm512_storeu_si512(d, dots);
  for (int64_t k = 0; k < lanes; ++k) {
    const int64_t ho = (q + k) / g.Wq, wo = (q + k) % g.Wq;
    if (wo >= s.Wo) continue;
    const float row = t.row_scale ? t.row_scale[ho] : 1.0f;
    const float col = t.col_scale ? t.col_scale[wo] : 1.0f;
    float v = static_cast<float>(d[k]) * scale * row * col + bias;
    if (residual_plane) v = v + residual_plane[ho * s.Wo + wo];
    out_plane[ho * s.Wo + wo] = v;
  }
}

// Epilogue of one task: dots (tile per pixel pair x output pair, see gemm_task) -> y for
// output channels [32 * pair0, 32 * pair1) x virtual pixels [q0, q0 + count).
void epilogue(const bnn::ConvShape& s, const Geometry& g, const bnn::Transform& t, int64_t n,
              int64_t pair0, int64_t pair1, int64_t q0, int64_t count, const int32_t* dots,
              float* y) {
  const int64_t plane = s.Ho * s.Wo;
  const int64_t pixel_pairs = (count + kPixelPair - 1) / kPixelPair;
  const int64_t blocks = (count + kTileRows - 1) / kTileRows;
  const bool two_rows = g.Wq >= kTileRows;
  PixelBlock map[kTaskPixels / kTileRows];
  if (two_rows)
    for (int64_t b = 0; b < blocks; ++b)
      map[b] = map_pixel_block(s, g, t, q0 + b * kTileRows, min_i64(kTileRows, count - b * kTileRows));
  // 16 output channels at a time over all the task's pixels: each output plane is then
  // written in consecutive 64-byte pieces (16 store streams, not 64).
  for (int64_t pair = pair0; pair < pair1; ++pair) {
    for (int64_t bh = 0; bh < 2; ++bh) {
      const int64_t o0 = (pair * 2 + bh) * kTileRows;
      if (o0 >= s.O) break;
      const int64_t outputs = min_i64(kTileRows, s.O - o0);
      for (int64_t b = 0; b < blocks; ++b) {
        const int64_t pp = b / 2, a = b % 2;
        const int32_t* tile =
            dots + (((pair - pair0) * pixel_pairs + pp) * 4 + a * 2 + bh) * kTileInts;
        __m512i r[16];
        for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(tile + i * kTileRows);
        transpose16(r);
        for (int64_t i = 0; i < outputs; ++i) {
          const int64_t o = o0 + i;
          float* out_plane = y + (n * s.O + o) * plane;
          const float* res_plane = t.residual ? t.residual + (n * s.O + o) * plane : nullptr;
          if (two_rows)
            store_pixels(map[b], r[i], t.post_scale[o], t.post_bias[o], res_plane, out_plane);
          else
            store_pixels_scalar(s, g, t, q0 + b * kTileRows, min_i64(kTileRows, count - b * kTileRows),
                                r[i], t.post_scale[o], t.post_bias[o], res_plane, out_plane);
        }
      }
    }
  }
}

// Task (n, output block, pixel block). K runs chunk by chunk (k_chunk channels of every
// tap): the pixels' rows of one chunk (64 bytes per entry) stay in L1 while every output
// pair of the block runs over them, and one output pair's weights of the chunk (taps x 2 B
// tiles) stay in L1 across the block's pixel pairs. The 2x2 accumulators go to `dots`
// between chunks: [pair][pixel pair][C0..C3][16 pixels][16 outputs].
void gemm_task(void* data, size_t index) {
  Job& job = *static_cast<Job*>(data);
  const bnn::Int8ConvArgs& a = *job.args;
  const bnn::ConvShape& s = *a.shape;
  const Geometry& g = job.geo;
  const int64_t n = static_cast<int64_t>(index) / g.tasks_per_image;
  const int64_t block = static_cast<int64_t>(index) % g.tasks_per_image;
  // Output block major: consecutive tasks (one thread's share of the pool) reuse weights.
  const int64_t pair0 = block / g.pixel_blocks * g.task_pairs;
  const int64_t pair1 = min_i64(a.layout.o_pairs, pair0 + g.task_pairs);
  const int64_t q0 = block % g.pixel_blocks * g.task_pixels;
  const int64_t count = min_i64(g.task_pixels, g.virtual_pixels - q0);
  const int64_t pixel_pairs = (count + kPixelPair - 1) / kPixelPair;
  const int64_t kc = a.layout.k_chunk, chunks = a.layout.chunks_per_tap, taps = s.taps();
  const int64_t tile_bytes = kTileRows * kc;  // a B tile
  const int64_t cp = g.channels_padded;       // A tile row stride
  int32_t* dots = static_cast<int32_t*>(t_dots.get(
      static_cast<size_t>(g.task_pairs * pixel_pairs * 4 * kTileInts) * sizeof(int32_t)));
  if (dots == nullptr) {
    __atomic_store_n(&job.failed, 1, __ATOMIC_RELAXED);
    return;
  }
  const int8_t* image = job.image + n * g.image_bytes + q0 * cp;
#if defined(BNN_TASKS_CHECK_TILE_BOUNDS)
  const int64_t weight_bytes = a.layout.o_pairs * chunks * taps * 2 * tile_bytes;
  const int64_t image_bytes = s.N * g.image_bytes;
  const int64_t dots_bytes = g.task_pairs * pixel_pairs * 4 * kTileInts * 4;
#endif

  const TileConfig cfg = make_tile_config(kc);
  _tile_loadconfig(&cfg);  // per task: the pool thread may have run other tile code
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    const int8_t* chunk_image = image + chunk * kc;
    for (int64_t pair = pair0; pair < pair1; ++pair) {
      const int8_t* chunk_weights = a.weights + (pair * chunks + chunk) * taps * 2 * tile_bytes;
      for (int64_t pp = 0; pp < pixel_pairs; ++pp) {
        int32_t* c = dots + ((pair - pair0) * pixel_pairs + pp) * 4 * kTileInts;
        CHECK_TILE(c, 64, 64, 64, dots, dots_bytes);
        if (chunk == 0) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else {
          _tile_loadd(0, c, 64);
          _tile_loadd(1, c + kTileInts, 64);
          _tile_loadd(2, c + 2 * kTileInts, 64);
          _tile_loadd(3, c + 3 * kTileInts, 64);
        }
        const int8_t* w = chunk_weights;
        const int8_t* pixels = chunk_image + pp * kPixelPair * cp;
        for (int64_t tap = 0; tap < taps; ++tap, w += 2 * tile_bytes) {
          const int8_t* p = pixels + job.tap_phase[tap] + job.tap_entries[tap] * cp;
          CHECK_TILE(p, 2 * kTileRows, kc, cp, job.image, image_bytes);
          CHECK_TILE(w, kc / 4 * 2, 64, 64, a.weights, weight_bytes);
          _tile_loadd(4, p, cp);
          _tile_loadd(5, p + kTileRows * cp, cp);
          _tile_loadd(6, w, 64);
          _tile_loadd(7, w + tile_bytes, 64);
          _tile_dpbssd(0, 4, 6);
          _tile_dpbssd(1, 4, 7);
          _tile_dpbssd(2, 5, 6);
          _tile_dpbssd(3, 5, 7);
        }
        _tile_stored(0, c, 64);
        _tile_stored(1, c + kTileInts, 64);
        _tile_stored(2, c + 2 * kTileInts, 64);
        _tile_stored(3, c + 3 * kTileInts, 64);
      }
    }
  }
  _tile_release();  // back to the init state: cheaper context switches for this thread
  epilogue(s, g, a.transform, n, pair0, pair1, q0, count, dots, a.y);
}

// The calling thread's phase-plane buffer, reused across calls (see binary_conv.cc t_bits).
struct ImageBuffer {
  int8_t* data = nullptr;
  size_t size = 0;
  ~ImageBuffer() { std::free(data); }
};
thread_local ImageBuffer t_image;

const char* int8_tile_conv_amx(const bnn::Int8ConvArgs& args) {
  const bnn::ConvShape& s = *args.shape;
  Job job;
  job.args = &args;
  job.geo = make_geometry(s, args.layout);
  job.failed = 0;
  const size_t needed = static_cast<size_t>(s.N * job.geo.image_bytes);
  if (t_image.size < needed) {
    std::free(t_image.data);
    t_image.size = 0;
    constexpr int64_t kHuge = int64_t{1} << 21;
    const int64_t bytes = round_up(static_cast<int64_t>(needed), kHuge);
    t_image.data = static_cast<int8_t*>(std::aligned_alloc(kHuge, bytes));
    if (t_image.data == nullptr) return "out of memory for the int8 input planes";
    madvise(t_image.data, bytes, MADV_HUGEPAGE);
    t_image.size = needed;
  }
  job.image = t_image.data;
  const int64_t taps = s.taps();
  int64_t* plan = static_cast<int64_t*>(std::malloc(static_cast<size_t>(2 * taps) * sizeof(int64_t)));
  if (plan == nullptr) return "out of memory for the tap offsets";
  for (int64_t i = 0; i < s.kh; ++i) {
    for (int64_t j = 0; j < s.kw; ++j) {
      const int64_t tap = i * s.kw + j;
      plan[tap] = (i * s.dh / s.sh) * job.geo.Wq + j * s.dw / s.sw;
      plan[taps + tap] = ((i * s.dh) % s.sh * s.sw + (j * s.dw) % s.sw) * job.geo.phase_stride;
    }
  }
  job.tap_entries = plan;
  job.tap_phase = plan + taps;
  const char* failure = nullptr;
  if (!args.parallel_for(args.parallel_ctx, pack_task,
                         static_cast<size_t>(s.N * s.sh * job.geo.Hq), &job))
    failure = "parallel execution of the int8 input packing failed";
  else if (__atomic_load_n(&job.failed, __ATOMIC_RELAXED))
    failure = "out of memory in the int8 input packing";
  else if (!args.parallel_for(args.parallel_ctx, gemm_task,
                              static_cast<size_t>(s.N * job.geo.tasks_per_image), &job))
    failure = "parallel execution of the tile convolution failed";
  else if (__atomic_load_n(&job.failed, __ATOMIC_RELAXED))
    failure = "out of memory in a tile convolution task";
  std::free(plan);
  return failure;
}

const bnn::KernelVariant kAmx = {"amx", nullptr, nullptr, nullptr, int8_tile_conv_amx};

}  // namespace

const bnn::KernelVariant& bnn::amx_kernel() { return kAmx; }

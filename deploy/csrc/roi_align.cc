// MultiLevelRoiAlign: each RoI pooled once, on its own level, from channels-last features.
//
// ONNX Runtime's RoiAlign walks NCHW planes: every bilinear sample reads 4 scattered floats per
// channel, one channel at a time (measured: 30 % of the main job's exported detector). Here the
// levels that have RoIs are transposed to NHWC once per run, so a feature pixel is one
// contiguous channel row, and each bin sums the weighted rows of the pixels its samples touch
// (each pixel once, its weight the sum over the samples) as a vectorized axpy over C. The
// weights are torchvision's CPU roi_align's (the export reference); only the order of the
// float additions differs (results agree to ~1e-7 relative).
#include "roi_align.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace bnn {
namespace {

// One term of a bin's average: a feature pixel (y * W + x) and the summed weight of all the
// bin's bilinear samples on it.
struct Tap {
  int64_t pixel;
  float weight;
};

// acc[c] = (sum over taps of weight * f[pixel][c]) / count for nhwc [pixels][C], four taps per
// pass over the channel row.
__attribute__((always_inline)) inline void pool_bin_impl(const float* __restrict nhwc, int64_t C,
                                                         const Tap* taps, int64_t n, float count,
                                                         float* __restrict acc) {
  for (int64_t c = 0; c < C; ++c) acc[c] = 0.f;
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    const float* __restrict a = nhwc + taps[k].pixel * C;
    const float* __restrict b = nhwc + taps[k + 1].pixel * C;
    const float* __restrict d = nhwc + taps[k + 2].pixel * C;
    const float* __restrict e = nhwc + taps[k + 3].pixel * C;
    const float w0 = taps[k].weight, w1 = taps[k + 1].weight, w2 = taps[k + 2].weight,
                w3 = taps[k + 3].weight;
    for (int64_t c = 0; c < C; ++c) acc[c] += w0 * a[c] + w1 * b[c] + w2 * d[c] + w3 * e[c];
  }
  for (; k < n; ++k) {
    const float* __restrict a = nhwc + taps[k].pixel * C;
    const float w = taps[k].weight;
    for (int64_t c = 0; c < C; ++c) acc[c] += w * a[c];
  }
  for (int64_t c = 0; c < C; ++c) acc[c] /= count;
}

using PoolBinFn = void (*)(const float*, int64_t, const Tap*, int64_t, float, float*);

void pool_bin_portable(const float* nhwc, int64_t C, const Tap* t, int64_t n, float count,
                       float* acc) {
  pool_bin_impl(nhwc, C, t, n, count, acc);
}

#if defined(BNN_TASKS_X86_KERNELS)
// The same loop compiled for wider vectors; -ffp-contract=off keeps the results identical.
__attribute__((target("avx2"))) void pool_bin_avx2(const float* nhwc, int64_t C, const Tap* t,
                                                   int64_t n, float count, float* acc) {
  pool_bin_impl(nhwc, C, t, n, count, acc);
}

__attribute__((target("avx512f"))) void pool_bin_avx512(const float* nhwc, int64_t C,
                                                        const Tap* t, int64_t n, float count,
                                                        float* acc) {
  pool_bin_impl(nhwc, C, t, n, count, acc);
}
#endif

struct Variant {
  const char* name;
  PoolBinFn fn;
};

Variant select_variant() {
#if defined(BNN_TASKS_X86_KERNELS)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {"avx512", pool_bin_avx512};
  if (__builtin_cpu_supports("avx2")) return {"avx2", pool_bin_avx2};
#endif
  return {"portable", pool_bin_portable};
}

const Variant& variant() {
  static const Variant v = select_variant();
  return v;
}

// The weights a bin's row of samples puts on the feature rows (or its column of samples on the
// columns): torchvision's bilinear_interpolate along one axis, summed over the `grid` sample
// positions. A sample outside [-1, size] adds nothing; positions in [-1, 0] are clamped to 0,
// past the last pixel to it. A bilinear weight is the product of its two axes' weights, so a
// bin's average is sum_y sum_x wy[y] * wx[x] * f[y][x] / count: each feature pixel is read once
// per bin instead of once per sample tap (4 per sample).
struct AxisTaps {
  int64_t first = 0;          // the feature row/column of weight[0]
  std::vector<float> weight;  // summed weights of first, first + 1, ...
};

void axis_taps(float origin, int64_t bin_index, float bin, int64_t grid, int64_t size,
               AxisTaps* out) {
  out->weight.clear();
  for (int64_t i = 0; i < grid; ++i) {
    // torchvision's float expression for the sample position
    float v = origin + static_cast<float>(bin_index) * bin +
              static_cast<float>(i + .5f) * bin / static_cast<float>(grid);
    if (v < -1.f || v > static_cast<float>(size)) continue;
    if (v <= 0.f) v = 0.f;
    int64_t low = static_cast<int64_t>(v), high;
    if (low >= size - 1) {
      high = low = size - 1;
      v = static_cast<float>(low);
    } else {
      high = low + 1;
    }
    const float l = v - static_cast<float>(low), h = 1.f - l;
    if (out->weight.empty()) out->first = low;  // positions only grow with i
    const size_t need = static_cast<size_t>(high - out->first + 1);
    if (out->weight.size() < need) out->weight.resize(need, 0.f);
    out->weight[static_cast<size_t>(low - out->first)] += h;
    out->weight[static_cast<size_t>(high - out->first)] += l;
  }
}

struct Job {
  const RoiAlignParams* p;
  const std::vector<RoiLevel>* levels;
  std::vector<std::vector<float>> nhwc;  // per level: [N][H][W][C]
  const float* rois;
  float* y;
  PoolBinFn pool_bin;
  // (level, image, row) triples of the transpose, level by level
  std::vector<int64_t> row_offsets;
};

void transpose_row(void* data, size_t index) {
  Job& job = *static_cast<Job*>(data);
  const int64_t i = static_cast<int64_t>(index);
  size_t level = 0;
  while (i >= job.row_offsets[level + 1]) ++level;
  const RoiLevel& L = (*job.levels)[level];
  const int64_t C = job.p->C, rows_per_image = L.H;
  const int64_t local = i - job.row_offsets[level];
  const int64_t n = local / rows_per_image, h = local % rows_per_image;
  const float* src = L.data + n * C * L.H * L.W + h * L.W;
  float* dst = job.nhwc[level].data() + (n * L.H + h) * L.W * C;
  for (int64_t c = 0; c < C; ++c) {
    const float* plane_row = src + c * L.H * L.W;
    for (int64_t w = 0; w < L.W; ++w) dst[w * C + c] = plane_row[w];
  }
}

void pool_roi(void* data, size_t index) {
  Job& job = *static_cast<Job*>(data);
  const RoiAlignParams& p = *job.p;
  const int64_t r = static_cast<int64_t>(index), C = p.C, bins = p.out_h * p.out_w;
  const float* roi = job.rois + r * 5;
  const int64_t num_levels = static_cast<int64_t>(job.levels->size());
  const int64_t level = roi_level(roi + 1, p.finest_scale, num_levels);
  const RoiLevel& L = (*job.levels)[level];
  const int64_t n = static_cast<int64_t>(roi[0]);
  const float* nhwc = job.nhwc[level].data() + n * L.H * L.W * C;

  const float scale = L.spatial_scale, offset = p.aligned ? 0.5f : 0.f;
  const float start_w = roi[1] * scale - offset, start_h = roi[2] * scale - offset;
  const float end_w = roi[3] * scale - offset, end_h = roi[4] * scale - offset;
  float roi_w = end_w - start_w, roi_h = end_h - start_h;
  if (!p.aligned) {  // legacy behaviour: RoIs at least one pixel
    roi_w = std::max(roi_w, 1.f);
    roi_h = std::max(roi_h, 1.f);
  }
  const float bin_h = roi_h / static_cast<float>(p.out_h), bin_w = roi_w / static_cast<float>(p.out_w);
  const int64_t grid_h = p.sampling_ratio > 0 ? p.sampling_ratio
                                              : static_cast<int64_t>(std::ceil(roi_h / static_cast<float>(p.out_h)));
  const int64_t grid_w = p.sampling_ratio > 0 ? p.sampling_ratio
                                              : static_cast<int64_t>(std::ceil(roi_w / static_cast<float>(p.out_w)));
  const float count = static_cast<float>(std::max<int64_t>(grid_h * grid_w, 1));

  thread_local std::vector<AxisTaps> rows, cols;  // per bin row / bin column of the RoI
  thread_local std::vector<Tap> taps;
  thread_local std::vector<float> pooled;  // [bins][C]
  rows.resize(static_cast<size_t>(p.out_h));
  cols.resize(static_cast<size_t>(p.out_w));
  for (int64_t ph = 0; ph < p.out_h; ++ph) axis_taps(start_h, ph, bin_h, grid_h, L.H, &rows[ph]);
  for (int64_t pw = 0; pw < p.out_w; ++pw) axis_taps(start_w, pw, bin_w, grid_w, L.W, &cols[pw]);
  pooled.resize(static_cast<size_t>(bins * C));
  for (int64_t ph = 0; ph < p.out_h; ++ph) {
    const AxisTaps& ys = rows[ph];
    for (int64_t pw = 0; pw < p.out_w; ++pw) {
      const AxisTaps& xs = cols[pw];
      taps.clear();
      for (size_t i = 0; i < ys.weight.size(); ++i) {
        if (ys.weight[i] == 0.f) continue;
        const int64_t row = (ys.first + static_cast<int64_t>(i)) * L.W;
        for (size_t j = 0; j < xs.weight.size(); ++j)
          if (xs.weight[j] != 0.f)
            taps.push_back({row + xs.first + static_cast<int64_t>(j), ys.weight[i] * xs.weight[j]});
      }
      job.pool_bin(nhwc, C, taps.data(), static_cast<int64_t>(taps.size()), count,
                   pooled.data() + (ph * p.out_w + pw) * C);
    }
  }
  float* out = job.y + r * C * bins;  // [C][out_h][out_w]: sequential stores, strided loads
  for (int64_t c = 0; c < C; ++c)
    for (int64_t bin = 0; bin < bins; ++bin) out[c * bins + bin] = pooled[bin * C + c];
}

}  // namespace

int64_t roi_level(const float* box, float finest_scale, int64_t num_levels) {
  const float scale = std::sqrt((box[2] - box[0]) * (box[3] - box[1]));
  const float level = std::floor(std::log2(scale / finest_scale + 1e-6f));
  if (!(level >= 0.f)) return 0;  // below level 0, or NaN (a box with negative area)
  return std::min<int64_t>(static_cast<int64_t>(level), num_levels - 1);
}

std::string multilevel_roi_align(const RoiAlignParams& p, const std::vector<RoiLevel>& levels,
                                 const float* rois, int64_t num_rois, float* y,
                                 ParallelFor parallel_for, void* parallel_ctx) {
  if (num_rois == 0) return "";
  for (int64_t r = 0; r < num_rois; ++r) {
    const float b = rois[r * 5];
    if (!(b >= 0.f && b < static_cast<float>(p.N)) || b != std::floor(b))
      return "rois[" + std::to_string(r) + ", 0] (batch index) is " + std::to_string(b) +
             ", not an image index in [0, " + std::to_string(p.N) + ")";
  }
  Job job;
  job.p = &p;
  job.levels = &levels;
  job.rois = rois;
  job.y = y;
  job.pool_bin = variant().fn;
  // only the levels some RoI is pooled on are transposed (level 0 alone is most of the bytes)
  std::vector<bool> used(levels.size(), false);
  const int64_t num_levels = static_cast<int64_t>(levels.size());
  for (int64_t r = 0; r < num_rois; ++r)
    used[static_cast<size_t>(roi_level(rois + r * 5 + 1, p.finest_scale, num_levels))] = true;
  job.row_offsets.push_back(0);
  job.nhwc.resize(levels.size());
  for (size_t i = 0; i < levels.size(); ++i) {
    const RoiLevel& L = levels[i];
    const int64_t rows = used[i] ? p.N * L.H : 0;
    if (used[i]) job.nhwc[i].resize(static_cast<size_t>(p.N * L.H * L.W * p.C));
    job.row_offsets.push_back(job.row_offsets.back() + rows);
  }
  if (!parallel_for(parallel_ctx, transpose_row, static_cast<size_t>(job.row_offsets.back()), &job))
    return "parallel execution of the feature transpose failed";
  if (!parallel_for(parallel_ctx, pool_roi, static_cast<size_t>(num_rois), &job))
    return "parallel execution of the RoI pooling failed";
  return "";
}

const char* roi_align_variant() { return variant().name; }

}  // namespace bnn

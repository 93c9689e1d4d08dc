// MultiLevelRoiAlign: each RoI pooled once, on its own level, from channels-last features.
//
// ONNX Runtime's RoiAlign walks NCHW planes: every bilinear sample reads 4 scattered floats per
// channel, one channel at a time (measured: 30 % of the main job's exported detector). Here the
// levels are transposed to NHWC once per run, so a sample's 4 taps are 4 contiguous channel
// rows and the accumulation is a vectorized axpy over C. The arithmetic mirrors torchvision's
// CPU roi_align (the export reference) term by term.
#include "roi_align.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace bnn {
namespace {

// A bilinear sample inside the feature map: four pixel indices (y * W + x) and their weights.
struct Sample {
  int64_t pixel[4];
  float weight[4];
};

// acc[c] = (sum over samples of w0*f[p0][c] + w1*f[p1][c] + w2*f[p2][c] + w3*f[p3][c]) / count
// for nhwc [pixels][C]. Samples outside the map were dropped by the caller (they add 0).
__attribute__((always_inline)) inline void pool_bin_impl(const float* __restrict nhwc, int64_t C,
                                                         const Sample* samples, int64_t n,
                                                         float count, float* __restrict acc) {
  for (int64_t c = 0; c < C; ++c) acc[c] = 0.f;
  for (int64_t k = 0; k < n; ++k) {
    const Sample& s = samples[k];
    const float* __restrict a = nhwc + s.pixel[0] * C;
    const float* __restrict b = nhwc + s.pixel[1] * C;
    const float* __restrict d = nhwc + s.pixel[2] * C;
    const float* __restrict e = nhwc + s.pixel[3] * C;
    const float w0 = s.weight[0], w1 = s.weight[1], w2 = s.weight[2], w3 = s.weight[3];
    for (int64_t c = 0; c < C; ++c) acc[c] += w0 * a[c] + w1 * b[c] + w2 * d[c] + w3 * e[c];
  }
  for (int64_t c = 0; c < C; ++c) acc[c] /= count;
}

using PoolBinFn = void (*)(const float*, int64_t, const Sample*, int64_t, float, float*);

void pool_bin_portable(const float* nhwc, int64_t C, const Sample* s, int64_t n, float count,
                       float* acc) {
  pool_bin_impl(nhwc, C, s, n, count, acc);
}

#if defined(BNN_TASKS_X86_KERNELS)
// The same loop compiled for wider vectors; -ffp-contract=off keeps the results identical.
__attribute__((target("avx2"))) void pool_bin_avx2(const float* nhwc, int64_t C, const Sample* s,
                                                   int64_t n, float count, float* acc) {
  pool_bin_impl(nhwc, C, s, n, count, acc);
}

__attribute__((target("avx512f"))) void pool_bin_avx512(const float* nhwc, int64_t C,
                                                        const Sample* s, int64_t n, float count,
                                                        float* acc) {
  pool_bin_impl(nhwc, C, s, n, count, acc);
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

// torchvision's bilinear_interpolate pre-computation for one sample point (y, x); false if
// the point is outside [-1, H] x [-1, W] (it contributes 0).
bool bilinear_sample(float y, float x, int64_t H, int64_t W, Sample* s) {
  if (y < -1.f || y > static_cast<float>(H) || x < -1.f || x > static_cast<float>(W)) return false;
  if (y <= 0.f) y = 0.f;
  if (x <= 0.f) x = 0.f;
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= H - 1) {
    y_high = y_low = H - 1;
    y = static_cast<float>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= W - 1) {
    x_high = x_low = W - 1;
    x = static_cast<float>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const float ly = y - static_cast<float>(y_low), lx = x - static_cast<float>(x_low);
  const float hy = 1.f - ly, hx = 1.f - lx;
  s->pixel[0] = y_low * W + x_low;
  s->pixel[1] = y_low * W + x_high;
  s->pixel[2] = y_high * W + x_low;
  s->pixel[3] = y_high * W + x_high;
  s->weight[0] = hy * hx;
  s->weight[1] = hy * lx;
  s->weight[2] = ly * hx;
  s->weight[3] = ly * lx;
  return true;
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

  thread_local std::vector<Sample> samples;
  thread_local std::vector<float> pooled;  // [bins][C]
  samples.resize(static_cast<size_t>(std::max<int64_t>(grid_h * grid_w, 1)));
  pooled.resize(static_cast<size_t>(bins * C));
  for (int64_t ph = 0; ph < p.out_h; ++ph) {
    for (int64_t pw = 0; pw < p.out_w; ++pw) {
      int64_t used = 0;
      for (int64_t iy = 0; iy < grid_h; ++iy) {
        const float y = start_h + static_cast<float>(ph) * bin_h +
                        static_cast<float>(iy + .5f) * bin_h / static_cast<float>(grid_h);
        for (int64_t ix = 0; ix < grid_w; ++ix) {
          const float x = start_w + static_cast<float>(pw) * bin_w +
                          static_cast<float>(ix + .5f) * bin_w / static_cast<float>(grid_w);
          if (bilinear_sample(y, x, L.H, L.W, &samples[used])) ++used;
        }
      }
      job.pool_bin(nhwc, C, samples.data(), used, count, pooled.data() + (ph * p.out_w + pw) * C);
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
  job.row_offsets.push_back(0);
  job.nhwc.resize(levels.size());
  for (size_t i = 0; i < levels.size(); ++i) {
    const RoiLevel& L = levels[i];
    job.nhwc[i].resize(static_cast<size_t>(p.N * L.H * L.W * p.C));
    job.row_offsets.push_back(job.row_offsets.back() + p.N * L.H);
  }
  if (!parallel_for(parallel_ctx, transpose_row, static_cast<size_t>(job.row_offsets.back()), &job))
    return "parallel execution of the feature transpose failed";
  if (!parallel_for(parallel_ctx, pool_roi, static_cast<size_t>(num_rois), &job))
    return "parallel execution of the RoI pooling failed";
  return "";
}

const char* roi_align_variant() { return variant().name; }

}  // namespace bnn

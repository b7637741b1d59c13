// Why this file exists: the deterministic scene generator behind synthetic data sets. A scene
// is drawn from Rng(seed, index) alone, in normalised coordinates, then rasterised at any
// resolution. Each pixel approximates the average of the continuous scene over its area:
// shape edges get a one-pixel coverage ramp, thin bands their exact 1-D overlap, and
// textures are sums of plane waves, whose pixel-area average is known in closed form
// (the wave times sinc(fx/R)·sinc(fy/R)). That is what makes the rungs of a resolution
// ladder show the same content, and keeps fine textures from aliasing into noise.
//
// Determinism: only IEEE basic operations, sqrt, sin, cos and exp on doubles, in a fixed
// order. Contraction of a*b+c into FMA would change low bits depending on the compiler and
// its flags, so it is switched off for this file.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "data/synthetic_images.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "core/check.h"
#include "core/rng.h"

namespace ladder::data {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTwoPi = 2.0 * kPi;
constexpr int kMaxWaves = 8;

// amplitude * cos(2π (fx x + fy y) + phase), frequencies in cycles per image width.
struct Wave {
  double fx = 0, fy = 0, phase = 0, amplitude = 0;
};

enum class ShapeKind { kCircle, kEllipse, kRectangle, kTriangle, kRing, kLine };
enum class FillKind { kSolid, kGradient, kTexture };

struct Shape {
  ShapeKind kind = ShapeKind::kCircle;
  double cx = 0, cy = 0;  // centre
  double reach = 0;       // every covered point lies within this distance of the centre
  // circle: a = radius; ellipse: semi-axes; rectangle: half extents;
  // ring: a = radius, b = band width; line: a = half length, b = width.
  double a = 0, b = 0;
  double cos_t = 1, sin_t = 0;  // rotation (ellipse, rectangle, line)
  // triangle: signed distance to edge k is nx[k] * u + ny[k] * v - offset[k] (outside > 0)
  double nx[3] = {}, ny[3] = {}, offset[3] = {};

  FillKind fill = FillKind::kSolid;
  double color[3] = {}, color2[3] = {};  // fill = color + t * (color2 - color), t in [0, 1]
  double gx = 0, gy = 0;                 // gradient fill: t = 0.5 + gx * u + gy * v
  int wave_count = 0;                    // texture fill: t = 0.5 + 0.5 * sum of waves
  Wave waves[kMaxWaves];
  double opacity = 1;
};

struct Blob {
  double cx = 0, cy = 0, sigma = 1, strength = 0;
  double color[3] = {};
};

struct Scene {
  double corner[4][3] = {};  // background colours at (0,0), (1,0), (0,1), (1,1) as (x, y)
  Blob blobs[2];
  std::vector<Shape> shapes;  // painted in order
};

double log_uniform(Rng& rng, double lo, double hi) {
  return lo * std::exp(rng.uniform() * std::log(hi / lo));
}

void random_color(Rng& rng, double* rgb) {
  for (int c = 0; c < 3; ++c) rgb[c] = rng.uniform();
}

// Square wave of period 1/f along direction theta, by its odd harmonics 1, 3, 5:
// (4/π) Σ (-1)^((k-1)/2) cos(k u) / k.
void add_stripes(Rng& rng, Shape* shape) {
  const double f = log_uniform(rng, 4.0, 40.0);
  const double theta = rng.uniform(0.0, kPi);
  const double phase = rng.uniform(0.0, kTwoPi);
  const double dx = std::cos(theta), dy = std::sin(theta);
  for (int k = 1; k <= 5; k += 2) {
    Wave& w = shape->waves[shape->wave_count++];
    w.fx = k * f * dx;
    w.fy = k * f * dy;
    w.phase = k * phase;
    w.amplitude = (k % 4 == 1 ? 1.0 : -1.0) * 4.0 / (kPi * k);
  }
}

// Checker: product of two square waves (harmonics 1 and 3) along perpendicular axes; each
// product cos(i u) cos(j v) is split into two plane waves.
void add_checker(Rng& rng, Shape* shape) {
  const double f = log_uniform(rng, 3.0, 24.0);
  const double theta = rng.uniform(0.0, kPi / 2);
  const double phase_u = rng.uniform(0.0, kTwoPi), phase_v = rng.uniform(0.0, kTwoPi);
  const double ux = std::cos(theta), uy = std::sin(theta);  // u axis; v axis = (-uy, ux)
  const int harmonics[2] = {1, 3};
  for (int i : harmonics) {
    for (int j : harmonics) {
      const double ci = (i == 1 ? 1.0 : -1.0 / 3.0) * 4.0 / kPi;
      const double cj = (j == 1 ? 1.0 : -1.0 / 3.0) * 4.0 / kPi;
      for (int sign = -1; sign <= 1; sign += 2) {  // cos(iu ± jv) / 2
        Wave& w = shape->waves[shape->wave_count++];
        w.fx = f * (i * ux - sign * j * uy);
        w.fy = f * (i * uy + sign * j * ux);
        w.phase = i * phase_u + sign * j * phase_v;
        w.amplitude = 0.5 * ci * cj;
      }
    }
  }
}

// A few sinusoids of random frequency and direction: interference patterns.
void add_interference(Rng& rng, Shape* shape) {
  const int count = 2 + static_cast<int>(rng.below(2));
  for (int k = 0; k < count; ++k) {
    const double f = log_uniform(rng, 3.0, 30.0);
    const double theta = rng.uniform(0.0, kTwoPi);
    Wave& w = shape->waves[shape->wave_count++];
    w.fx = f * std::cos(theta);
    w.fy = f * std::sin(theta);
    w.phase = rng.uniform(0.0, kTwoPi);
    w.amplitude = 1.0 / count;
  }
}

Shape random_shape(Rng& rng) {
  Shape s;
  const double pick = rng.uniform();
  s.kind = pick < 0.2   ? ShapeKind::kCircle
           : pick < 0.4 ? ShapeKind::kEllipse
           : pick < 0.6 ? ShapeKind::kRectangle
           : pick < 0.8 ? ShapeKind::kTriangle
           : pick < 0.9 ? ShapeKind::kRing
                        : ShapeKind::kLine;
  s.cx = rng.uniform(-0.05, 1.05);
  s.cy = rng.uniform(-0.05, 1.05);
  const double r = log_uniform(rng, 0.02, 0.35);
  const double theta = rng.uniform(0.0, kTwoPi);
  s.cos_t = std::cos(theta);
  s.sin_t = std::sin(theta);
  switch (s.kind) {
    case ShapeKind::kCircle:
      s.a = r;
      s.reach = r;
      break;
    case ShapeKind::kEllipse:
      s.a = r;
      s.b = r * rng.uniform(0.25, 0.9);
      s.reach = r;
      break;
    case ShapeKind::kRectangle: {
      const double beta = rng.uniform(0.2, kPi / 2 - 0.2);
      s.a = r * std::cos(beta);
      s.b = r * std::sin(beta);
      s.reach = r;
      break;
    }
    case ShapeKind::kTriangle: {
      // Vertices on the circle of radius r at increasing angles (gaps >= 0.7 rad).
      double angle[3];
      angle[0] = theta;
      angle[1] = angle[0] + rng.uniform(0.7, 2.5);
      angle[2] = angle[1] + rng.uniform(0.7, 2.5);
      double vx[3], vy[3];
      for (int k = 0; k < 3; ++k) {
        vx[k] = r * std::cos(angle[k]);
        vy[k] = r * std::sin(angle[k]);
      }
      const double gx = (vx[0] + vx[1] + vx[2]) / 3.0, gy = (vy[0] + vy[1] + vy[2]) / 3.0;
      for (int k = 0; k < 3; ++k) {
        const int n = (k + 1) % 3;
        const double ex = vx[n] - vx[k], ey = vy[n] - vy[k];
        const double len = std::sqrt(ex * ex + ey * ey);
        double nx = ey / len, ny = -ex / len;
        double off = nx * vx[k] + ny * vy[k];
        if (nx * gx + ny * gy - off > 0) {  // orient outwards: the centroid is inside (< 0)
          nx = -nx;
          ny = -ny;
          off = -off;
        }
        s.nx[k] = nx;
        s.ny[k] = ny;
        s.offset[k] = off;
      }
      s.reach = r;
      break;
    }
    case ShapeKind::kRing:
      s.a = r;
      s.b = std::max(0.004, r * rng.uniform(0.08, 0.35));
      s.reach = r + s.b;
      break;
    case ShapeKind::kLine:
      s.a = 1.5 * r;
      s.b = log_uniform(rng, 0.003, 0.03);
      s.reach = s.a + s.b;
      break;
  }

  random_color(rng, s.color);
  random_color(rng, s.color2);
  s.opacity = rng.uniform() < 0.7 ? 1.0 : rng.uniform(0.35, 0.85);

  const double fill = rng.uniform();
  const bool thin = s.kind == ShapeKind::kRing || s.kind == ShapeKind::kLine;
  if (thin || fill < 0.4) {
    s.fill = FillKind::kSolid;
  } else if (fill < 0.65) {
    s.fill = FillKind::kGradient;
    const double phi = rng.uniform(0.0, kTwoPi);
    s.gx = 0.5 * std::cos(phi) / s.reach;
    s.gy = 0.5 * std::sin(phi) / s.reach;
  } else {
    s.fill = FillKind::kTexture;
    const double texture = rng.uniform();
    if (texture < 0.45)
      add_stripes(rng, &s);
    else if (texture < 0.75)
      add_checker(rng, &s);
    else
      add_interference(rng, &s);
  }
  return s;
}

Scene random_scene(Rng& rng) {
  Scene scene;
  double base[3];
  random_color(rng, base);
  for (auto& corner : scene.corner) {
    for (int c = 0; c < 3; ++c) corner[c] = 0.5 * base[c] + 0.5 * rng.uniform();
  }
  for (Blob& blob : scene.blobs) {
    blob.cx = rng.uniform();
    blob.cy = rng.uniform();
    blob.sigma = rng.uniform(0.08, 0.3);
    blob.strength = rng.uniform(0.2, 0.7);
    random_color(rng, blob.color);
  }
  const int count = 5 + static_cast<int>(rng.below(12));
  scene.shapes.reserve(count);
  for (int i = 0; i < count; ++i) scene.shapes.push_back(random_shape(rng));
  // Large shapes first, so small ones stay visible. stable_sort: one order everywhere.
  std::stable_sort(scene.shapes.begin(), scene.shapes.end(),
                   [](const Shape& x, const Shape& y) { return x.reach > y.reach; });
  return scene;
}

// Fraction of a pixel covered by a region whose signed distance at its centre is d
// (in pixels; negative inside): a one-pixel ramp across the edge.
double area_coverage(double d_pixels) { return std::min(1.0, std::max(0.0, 0.5 - d_pixels)); }

// Fraction of a pixel covered by a band of width w around a curve at distance t from the
// pixel centre (all in pixels): the 1-D overlap of [t - 1/2, t + 1/2] with [-w/2, w/2].
double band_coverage(double t, double w) {
  const double lo = std::max(-0.5 * w, t - 0.5);
  const double hi = std::min(0.5 * w, t + 0.5);
  return std::max(0.0, hi - lo);
}

// Coverage of the pixel whose centre is (u, v) relative to the shape centre.
double coverage(const Shape& s, double u, double v, double res) {
  switch (s.kind) {
    case ShapeKind::kCircle:
      return area_coverage((std::sqrt(u * u + v * v) - s.a) * res);
    case ShapeKind::kEllipse: {
      // Distance estimate k0 (k0 - 1) / k1 (exact near the boundary, where it matters).
      const double lu = s.cos_t * u + s.sin_t * v, lv = -s.sin_t * u + s.cos_t * v;
      const double pu = lu / s.a, pv = lv / s.b;
      const double k0 = std::sqrt(pu * pu + pv * pv);
      const double qu = pu / s.a, qv = pv / s.b;
      const double k1 = std::sqrt(qu * qu + qv * qv);
      const double d = k1 > 0 ? k0 * (k0 - 1.0) / k1 : -s.b;
      return area_coverage(d * res);
    }
    case ShapeKind::kRectangle: {
      const double lu = s.cos_t * u + s.sin_t * v, lv = -s.sin_t * u + s.cos_t * v;
      const double dx = std::abs(lu) - s.a, dy = std::abs(lv) - s.b;
      const double ox = std::max(dx, 0.0), oy = std::max(dy, 0.0);
      const double d = std::sqrt(ox * ox + oy * oy) + std::min(std::max(dx, dy), 0.0);
      return area_coverage(d * res);
    }
    case ShapeKind::kTriangle: {
      double d = s.nx[0] * u + s.ny[0] * v - s.offset[0];
      for (int k = 1; k < 3; ++k) d = std::max(d, s.nx[k] * u + s.ny[k] * v - s.offset[k]);
      return area_coverage(d * res);
    }
    case ShapeKind::kRing:
      return band_coverage(std::abs(std::sqrt(u * u + v * v) - s.a) * res, s.b * res);
    case ShapeKind::kLine: {
      const double lu = s.cos_t * u + s.sin_t * v, lv = -s.sin_t * u + s.cos_t * v;
      const double along = std::min(s.a, std::max(-s.a, lu));
      const double du = lu - along;
      return band_coverage(std::sqrt(du * du + lv * lv) * res, s.b * res);
    }
  }
  return 0.0;
}

// sin(π z) / (π z): the pixel-area average of a unit cosine of z cycles per pixel.
double sinc(double z) {
  if (std::abs(z) < 1e-12) return 1.0;
  return std::sin(kPi * z) / (kPi * z);
}

// Pixel-centre coordinate of pixel i at resolution res, in [0, 1].
double centre(int i, double res) { return (i + 0.5) / res; }

void paint_background(const Scene& scene, int res, double* rgb /* (R, R, 3) */) {
  const double r = res;
  // Separable Gaussian blobs: exp(-(x-cx)^2 / 2σ^2) by column times the same by row.
  std::vector<double> blob_x(2 * static_cast<size_t>(res)), blob_y(2 * static_cast<size_t>(res));
  for (int b = 0; b < 2; ++b) {
    const Blob& blob = scene.blobs[b];
    const double k = 1.0 / (2.0 * blob.sigma * blob.sigma);
    for (int i = 0; i < res; ++i) {
      const double dx = centre(i, r) - blob.cx, dy = centre(i, r) - blob.cy;
      blob_x[b * res + i] = std::exp(-dx * dx * k);
      blob_y[b * res + i] = std::exp(-dy * dy * k);
    }
  }
  for (int y = 0; y < res; ++y) {
    const double fy = centre(y, r);
    for (int x = 0; x < res; ++x) {
      const double fx = centre(x, r);
      double* px = rgb + (static_cast<size_t>(y) * res + x) * 3;
      for (int c = 0; c < 3; ++c) {
        const double top = scene.corner[0][c] + fx * (scene.corner[1][c] - scene.corner[0][c]);
        const double bottom = scene.corner[2][c] + fx * (scene.corner[3][c] - scene.corner[2][c]);
        px[c] = top + fy * (bottom - top);
      }
      for (int b = 0; b < 2; ++b) {
        const Blob& blob = scene.blobs[b];
        const double alpha = blob.strength * blob_x[b * res + x] * blob_y[b * res + y];
        for (int c = 0; c < 3; ++c) px[c] += alpha * (blob.color[c] - px[c]);
      }
    }
  }
}

// Per-column and per-row factors of each wave over the shape's pixel box, so that a pixel's
// texture is Σ_k (cos_x cos_y - sin_x sin_y) with no trigonometry per pixel.
struct WaveTables {
  std::vector<double> cos_x, sin_x, cos_y, sin_y;  // (waves, box width) / (waves, box height)
};

void paint_shape(const Shape& s, int res, double* rgb /* (R, R, 3) */, WaveTables* tables) {
  const double r = res;
  const int x0 = std::max(0, static_cast<int>(std::floor((s.cx - s.reach) * r)) - 1);
  const int x1 = std::min(res - 1, static_cast<int>(std::ceil((s.cx + s.reach) * r)) + 1);
  const int y0 = std::max(0, static_cast<int>(std::floor((s.cy - s.reach) * r)) - 1);
  const int y1 = std::min(res - 1, static_cast<int>(std::ceil((s.cy + s.reach) * r)) + 1);
  if (x0 > x1 || y0 > y1) return;
  const int width = x1 - x0 + 1, height = y1 - y0 + 1;

  if (s.fill == FillKind::kTexture) {
    tables->cos_x.resize(static_cast<size_t>(s.wave_count) * width);
    tables->sin_x.resize(static_cast<size_t>(s.wave_count) * width);
    tables->cos_y.resize(static_cast<size_t>(s.wave_count) * height);
    tables->sin_y.resize(static_cast<size_t>(s.wave_count) * height);
    for (int k = 0; k < s.wave_count; ++k) {
      const Wave& w = s.waves[k];
      // Pixel-area average: the same wave scaled by sinc along each axis; the 0.5 maps the
      // wave sum onto t = 0.5 + 0.5 * sum.
      const double gain = 0.5 * w.amplitude * sinc(w.fx / r) * sinc(w.fy / r);
      for (int i = 0; i < width; ++i) {
        const double arg = kTwoPi * w.fx * centre(x0 + i, r) + w.phase;
        tables->cos_x[k * width + i] = std::cos(arg);
        tables->sin_x[k * width + i] = std::sin(arg);
      }
      for (int j = 0; j < height; ++j) {
        const double arg = kTwoPi * w.fy * centre(y0 + j, r);
        tables->cos_y[k * height + j] = gain * std::cos(arg);
        tables->sin_y[k * height + j] = gain * std::sin(arg);
      }
    }
  }

  for (int y = y0; y <= y1; ++y) {
    const double v = centre(y, r) - s.cy;
    for (int x = x0; x <= x1; ++x) {
      const double u = centre(x, r) - s.cx;
      const double cover = coverage(s, u, v, r);
      if (cover <= 0.0) continue;
      double t = 0.0;
      if (s.fill == FillKind::kGradient) {
        t = 0.5 + s.gx * u + s.gy * v;
      } else if (s.fill == FillKind::kTexture) {
        t = 0.5;
        const int i = x - x0, j = y - y0;
        for (int k = 0; k < s.wave_count; ++k)
          t += tables->cos_x[k * width + i] * tables->cos_y[k * height + j] -
               tables->sin_x[k * width + i] * tables->sin_y[k * height + j];
      }
      t = std::min(1.0, std::max(0.0, t));
      const double alpha = cover * s.opacity;
      double* px = rgb + (static_cast<size_t>(y) * res + x) * 3;
      for (int c = 0; c < 3; ++c) {
        const double fill = s.color[c] + t * (s.color2[c] - s.color[c]);
        px[c] += alpha * (fill - px[c]);
      }
    }
  }
}

uint8_t to_byte(double value) {
  const double scaled = std::floor(value * 255.0 + 0.5);
  return static_cast<uint8_t>(std::min(255.0, std::max(0.0, scaled)));
}

}  // namespace

void render_synthetic_image(uint64_t seed, int64_t index, int resolution, int channels,
                            uint8_t* out /* (R, R, C) */) {
  LADDER_CHECK(resolution > 0, "synthetic image ", index, ": resolution must be positive, got ",
               resolution);
  LADDER_CHECK(channels > 0, "synthetic image ", index, ": channels must be positive, got ",
               channels);
  LADDER_CHECK(out != nullptr, "synthetic image ", index, ": no output buffer");

  Rng rng(seed, static_cast<uint64_t>(index));
  const Scene scene = random_scene(rng);

  const size_t pixels = static_cast<size_t>(resolution) * resolution;
  std::vector<double> rgb(pixels * 3);  // (R, R, 3), linear values in [0, 1]
  paint_background(scene, resolution, rgb.data());
  WaveTables tables;
  for (const Shape& shape : scene.shapes) paint_shape(shape, resolution, rgb.data(), &tables);

  for (size_t p = 0; p < pixels; ++p) {
    const double* px = &rgb[p * 3];
    const uint8_t luma = to_byte(0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2]);
    uint8_t* o = out + p * channels;
    for (int c = 0; c < channels; ++c) o[c] = (channels >= 3 && c < 3) ? to_byte(px[c]) : luma;
  }
}

}  // namespace ladder::data

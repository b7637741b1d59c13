// Why this file exists: data.intensity's parsing and the transforms (data/intensity.h).
#include "data/intensity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/check.h"

namespace ladder::data {
namespace {

// "A,B" → (A, B); false when it is not two numbers.
bool parse_pair(const std::string& text, double& a, double& b) {
  const size_t comma = text.find(',');
  if (comma == std::string::npos) return false;
  const std::string first = text.substr(0, comma), second = text.substr(comma + 1);
  char* end = nullptr;
  a = std::strtod(first.c_str(), &end);
  if (first.empty() || *end != '\0' || !std::isfinite(a)) return false;
  b = std::strtod(second.c_str(), &end);
  return !second.empty() && *end == '\0' && std::isfinite(b);
}

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.10g", v);
  return text;
}

}  // namespace

IntensitySpec parse_intensity(const std::string& text) {
  IntensitySpec spec;
  const auto fail = [&](const std::string& why) {
    throw UsageError(detail::concat("config: data.intensity = '", text, "': ", why));
  };
  if (text == "auto") return spec;
  if (text == "minmax") {
    spec.kind = IntensitySpec::Kind::kMinMax;
    return spec;
  }
  if (text.rfind("window:", 0) == 0) {
    spec.kind = IntensitySpec::Kind::kWindow;
    if (!parse_pair(text.substr(7), spec.low, spec.high)) fail("expected window:LOW,HIGH (two numbers)");
    if (!(spec.low < spec.high)) fail("the window's LOW must be below its HIGH");
    return spec;
  }
  if (text.rfind("percentile:", 0) == 0) {
    spec.kind = IntensitySpec::Kind::kPercentile;
    if (!parse_pair(text.substr(11), spec.low, spec.high)) fail("expected percentile:P_LOW,P_HIGH (two numbers)");
    if (!(spec.low >= 0 && spec.low < spec.high && spec.high <= 100)) fail("expected 0 <= P_LOW < P_HIGH <= 100");
    return spec;
  }
  fail("expected auto, minmax, window:LOW,HIGH or percentile:P_LOW,P_HIGH");
  return spec;
}

std::string intensity_text(const IntensitySpec& spec) {
  switch (spec.kind) {
    case IntensitySpec::Kind::kAuto: return "auto";
    case IntensitySpec::Kind::kMinMax: return "minmax";
    case IntensitySpec::Kind::kWindow: return "window:" + number(spec.low) + "," + number(spec.high);
    case IntensitySpec::Kind::kPercentile: return "percentile:" + number(spec.low) + "," + number(spec.high);
  }
  return "?";
}

IntensityTransform::IntensityTransform(IntensitySpec spec, PixelType type,
                                       std::optional<std::pair<double, double>> stated)
    : spec_(spec), type_(type), source_(intensity_text(spec)) {
  if (spec.kind != IntensitySpec::Kind::kAuto) return;
  if (type == PixelType::kUint8 && !stated) {
    photo_ = true;
    return;
  }
  if (stated) {
    spec_ = {IntensitySpec::Kind::kWindow, stated->first, stated->second};
    source_ = "auto: the store's stated range";
  } else if (type == PixelType::kUint16) {
    spec_ = {IntensitySpec::Kind::kWindow, 0, 65535};
    source_ = "auto: the uint16 range";
  } else {
    spec_ = {IntensitySpec::Kind::kMinMax, 0, 0};
    source_ = "auto: float values";
  }
}

std::string IntensityTransform::description() const {
  std::string what;
  if (photo_) {
    what = "x / 127.5 - 1";
  } else if (spec_.kind == IntensitySpec::Kind::kWindow) {
    what = "window " + number(spec_.low) + ".." + number(spec_.high) + " to [-1, 1], clipped";
  } else if (spec_.kind == IntensitySpec::Kind::kMinMax) {
    what = "each image's min..max to [-1, 1]";
  } else {
    what = "each image's percentiles " + number(spec_.low) + ".." + number(spec_.high) + " to [-1, 1], clipped";
  }
  return std::string(pixel_type_name(type_)) + " values: " + what + " (data.intensity = " + source_ + ")";
}

void IntensityTransform::window(const uint8_t* raw, int64_t count, float low, float high, float* out) const {
  if (!(low < high)) {  // ScaleIntensityRange with a_min = a_max: x − a_min + b_min, unclipped
    for (int64_t i = 0; i < count; ++i) out[i] = pixel_value(type_, raw, i) - low + -1.0f;
    return;
  }
  const float range = high - low;
  for (int64_t i = 0; i < count; ++i) {
    const float scaled = (pixel_value(type_, raw, i) - low) / range * 2.0f + -1.0f;
    out[i] = std::min(1.0f, std::max(-1.0f, scaled));
  }
}

void IntensityTransform::apply(const uint8_t* raw, int64_t count, float* out) const {
  if (photo_) {
    for (int64_t i = 0; i < count; ++i) out[i] = float(raw[i]) * (2.0f / 255.0f) - 1.0f;
    return;
  }
  if (spec_.kind == IntensitySpec::Kind::kWindow) {
    window(raw, count, static_cast<float>(spec_.low), static_cast<float>(spec_.high), out);
    return;
  }
  const double p = spec_.kind == IntensitySpec::Kind::kMinMax ? 0 : spec_.low;
  const double q = spec_.kind == IntensitySpec::Kind::kMinMax ? 100 : spec_.high;
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[i] = pixel_value(type_, raw, i);
  const float low = percentile(values.data(), count, p);
  const float high = percentile(values.data(), count, q);
  window(raw, count, low, high, out);
}

uint8_t unit_to_byte(float value) {
  if (std::isnan(value)) return 0;
  const double scaled = std::round((static_cast<double>(value) + 1.0) * 127.5);
  return static_cast<uint8_t>(std::min(255.0, std::max(0.0, scaled)));
}

float percentile(float* values, int64_t count, double p) {
  LADDER_CHECK(count > 0, "percentile of no values");
  const double position = p / 100.0 * static_cast<double>(count - 1);
  const int64_t below = static_cast<int64_t>(std::floor(position));
  std::nth_element(values, values + below, values + count);
  const double lower = values[below];
  if (below + 1 >= count) return static_cast<float>(lower);
  const double upper = *std::min_element(values + below + 1, values + count);
  return static_cast<float>(lower + (upper - lower) * (position - static_cast<double>(below)));
}

}  // namespace ladder::data

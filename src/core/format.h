// Why this file exists: number formatting shared by logs and reports (one human_bytes, not
// one per caller).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace ladder {

// 1536 → "1.50 KiB"; below 1 KiB plain bytes.
inline std::string human_bytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[48];
  if (unit == 0)
    std::snprintf(text, sizeof text, "%lld B", static_cast<long long>(bytes));
  else
    std::snprintf(text, sizeof text, "%.2f %s", value, units[unit]);
  return text;
}

}  // namespace ladder

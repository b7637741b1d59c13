// Why this file exists: a checkpoint manifest carries an XXH3-64 of its own canonical JSON
// (io/checkpoint_manifest.h), so a fuzzer's mutations of it would almost all stop at that one
// check. The manifest and checkpoint targets re-stamp the checksum as the format defines it
// (XXH3-64, 16 hex digits, of the compact sorted dump without "checksum") to reach the field
// checks behind it.
#pragma once

#include <xxhash.h>

#include <cinttypes>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace ladder::fuzz {

// `text` with its "checksum" made right, or "" when it is not a JSON object.
inline std::string restamp_manifest(const std::string& text) {
  using nlohmann::json;
  json object = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return "";
  object.erase("checksum");
  const std::string canonical = object.dump(-1, ' ', false, json::error_handler_t::replace);
  char sum[17];
  std::snprintf(sum, sizeof sum, "%016" PRIx64, XXH3_64bits(canonical.data(), canonical.size()));
  object["checksum"] = sum;
  return object.dump(1, ' ', false, json::error_handler_t::replace);
}

}  // namespace ladder::fuzz

// Why this file exists: fuzzes the checkpoint manifest parser (io/checkpoint_manifest.cpp,
// nlohmann-json plus ladder's field checks). The manifest checksums itself, so almost every
// mutation would stop at that check; after parsing the input as it is, the target therefore
// re-stamps a JSON object's "checksum" the way the format defines it (XXH3-64 of the
// canonical dump without "checksum") and parses again, which reaches every field check.
// A manifest that parses must serialise and parse back to the same content.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "core/check.h"
#include "io/checkpoint_manifest.h"
#include "manifest_stamp.h"

namespace {

const char* kPath = "step-00000001/manifest.json";

void parse(const std::string& text) {
  using namespace ladder;
  io::Manifest manifest;
  try {
    manifest = io::parse_manifest(text, kPath);
  } catch (const Error&) {
    return;  // the documented outcome of a bad manifest
  }
  const std::string written = io::manifest_to_json(manifest);
  if (io::manifest_to_json(io::parse_manifest(written, kPath)) != written) {
    std::fprintf(stderr, "fuzz_checkpoint_manifest: a parsed manifest does not round-trip\n");
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  parse(text);
  const std::string fixed = ladder::fuzz::restamp_manifest(text);
  if (!fixed.empty()) parse(fixed);
  return 0;
}

// Why this file exists: the main() of a fuzz target in the ordinary (gcc, non-libFuzzer)
// build. It feeds LLVMFuzzerTestOneInput every file named on the command line, or found
// (sorted) in a directory named there: the seed corpus and the regression-* inputs of past
// crashes. A crash, a sanitizer report, an uncaught exception or one C++ allocation over
// 2 GiB (libFuzzer's default -malloc_limit_mb: what a header's claim made ladder allocate)
// ends the process abnormally and fails the CTest test; success prints how many inputs ran.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <new>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMallocLimit = size_t{2} << 30;

void* limited_allocation(size_t size) {
  if (size > kMallocLimit) {
    std::fprintf(stderr, "replay: an allocation of %zu bytes, over the limit of %zu\n", size, kMallocLimit);
    std::abort();
  }
  if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
  throw std::bad_alloc();
}

}  // namespace

// The replaceable global allocation functions (the default operator delete frees malloc's).
void* operator new(size_t size) { return limited_allocation(size); }
void* operator new[](size_t size) { return limited_allocation(size); }
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete[](void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, size_t) noexcept { std::free(memory); }
void operator delete[](void* memory, size_t) noexcept { std::free(memory); }

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    if (fs::is_directory(argv[i])) {
      for (const fs::directory_entry& entry : fs::directory_iterator(argv[i]))
        if (entry.is_regular_file()) inputs.push_back(entry.path());
    } else if (fs::is_regular_file(argv[i])) {
      inputs.push_back(argv[i]);
    } else {
      std::fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs (usage: %s CORPUS_DIR|FILE...)\n", argv[0]);
    return 2;
  }
  for (const fs::path& input : inputs) {
    std::ifstream in(input, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", input.filename().c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("replay: %zu inputs, no crash\n", inputs.size());
  return 0;
}

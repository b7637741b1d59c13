// Why this file exists: the core containers: bf16 rounding, tensors in f32 and bf16 storage,
// host-memory accounting, the flat parameter buffer and its deterministic initialisation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "core/context.h"
#include "core/params.h"
#include "core/tensor.h"

namespace ladder {
namespace {

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(static_cast<float>(bf16(1.0f)), 1.0f);
  EXPECT_EQ(static_cast<float>(bf16(-2.5f)), -2.5f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1).
  EXPECT_EQ(static_cast<float>(bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  // 1 + 3·2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to even → 1 + 2^-6.
  EXPECT_EQ(static_cast<float>(bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(static_cast<float>(bf16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(static_cast<float>(bf16(std::numeric_limits<float>::infinity()))));
  float x = 3.14159f;
  EXPECT_NEAR(static_cast<float>(bf16(x)), x, x * std::ldexp(1.0f, -8));
}

TEST(Tensor, StorageIsZeroedAlignedAndCounted) {
  MemoryCounter& memory = ProcessContext::get().host_memory();
  const int64_t before = memory.current();
  {
    Tensor<bf16> half({2, 3, 4, 5});
    TensorF full({2, 3, 4, 5});
    EXPECT_EQ(memory.current() - before, 120 * 2 + 120 * 4);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(full.data()) % 64, 0u);
    for (int64_t i = 0; i < full.numel(); ++i) ASSERT_EQ(full[i], 0.0f);
    full.at(1, 2, 3, 4) = 7.0f;
    EXPECT_EQ(full[full.numel() - 1], 7.0f);
    EXPECT_THROW(full.reshape({1, 1, 1, 7}), Error);
    EXPECT_GE(memory.peak(), memory.current());
  }
  EXPECT_EQ(memory.current(), before);
}

TEST(ParamStore, TablePaddingAndDeterministicInit) {
  auto build = [](ParamStore& store) {
    store.add("a.weight", {4, 3, 3, 2}, ParamInit::kFanInUniform, 18, true);
    store.add("a.bias", {4}, ParamInit::kFanInUniform, 18, false);
    store.add("n.weight", {5}, ParamInit::kOnes, 1, false);
  };
  ParamStore store;
  build(store);
  store.allocate(/*padded_count=*/88);
  EXPECT_EQ(store.count(), 72 + 4 + 5);
  EXPECT_EQ(store.padded_count(), 88);
  EXPECT_EQ(store.entries()[1].offset, 72);
  store.initialize(42);
  const float bound = 1.0f / std::sqrt(18.0f);
  for (int i = 0; i < 76; ++i) EXPECT_LE(std::abs(store.values()[i]), bound);
  for (int i = 76; i < 81; ++i) EXPECT_EQ(store.values()[i], 1.0f);
  for (int i = 81; i < 88; ++i) EXPECT_EQ(store.values()[i], 0.0f);  // padding
  ParamStore again;
  build(again);
  again.allocate();
  again.initialize(42);
  EXPECT_EQ(0, std::memcmp(store.values(), again.values(), sizeof(float) * 81));
  again.initialize(43);
  EXPECT_NE(0, std::memcmp(store.values(), again.values(), sizeof(float) * 72));
  EXPECT_THROW(store.add("late", {1}, ParamInit::kZeros, 1, false), Error);
}

}  // namespace
}  // namespace ladder

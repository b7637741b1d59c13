// Why this file exists: the optimizer groups of a flat buffer (train/optimizer_groups.h): the
// rank's ranges cut at the boundary with their places in the concatenated gradients, each
// group stepping as its own AdamW would, and the moments a checkpoint reads and writes
// through the groups landing in the right group.
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/check.h"
#include "core/params.h"
#include "core/rng.h"
#include "train/adamw.h"
#include "train/optimizer_groups.h"

namespace ladder {
namespace {

TEST(OptimizerGroups, SlicesCutTheRangesAtTheBoundary) {
  // Ranges as ZeRO gives a rank: one slice per bucket, ascending.
  const std::vector<Range> owned = {{0, 10}, {20, 35}, {40, 50}};
  const std::vector<GroupSlice> slices = slice_groups(owned, {30});
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_EQ(slices[0].ranges.size(), 2u);
  EXPECT_EQ(slices[0].ranges[1].begin, 20);
  EXPECT_EQ(slices[0].ranges[1].end, 30);
  EXPECT_EQ(slices[0].grad_offset, 0);
  EXPECT_EQ(slices[0].count, 20);
  ASSERT_EQ(slices[1].ranges.size(), 2u);
  EXPECT_EQ(slices[1].ranges[0].begin, 30);
  EXPECT_EQ(slices[1].ranges[0].end, 35);
  EXPECT_EQ(slices[1].grad_offset, 20);
  EXPECT_EQ(slices[1].count, 15);
  // A rank that owns nothing of the second group.
  const std::vector<GroupSlice> low = slice_groups({{0, 10}}, {30});
  EXPECT_TRUE(low[1].ranges.empty());
  EXPECT_EQ(low[1].grad_offset, 10);
  EXPECT_EQ(low[1].count, 0);
  // No boundary: one group, everything.
  EXPECT_EQ(slice_groups(owned, {}).at(0).count, 35);
  EXPECT_THROW(slice_groups({{20, 30}, {0, 10}}, {}), Error);
}

struct Fixture {
  Fixture() {
    store.add("a.weight", {4, 6}, ParamInit::kFanInUniform, 6, true);
    store.add("b.bias", {6}, ParamInit::kZeros, 6, false);
    store.add("discriminator.c.weight", {5, 4}, ParamInit::kFanInUniform, 4, true);
    store.allocate();
    store.initialize(1);
    Rng rng(2, 0);
    for (int64_t i = 0; i < store.count(); ++i) grads.push_back(static_cast<float>(rng.normal()));
  }
  ParamStore store;
  std::vector<float> grads;  // (count): the concatenated gradients of owned = everything
};

TEST(OptimizerGroups, EachGroupStepsAsItsOwnAdamW) {
  Fixture f;
  const int64_t boundary = 30, count = f.store.count();
  const std::vector<Range> owned = {{0, count}};
  AdamWSettings model, critic;
  model.weight_decay = 0.1;
  critic.beta1 = 0.5;
  std::vector<std::unique_ptr<Optimizer>> optimizers;
  optimizers.push_back(std::make_unique<AdamW>(f.store, std::vector<Range>{{0, boundary}}, model));
  optimizers.push_back(std::make_unique<AdamW>(f.store, std::vector<Range>{{boundary, count}}, critic));
  OptimizerGroups groups(owned, {boundary}, std::move(optimizers));
  // The same values, stepped by two independent AdamWs.
  std::vector<float> values(f.store.values(), f.store.values() + count);
  AdamW alone_model(f.store, {{0, boundary}}, model), alone_critic(f.store, {{boundary, count}}, critic);
  for (int step = 0; step < 3; ++step) {
    groups.group(0).step(f.store.values(), f.grads.data() + groups.slice(0).grad_offset, 1e-2);
    if (step > 0) groups.group(1).step(f.store.values(), f.grads.data() + groups.slice(1).grad_offset, 5e-2);
    alone_model.step(values.data(), f.grads.data(), 1e-2);
    if (step > 0) alone_critic.step(values.data(), f.grads.data() + boundary, 5e-2);
  }
  for (int64_t i = 0; i < count; ++i) ASSERT_EQ(f.store.values()[i], values[static_cast<size_t>(i)]) << i;
  EXPECT_EQ(groups.steps(), 3);
  EXPECT_EQ(groups.group(1).steps(), 2);

  // Moments through the groups: a range across the boundary reads each side from its group.
  std::vector<float> m(20), v(20), m_model(10), v_model(10), m_critic(10), v_critic(10);
  groups.download_moments({{20, 40}}, m.data(), v.data());
  alone_model.download_moments({{20, 30}}, m_model.data(), v_model.data());
  alone_critic.download_moments({{30, 40}}, m_critic.data(), v_critic.data());
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(m[i], m_model[i]);
    EXPECT_EQ(v[i + 10], v_critic[i]);
  }
  std::vector<float> zeros(20, 0.f);
  groups.upload_moments({{20, 40}}, zeros.data(), zeros.data());
  groups.download_moments({{20, 40}}, m.data(), v.data());
  for (float x : m) EXPECT_EQ(x, 0.f);
}

}  // namespace
}  // namespace ladder

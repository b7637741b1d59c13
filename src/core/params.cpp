// Why this file exists: registration, allocation and initialisation of the flat buffer.
#include "core/params.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/rng.h"

namespace ladder {

float* ParamView::value() const { return store_->values() + store_->entry(index_).offset; }
float* ParamView::grad() const {
  float* grads = store_->grads();
  return grads != nullptr ? grads + store_->entry(index_).offset : nullptr;  // null: a frozen store
}
const ParamEntry& ParamView::entry() const { return store_->entry(index_); }

ParamView ParamStore::add(std::string name, std::vector<int64_t> shape, ParamInit init,
                          int64_t fan_in, bool decay) {
  LADDER_CHECK(values_.size() == 0, "parameter '", name, "' added after allocation");
  ParamEntry entry;
  entry.name = std::move(name);
  entry.numel = 1;
  for (int64_t extent : shape) entry.numel *= extent;
  entry.shape = std::move(shape);
  entry.offset = count_;
  entry.init = init;
  entry.fan_in = fan_in;
  entry.decay = decay;
  count_ += entry.numel;
  entries_.push_back(std::move(entry));
  return ParamView(this, static_cast<int>(entries_.size()) - 1);
}

void ParamStore::allocate(int64_t padded_count) {
  LADDER_CHECK(padded_count == 0 || padded_count >= count_, "padded count ", padded_count,
               " below the ", count_, " parameters");
  int64_t padded = std::max(padded_count, count_);
  values_ = HostBuffer<float>(padded);
  grads_ = HostBuffer<float>(padded);
}

void ParamStore::allocate_frozen() {
  values_ = HostBuffer<float>(count_);
  grads_ = HostBuffer<float>();
}

void ParamStore::initialize(uint64_t seed) {
  for (size_t index = 0; index < entries_.size(); ++index) {
    const ParamEntry& entry = entries_[index];
    float* out = values_.data() + entry.offset;
    switch (entry.init) {
      case ParamInit::kOnes:
        for (int64_t i = 0; i < entry.numel; ++i) out[i] = 1.0f;
        break;
      case ParamInit::kZeros:
        for (int64_t i = 0; i < entry.numel; ++i) out[i] = 0.0f;
        break;
      case ParamInit::kNormalSmall:
      case ParamInit::kOnePlusNormalSmall: {
        Rng rng(seed, 0x9a7a0000ull + index);
        const double mean = entry.init == ParamInit::kOnePlusNormalSmall ? 1.0 : 0.0;
        for (int64_t i = 0; i < entry.numel; ++i)
          out[i] = static_cast<float>(mean + kNormalInitStd * rng.normal());
        break;
      }
      case ParamInit::kFanInUniform: {
        Rng rng(seed, 0x9a7a0000ull + index);
        double bound = 1.0 / std::sqrt(static_cast<double>(entry.fan_in));
        for (int64_t i = 0; i < entry.numel; ++i)
          out[i] = static_cast<float>(rng.uniform(-bound, bound));
        break;
      }
    }
  }
}

void ParamStore::zero_grads() {
  if (grads_.size() > 0) std::memset(grads_.data(), 0, grads_.bytes());
}

}  // namespace ladder

#include "train/sampler.h"

#include <algorithm>

#include "common/error.h"

namespace anomalyncd::train {

BalancedSampler::BalancedSampler(size_t numLabelled, size_t numUnlabelled, uint64_t seed)
    : numLabelled_(numLabelled), numUnlabelled_(numUnlabelled), rng_(seed) {
  if (numLabelled + numUnlabelled == 0)
    throw Error(code::kInvalidArgument, "sampler: no training samples (labelled and unlabelled sets are empty)");
}

uint64_t BalancedSampler::uniformInt(uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  for (;;) {
    const uint64_t x = rng_();
    if (x >= threshold) return x % n;
  }
}

std::vector<size_t> BalancedSampler::epoch() {
  const size_t total = numLabelled_ + numUnlabelled_;
  std::vector<size_t> draws(total);
  for (size_t i = 0; i < total; ++i) {
    bool labelled;
    if (numLabelled_ == 0) labelled = false;
    else if (numUnlabelled_ == 0) labelled = true;
    else labelled = (rng_() >> 63) == 0;  // total weight N_l vs N_u * (N_l / N_u) = N_l
    draws[i] = labelled ? static_cast<size_t>(uniformInt(numLabelled_))
                        : numLabelled_ + static_cast<size_t>(uniformInt(numUnlabelled_));
  }
  return draws;
}

std::vector<std::vector<size_t>> makeBatches(const std::vector<size_t>& draws, size_t batchSize,
                                             size_t numLabelled) {
  if (batchSize == 0) throw Error(code::kInvalidArgument, "makeBatches: batch size must be positive");
  std::vector<std::vector<size_t>> batches;
  for (size_t start = 0; start < draws.size(); start += batchSize) {
    const size_t end = std::min(draws.size(), start + batchSize);
    size_t labelled = 0;
    for (size_t i = start; i < end; ++i) labelled += draws[i] < numLabelled ? 1 : 0;
    const size_t unlabelled = (end - start) - labelled;
    const bool keep = numLabelled == 0 ? unlabelled >= 1 : (labelled >= 1 && unlabelled >= 1);
    if (keep) batches.emplace_back(draws.begin() + start, draws.begin() + end);
  }
  return batches;
}

}  // namespace anomalyncd::train

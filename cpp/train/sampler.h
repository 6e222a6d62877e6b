// METHOD.md §5.2 / T24: balanced sampling with replacement and the batch-skip rule, pure C++17.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace anomalyncd::train {

// torch WeightedRandomSampler(weights, N_l + N_u, replacement=True) with weight 1 per
// labelled and N_l / N_u per unlabelled sample: every draw is independently labelled with
// probability 1/2 and then uniform within its group. With N_l == 0 every draw is a uniform
// unlabelled index; with N_u == 0 every draw is a uniform labelled index (such an epoch
// has no usable batch). Distributionally equivalent to the reference, not stream-equal.
// Random source: std::mt19937_64 with our own unbiased integer mapping (same indices for
// a seed on every standard library).
class BalancedSampler {
 public:
  // Throws Error(kInvalidArgument) when numLabelled + numUnlabelled == 0.
  BalancedSampler(size_t numLabelled, size_t numUnlabelled, uint64_t seed);
  // N_l + N_u indices: [0, N_l) labelled, [N_l, N_l + N_u) unlabelled.
  std::vector<size_t> epoch();

  size_t numLabelled() const { return numLabelled_; }
  size_t numUnlabelled() const { return numUnlabelled_; }

 private:
  uint64_t uniformInt(uint64_t n);  // [0, n), unbiased

  size_t numLabelled_, numUnlabelled_;
  std::mt19937_64 rng_;
};

// Splits an epoch's draws into consecutive batches of batchSize (the last, partial batch
// kept: ceil(N / batchSize) candidates) and drops those the reference skips (T24): a batch
// needs at least one labelled (< numLabelled) AND one unlabelled index; when
// numLabelled == 0 (the "w/o D^l" setting) it needs only one unlabelled index.
// Throws Error(kInvalidArgument) when batchSize == 0.
std::vector<std::vector<size_t>> makeBatches(const std::vector<size_t>& draws, size_t batchSize,
                                             size_t numLabelled);

}  // namespace anomalyncd::train

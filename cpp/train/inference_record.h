// What a trained model needs, beside its weights, to treat new images as its training
// images were treated, and to flag images of no known type (issue 11): recorded in the
// bundle as metadata `anomalyncd.inference` (bundle.h). Bundles without it (older ones)
// load with no record: maps go through MEBin, and novelty has no calibrated threshold.
#pragma once
#include <string>
#include <type_traits>
#include <vector>

namespace anomalyncd::train {

struct InferenceRecord {
  // How maps became binary maps (pipeline::RegionsOptions): masks as maps at this level.
  bool masksAsMaps = false;
  int maskLevel = 128;
  // Novelty (open-set) calibration. `noveltyScore` names the per-crop score; an image's
  // novelty is its crops' scores merged with the region weights at `tauAlpha`;
  // `unknown` = novelty > noveltyThreshold. The threshold is the conformal
  // (1 - falseAlarmRate) quantile of the novelty of `calibrationImages` images held out
  // from the fit; calibrationImages == 0: not calibrated (the threshold means nothing).
  std::string noveltyScore;
  double noveltyThreshold = 0;
  double falseAlarmRate = 0.05;
  int calibrationImages = 0;
  double tauAlpha = 50;
  // Score "prototype": the cluster prototypes in the backbone's [CLS] feature space: the
  // mean of the fit crops' features (`featureMean`, D values) and, per non-empty cluster,
  // the normalised mean of its crops' centred, normalised features (`prototypes`, P x D
  // row-major). Empty when not recorded.
  std::vector<double> featureMean;
  std::vector<double> prototypes;
  // Score "descriptor" (region descriptors, ts/analysis/descriptors.ts): the z-score
  // statistics of the fit crops' descriptors (`descriptorMean`, `descriptorScale`, Q values
  // each) and the fit crops' standardised descriptors (`descriptorBank`, N x Q row-major),
  // whose nearest neighbours score a new crop. Empty when not recorded (and in bundles
  // written before these fields existed, which load with them empty).
  std::vector<double> descriptorMean;
  std::vector<double> descriptorScale;
  std::vector<double> descriptorBank;
};

template <class R, class V>
std::enable_if_t<std::is_same_v<std::remove_const_t<R>, InferenceRecord>> visitFields(R& r, V&& v) {
  v("masksAsMaps", r.masksAsMaps);
  v("maskLevel", r.maskLevel);
  v("noveltyScore", r.noveltyScore);
  v("noveltyThreshold", r.noveltyThreshold);
  v("falseAlarmRate", r.falseAlarmRate);
  v("calibrationImages", r.calibrationImages);
  v("tauAlpha", r.tauAlpha);
  v("featureMean", r.featureMean);
  v("prototypes", r.prototypes);
  v("descriptorMean", r.descriptorMean);
  v("descriptorScale", r.descriptorScale);
  v("descriptorBank", r.descriptorBank);
}

}  // namespace anomalyncd::train

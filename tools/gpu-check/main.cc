// Standalone GPU check and bench (issue 8, item 7): no Node, no N-API, no OpenCV.
// Built and run by scripts/gpu-check.sh against the machine's torch (Python torch's CMake
// config); also builds against Debian's libtorch 1.13 CPU, where every GPU part says
// "skipped: CUDA unavailable" and the CPU parts still run.
//
//   gpu-check DATA_DIR OUT_MD
// DATA_DIR/maps/*.npy: uint8 MTD-derived anomaly maps (scripts/gpu-data.sh), one batch per
// class (file name prefix up to the second '_').
//
// Checks (exit status 1 when one fails): MEBin GPU == CPU single pass (identical results) on
// the MTD-derived maps and on random maps; the [CLS]-row kernel (1e-5) and maskedAttention
// on CUDA (1e-4) against the CPU path; an MGViT forward with random weights (ViT-B/8
// geometry, 1e-4, TF32 off); one training step (ViT-S/16 geometry: losses within 1e-4
// relative, updated weights within 1e-4 absolute). Timings: CUDA events after warm-up (MEBin:
// wall clock around the synchronous batched call, transfers included).
#include <ATen/ATen.h>
#include <torch/cuda.h>
#include <torch/optim/sgd.h>
#include <torch/version.h>

#if defined(ANOMALYNCD_TORCH_CUDA)
#include <ATen/autocast_mode.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gpu/attention.h"
#include "gpu/gpu.h"
#if defined(ANOMALYNCD_CUDA_KERNELS)
#include "gpu/cuda_backend.h"
#endif
#include "mebin/mebin.h"
#include "model/heads.h"
#include "model/vit.h"
#include "train/losses.h"

using namespace anomalyncd;
namespace fs = std::filesystem;

namespace {

int failures = 0;
std::ostringstream md;  // the Markdown section
double mebinKernelMsPerMap256 = 0, mebinWholeMsPerMap256 = 0;  // for the per-image figure

void line(const std::string& s) {
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
  md << s << "\n";
}

void checkRow(const std::string& what, bool ok, const std::string& detail) {
  if (!ok) ++failures;
  line("| " + what + " | " + (ok ? "pass" : "**FAIL**") + " | " + detail + " |");
}

std::string fmt(double v, int prec = 3) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*g", prec, v);
  return b;
}

bool haveCuda() {
#if defined(ANOMALYNCD_TORCH_CUDA)
  return torch::cuda::is_available() && gpu::deviceCount() > 0;
#else
  return false;
#endif
}

// ---- .npy (uint8, 2-D, C order) ---------------------------------------------------
struct Map {
  int h = 0, w = 0;
  std::vector<uint8_t> data;
  mebin::MapView view() const { return {data.data(), h, w}; }
};

bool readNpy(const fs::path& p, Map& m) {
  std::ifstream f(p, std::ios::binary);
  char magic[8];
  if (!f.read(magic, 8) || std::string(magic, 6) != "\x93NUMPY") return false;
  uint16_t len = 0;
  unsigned char l[2];
  f.read(reinterpret_cast<char*>(l), 2);
  len = uint16_t(l[0] | (l[1] << 8));
  std::string header(len, ' ');
  f.read(header.data(), len);
  if (header.find("'|u1'") == std::string::npos || header.find("False") == std::string::npos) return false;
  const size_t a = header.find('('), b = header.find(')');
  if (sscanf(header.substr(a + 1, b - a - 1).c_str(), "%d, %d", &m.h, &m.w) != 2) return false;
  m.data.resize(size_t(m.h) * m.w);
  return bool(f.read(reinterpret_cast<char*>(m.data.data()), std::streamsize(m.data.size())));
}

Map blobMap(int h, int w, std::mt19937& rng) {
  Map m{h, w, std::vector<uint8_t>(size_t(h) * w)};
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> acc(m.data.size(), 0.0);
  const int n = 1 + int(u(rng) * 6);
  for (int b = 0; b < n; ++b) {
    const double cy = u(rng) * h, cx = u(rng) * w, s = 2 + u(rng) * h / 16.0, peak = 60 + u(rng) * 200;
    const int r = int(4 * s);
    for (int y = std::max(0, int(cy) - r); y < std::min(h, int(cy) + r); ++y)
      for (int x = std::max(0, int(cx) - r); x < std::min(w, int(cx) + r); ++x)
        acc[size_t(y) * w + x] += peak * std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * s * s));
  }
  for (size_t k = 0; k < acc.size(); ++k)
    m.data[k] = uint8_t(std::min(255.0, 20 + 15 * u(rng) + acc[k]));
  return m;
}

bool same(const mebin::Result& a, const mebin::Result& b) {
  return a.threshold == b.threshold && a.count == b.count && a.sequence == b.sequence &&
         a.binary == b.binary && a.foreground == b.foreground;
}

// ---- MEBin --------------------------------------------------------------------------
int compareMebin(const std::vector<Map>& maps, const mebin::Range& range, const mebin::Options& o) {
  std::vector<mebin::MapView> views;
  for (const Map& m : maps) views.push_back(m.view());
  const std::vector<mebin::Result> got = gpu::binarizeBatch(views, range, o, 0);
  int bad = 0;
  for (size_t i = 0; i < maps.size(); ++i) bad += !same(got[i], mebin::binarize(views[i], range, o));
  return bad;
}

void mebinSection(const fs::path& data) {
  std::map<std::string, std::vector<Map>> classes;
  size_t total = 0;
  if (fs::is_directory(data / "maps"))
    for (const auto& e : fs::directory_iterator(data / "maps")) {
      const std::string name = e.path().filename().string();
      const size_t cut = name.find('_', name.find('_') + 1);
      Map m;
      if (cut == std::string::npos || !readNpy(e.path(), m)) continue;
      classes[name.substr(0, cut)].push_back(std::move(m));
      ++total;
    }
  line("| MTD-derived maps found | " + std::string(total >= 500 ? "pass" : "**FAIL**") + " | " +
       std::to_string(total) + " maps in " + std::to_string(classes.size()) + " classes |");
  if (total < 500) ++failures;
  {  // the kernels' logic on the host (cpp/gpu/emulate.h), wherever this runs
    int bad = 0;
    for (auto& [cls, maps] : classes) {
      std::vector<mebin::MapView> views;
      for (const Map& m : maps) views.push_back(m.view());
      const mebin::Range range = mebin::searchRange(views);
      const std::vector<mebin::Result> got = gpu::binarizeBatchEmulated(views, range, {}, 1);
      for (size_t i = 0; i < maps.size(); ++i) bad += !same(got[i], mebin::binarize(views[i], range, {}));
    }
    checkRow("MEBin emulated kernels == CPU, MTD-derived", bad == 0,
             std::to_string(total) + " maps, " + std::to_string(bad) + " mismatches");
  }
  if (!haveCuda()) {
    line("| MEBin GPU vs CPU | skipped | CUDA unavailable |");
    return;
  }
  int bad = 0;
  for (auto& [cls, maps] : classes) {
    std::vector<mebin::MapView> views;
    for (const Map& m : maps) views.push_back(m.view());
    const mebin::Range range = mebin::searchRange(views);
    mebin::Options o;
    bad += compareMebin(maps, range, o);
    o.erode = false;
    bad += compareMebin(maps, range, o);
  }
  checkRow("MEBin GPU == CPU, MTD-derived (erode on/off)", bad == 0,
           std::to_string(2 * total) + " maps, " + std::to_string(bad) + " mismatches");
  std::mt19937 rng(99);
  int randomBad = 0, randomMaps = 0;
  for (int b = 0; b < 40; ++b) {
    std::vector<Map> maps;
    const int n = 1 + int(rng() % 64);
    for (int k = 0; k < n; ++k) maps.push_back(blobMap(1 + int(rng() % 300), 1 + int(rng() % 300), rng));
    std::vector<mebin::MapView> views;
    for (const Map& m : maps) views.push_back(m.view());
    mebin::Options o;
    o.sampleRate = int(1 + rng() % 8);
    o.minIntervalLen = int(1 + rng() % 5);
    o.erode = rng() % 4 != 0;
    const mebin::Range range = rng() % 3 ? mebin::searchRange(views) : mebin::Range{int(rng() % 100), 255};
    randomBad += compareMebin(maps, range, o);
    randomMaps += n;
  }
  checkRow("MEBin GPU == CPU, random maps", randomBad == 0,
           std::to_string(randomMaps) + " maps, " + std::to_string(randomBad) + " mismatches");

  // timings: the sweep kernel alone on maps already on the device (CUDA events), and
  // whole binarizeBatch calls (packing, copies both ways, unpacking into Results)
  for (int size : {256, 1024}) {
    const int distinct = size == 256 ? 128 : 32, batch = size == 256 ? 1024 : 128;
    std::vector<Map> maps;
    for (int k = 0; k < distinct; ++k) maps.push_back(blobMap(size, size, rng));
    std::vector<mebin::MapView> views;
    for (int k = 0; k < batch; ++k) views.push_back(maps[k % distinct].view());
    const mebin::Range range = mebin::searchRange(views);
    const mebin::Options o;
#if defined(ANOMALYNCD_CUDA_KERNELS)
    const gpu::cuda::SweepTiming device = gpu::cuda::timeSweep(views, range, o, 0, 20);
    const double deviceMedian = device.medianMs, deviceBest = device.bestMs;
#else
    const double deviceMedian = 0, deviceBest = 0;  // not reached: no device without the kernels
#endif
    {  // warm-up (grows the workspace), and a check of the chunked, double-buffered path
      const std::vector<mebin::Result> got = gpu::binarizeBatch(views, range, o, 0);
      int bad = 0;
      for (int k = 0; k < batch; ++k) bad += !same(got[k], mebin::binarize(views[k], range, o));
      checkRow("MEBin GPU == CPU, " + std::to_string(batch) + " maps of " + std::to_string(size) +
                   "² (several chunks)", bad == 0, std::to_string(bad) + " mismatches");
    }
    std::vector<double> walls;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      gpu::binarizeBatch(views, range, o, 0);
      walls.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(walls.begin(), walls.end());
    mebin::prepareWorkspace(size, size);
    std::vector<double> cpuMs;
    for (int k = 0; k < distinct; ++k) {  // per map, a fresh Result each (binarizeBatch's contract)
      const auto t0 = std::chrono::steady_clock::now();
      const mebin::Result r = mebin::binarize(views[k], range, o);
      cpuMs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(cpuMs.begin(), cpuMs.end());
    const double cpu = cpuMs[cpuMs.size() / 2];
    const double kernel = deviceMedian / batch, whole = walls[walls.size() / 2] / batch;
    if (size == 256) mebinKernelMsPerMap256 = kernel, mebinWholeMsPerMap256 = whole;
    line("| MEBin " + std::to_string(size) + "² sweep kernel, maps on the device (" + std::to_string(batch) +
         " maps) | time | GPU " + fmt(kernel) + " ms/map (median of 20 launches, CUDA events; best " +
         fmt(deviceBest / batch) + "); CPU single pass (1 thread, median map) " + fmt(cpu) +
         " ms/map; ratio " + fmt(cpu / kernel) + "× |");
    line("| MEBin " + std::to_string(size) + "² binarizeBatch, host in and out (" + std::to_string(batch) +
         " maps) | time | GPU " + fmt(whole) + " ms/map (median of 5 calls: packing, pinned copies both ways, "
         "unpacking into Results); ratio " + fmt(cpu / whole) + "× |");
  }
}

// ---- attention, forward, training step ------------------------------------------------
double maxAbs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kCPU, at::kFloat) - b.to(at::kCPU, at::kFloat)).abs().max().item<double>();
}

#if defined(ANOMALYNCD_TORCH_CUDA)
void setAutocast(bool on) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_enabled(at::kCUDA, on);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
  at::autocast::set_enabled(on);
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
  if (!on) at::autocast::clear_cache();
}

struct Events {
  cudaEvent_t a, b;
  Events() { cudaEventCreate(&a), cudaEventCreate(&b); }
  ~Events() { cudaEventDestroy(a), cudaEventDestroy(b); }
  void start() { cudaEventRecord(a, c10::cuda::getCurrentCUDAStream()); }
  double stopMs() {
    cudaEventRecord(b, c10::cuda::getCurrentCUDAStream());
    cudaEventSynchronize(b);
    float ms = 0;
    cudaEventElapsedTime(&ms, a, b);
    return ms;
  }
};
#endif

model::VitConfig vitB8() {
  model::VitConfig c;
  c.patchSize = 8, c.embedDim = 768, c.depth = 12, c.numHeads = 12, c.maskLayers = 9;
  c.imageSize = 224;
  return c;
}
model::VitConfig vitS16() {
  model::VitConfig c;  // defaults: ViT-S/16
  return c;
}

at::Tensor randomMask(int64_t B, int64_t S) {
  // a square defect region per image, like a crop's mask
  at::Tensor m = at::zeros({B, 1, S, S});
  for (int64_t b = 0; b < B; ++b) {
    const int64_t a = 16 + (b * 37) % (S / 2), w = 24 + (b * 53) % (S / 3);
    m[b].narrow(1, a, std::min(w, S - a)).narrow(2, a / 2, std::min(w, S - a / 2)).fill_(1.0);
  }
  return m;
}

void modelSection() {
  if (!haveCuda()) {
    line("| attention, MGViT forward, training step | skipped | CUDA unavailable (libtorch " +
         std::string(TORCH_VERSION) + (torch::cuda::is_available() ? ", no kernels" : ", no CUDA") + ") |");
    // CPU part still runs: the ViT forward used as the reference below
    torch::NoGradGuard ng;
    model::MaskGuidedViT vit(vitS16());
    const at::Tensor f = vit.forward(at::randn({2, 3, 224, 224}), randomMask(2, 224));
    checkRow("MGViT forward on CPU (ViT-S/16, random weights)", f.size(1) == 384 && f.isfinite().all().item<bool>(),
             "[CLS] " + std::to_string(f.size(0)) + "x" + std::to_string(f.size(1)));
    return;
  }
#if defined(ANOMALYNCD_TORCH_CUDA)
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  const at::Device cuda(at::kCUDA, 0);
  torch::manual_seed(5);
  // 1. attention op
  {
    torch::NoGradGuard ng;
    const int64_t B = 8, H = 12, N = 785, hd = 64;
    at::Tensor qkv = at::randn({B, N, 3, H, hd}).permute({2, 0, 3, 1, 4});
    const at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
    const at::Tensor blocked = at::rand({B, N}).lt(0.6);
    const double scale = 0.125;
    const at::Tensor ref = model::maskedAttention(q, k, v, scale, blocked, model::AttentionImpl::Plain);
    const at::Tensor row = gpu::attention::maskedClsRowCuda(q.to(cuda), k.to(cuda), v.to(cuda), scale, blocked.to(cuda));
    const double e0 = maxAbs(row.view({B, H * hd}), ref.select(1, 0).reshape({B, H * hd}));
    checkRow("[CLS]-row kernel vs CPU (fp32, ViT-B/8 shape)", e0 <= 1e-5, "max abs " + fmt(e0));
    const at::Tensor all = model::maskedAttention(q.to(cuda), k.to(cuda), v.to(cuda), scale, blocked.to(cuda),
                                                  model::AttentionImpl::Fused);
    const double e1 = maxAbs(all, ref);
    checkRow("maskedAttention CUDA (kernel + SDPA) vs CPU, fp32", e1 <= 1e-4, "max abs " + fmt(e1));
    const at::Tensor bf = gpu::attention::maskedClsRowCuda(q.to(cuda, at::kBFloat16), k.to(cuda, at::kBFloat16),
                                                           v.to(cuda, at::kBFloat16), scale, blocked.to(cuda));
    const double e2 = maxAbs(bf.view({B, H * hd}), ref.select(1, 0).reshape({B, H * hd}));
    checkRow("[CLS]-row kernel, bf16 inputs vs CPU fp32", e2 <= 2e-2, "max abs " + fmt(e2));
  }
  // 2. whole forward, ViT-B/8 geometry, random weights
  model::MaskGuidedViT vitCpu(vitB8());
  {
    torch::NoGradGuard ng;
    const at::Tensor x = at::randn({4, 3, 224, 224}), m = randomMask(4, 224);
    const at::Tensor ref = vitCpu.forward(x, m);
    model::MaskGuidedViT vitGpu(vitB8());
    for (size_t i = 0; i < vitGpu.parameters().size(); ++i) vitGpu.parameters()[i].copy_(vitCpu.parameters()[i]);
    vitGpu.to(cuda);
    const at::Tensor got = vitGpu.forward(x.to(cuda), m.to(cuda));
    const double e = maxAbs(got, ref);
    checkRow("MGViT forward GPU vs CPU (ViT-B/8, batch 4, fp32, TF32 off)", e <= 1e-4, "max abs " + fmt(e));
    setAutocast(true);
    const at::Tensor gotBf = vitGpu.forward(x.to(cuda), m.to(cuda));
    setAutocast(false);
    const double eb = maxAbs(gotBf, ref);
    line("| MGViT forward GPU bf16 autocast vs CPU fp32 | info | max abs " + fmt(eb) + " |");

    // throughput at batch 64
    const at::Tensor xb = at::randn({64, 3, 224, 224}, at::TensorOptions().device(cuda));
    const at::Tensor mb = randomMask(64, 224).to(cuda);
    for (bool bf16 : {false, true}) {
      setAutocast(bf16);
      for (int w = 0; w < 3; ++w) vitGpu.forward(xb, mb);
      Events ev;
      ev.start();
      const int reps = 10;
      for (int r = 0; r < reps; ++r) vitGpu.forward(xb, mb);
      const double ms = ev.stopMs() / reps;
      setAutocast(false);
      line(std::string("| ViT-B/8 mask-guided forward, batch 64, ") + (bf16 ? "bf16 autocast" : "fp32 (TF32 off)") +
           " | time | " + fmt(ms) + " ms/batch = " + fmt(64e3 / ms, 4) + " images/s |");
      if (bf16 && mebinKernelMsPerMap256 > 0)
        line("| MEBin (256² map) + mask-guided forward (ViT-B/8 bf16, batch 64), per image | time | " +
             fmt(mebinKernelMsPerMap256 + ms / 64) + " ms with the map on the device; " +
             fmt(mebinWholeMsPerMap256 + ms / 64) + " ms with the map from host memory (target ≤ 2 ms) |");
    }
  }
  // 3. one training step: ViT-S/16 geometry, last block + heads trainable, SGD
  {
    const model::VitConfig cfg = vitS16();
    model::HeadsConfig hc;
    hc.inDim = cfg.embedDim, hc.numClasses = 5, hc.nHead = 2;
    auto build = [&](model::MaskGuidedViT& vit, model::MultiHead& heads) {
      model::setTrainableFromBlock(vit, cfg.depth - 1);
      (void)heads;
    };
    torch::manual_seed(11);
    model::MaskGuidedViT vitA(cfg);
    model::MultiHead headsA(hc);
    model::MaskGuidedViT vitB(cfg);
    model::MultiHead headsB(hc);
    {
      torch::NoGradGuard ng;
      for (size_t i = 0; i < vitB.parameters().size(); ++i) vitB.parameters()[i].copy_(vitA.parameters()[i]);
      for (size_t i = 0; i < headsB.parameters().size(); ++i) headsB.parameters()[i].copy_(headsA.parameters()[i]);
    }
    build(vitA, headsA);
    build(vitB, headsB);
    vitB.to(cuda);
    headsB.to(cuda);
    const int64_t Bs = 8;
    const at::Tensor x = at::randn({2 * Bs, 3, 224, 224}), m = randomMask(2 * Bs, 224);
    const at::Tensor labels = at::tensor(std::vector<int64_t>{0, 1, 2, -1, -1, 0, -1, 1});
    train::LossConfig lc;
    lc.numKnown = 3;
    auto step = [&](model::MaskGuidedViT& vit, model::MultiHead& heads, const at::Device& dev) {
      std::vector<at::Tensor> params;
      for (auto& p : vit.parameters()) if (p.requires_grad()) params.push_back(p);
      for (auto& p : heads.parameters()) if (p.requires_grad()) params.push_back(p);
      torch::optim::SGD opt(params, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-5));
      opt.zero_grad();
      const at::Tensor f = vit.forward(x.to(dev), m.to(dev));
      const model::HeadsOutput out = heads.forward(f);
      const train::BatchLosses l = train::batchLosses(out.z, out.logits, labels.to(dev), at::Tensor(), lc);
      l.total.backward();
      opt.step();
      return l.total.item<double>();
    };
    const double lossCpu = step(vitA, headsA, at::Device(at::kCPU));
    const double lossGpu = step(vitB, headsB, cuda);
    const double rel = std::abs(lossGpu - lossCpu) / std::max(1e-12, std::abs(lossCpu));
    checkRow("training step: total loss GPU vs CPU (ViT-S/16, 2x8 views)", rel <= 1e-4,
             "CPU " + fmt(lossCpu, 8) + ", GPU " + fmt(lossGpu, 8) + ", rel " + fmt(rel));
    double worst = 0;
    for (size_t i = 0; i < vitA.parameters().size(); ++i) worst = std::max(worst, maxAbs(vitA.parameters()[i], vitB.parameters()[i]));
    for (size_t i = 0; i < headsA.parameters().size(); ++i) worst = std::max(worst, maxAbs(headsA.parameters()[i], headsB.parameters()[i]));
    checkRow("training step: updated weights GPU vs CPU (SGD lr 0.1, momentum 0.9)", worst <= 1e-4, "max abs " + fmt(worst));
  }
  // 4. one training epoch, ViT-B/8 geometry, random weights, synthetic crops on the device
  {
    const model::VitConfig cfg = vitB8();
    model::HeadsConfig hc;
    hc.inDim = cfg.embedDim, hc.numClasses = 10;
    model::MaskGuidedViT vit(cfg);
    model::MultiHead heads(hc);
    model::setTrainableFromBlock(vit, cfg.depth - 1);
    vit.to(cuda);
    heads.to(cuda);
    std::vector<at::Tensor> params;
    for (auto& p : vit.parameters()) if (p.requires_grad()) params.push_back(p);
    for (auto& p : heads.parameters()) if (p.requires_grad()) params.push_back(p);
    torch::optim::SGD opt(params, torch::optim::SGDOptions(0.1).momentum(0.9).weight_decay(5e-5));
    const int64_t crops = 610, batch = 32, steps = (crops + batch - 1) / batch;
    const at::Tensor x = at::randn({2 * batch, 3, 224, 224}, at::TensorOptions().device(cuda));
    const at::Tensor m = randomMask(2 * batch, 224).to(cuda);
    at::Tensor labels = at::full({batch}, -1, at::kLong);
    for (int i = 0; i < batch / 2; ++i) labels[i] = i % 5;
    labels = labels.to(cuda);
    train::LossConfig lc;
    lc.numKnown = 5;
    for (bool bf16 : {false, true}) {
      auto one = [&] {
        opt.zero_grad();
        setAutocast(bf16);
        const at::Tensor f = vit.forward(x, m);
        const model::HeadsOutput out = heads.forward(f);
        setAutocast(false);
        const train::BatchLosses l = train::batchLosses(out.z.to(at::kFloat), out.logits.to(at::kFloat), labels, at::Tensor(), lc);
        l.total.backward();
        opt.step();
      };
      for (int w = 0; w < 2; ++w) one();
      Events ev;
      ev.start();
      for (int64_t s = 0; s < steps; ++s) one();
      const double ms = ev.stopMs();
      line(std::string("| training epoch, ViT-B/8, 610 crops, batch 32 (2 views), ") + (bf16 ? "bf16 autocast" : "fp32") +
           " | time | " + fmt(ms / 1000) + " s/epoch (" + std::to_string(steps) + " steps) → 50 epochs ≈ " +
           fmt(50 * ms / 60000) + " min (model on the device only: synthetic crops, no augmentation/transfer) |");
    }
  }
#endif
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: gpu-check DATA_DIR OUT_MD\n");
    return 2;
  }
  line("## GPU check (scripts/gpu-check.sh)");
  line("");
  std::string device = "none (CUDA unavailable)";
  if (haveCuda()) device = gpu::deviceName(0);
  line("Device: " + device + "; libtorch " + std::string(TORCH_VERSION) + "; kernels " +
       (gpu::cudaBuilt() ? "built" : "not built") + ".");
  line("");
  line("| check / figure | result | detail |");
  line("|---|---|---|");
  try {
    mebinSection(argv[1]);
    modelSection();
  } catch (const std::exception& e) {
    ++failures;
    line(std::string("| exception | **FAIL** | ") + e.what() + " |");
  }
  line("");
  line(failures ? "**" + std::to_string(failures) + " check(s) failed.**" : "All checks passed.");
  std::ofstream(argv[2]) << md.str();
  return failures ? 1 : 0;
}

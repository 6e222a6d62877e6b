// Standalone self-test for cpp/model (no N-API, no test framework).
//
// Goldens: regenerate with `/usr/bin/python3 test/fixtures/make_vit_goldens.py`
// (Debian python3-torch 1.13 + numpy + Pillow), written to test/fixtures/vit/.
//
/* Build (from the repository root; outputs stay in /tmp; ~2 min at -j1):

   O=/tmp/model_selftest; mkdir -p $O
   FLAGS="-std=c++17 -O2 -Wall -Wextra -D_GLIBCXX_USE_CXX11_ABI=1 -Icpp \
          -isystem /usr/include/torch/csrc/api/include"
   for f in vit heads checkpoint preprocess model_selftest; do
     g++ $FLAGS -c cpp/model/$f.cc -o $O/$f.o || break; done
   g++ -std=c++17 -O2 -Icpp -c cpp/imgproc/pillow_resample.cc -o $O/pillow_resample.o
   g++ $O/vit.o $O/heads.o $O/checkpoint.o $O/preprocess.o $O/model_selftest.o \
       $O/pillow_resample.o -o $O/model_selftest -ltorch -ltorch_cpu -lc10

   (CMake equivalent: find_package(Torch) with Torch_DIR=/usr/lib/x86_64-linux-gnu/cmake/Torch,
   link ${TORCH_LIBRARIES}, compile with ${TORCH_CXX_FLAGS} = -D_GLIBCXX_USE_CXX11_ABI=1.) */
// Run:   /tmp/model_selftest/model_selftest [fixtures dir, default test/fixtures/vit]
//        /tmp/model_selftest/model_selftest --bench [reps] [threads]   (ViT-S/16, batch 8, 224;
//        default 5 reps, 2 threads)
// Exit status 0 iff every check passed.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "harness.h"
#include "model/checkpoint.h"
#include "model/heads.h"
#include "model/preprocess.h"
#include "model/vit.h"

using namespace anomalyncd;
using namespace anomalyncd::model;

namespace {

int& gFailures = selftest::failures;
int& gChecks = selftest::checks;
using selftest::check;

// Expects fn() to throw anomalyncd::Error with `code` and a message containing every needle.
void expectError(const std::string& what, const char* code, std::vector<std::string> needles,
                 const std::function<void()>& fn) {
  ++gChecks;
  try {
    fn();
  } catch (const Error& e) {
    std::string msg = e.what();
    bool ok = e.code() == code;
    for (auto& n : needles) ok = ok && msg.find(n) != std::string::npos;
    if (!ok) {
      ++gFailures;
      std::cout << "FAIL: " << what << ": got [" << e.code() << "] " << msg << std::endl;
    } else {
      std::cout << "  ok  " << what << ": " << msg.substr(0, 160) << std::endl;
    }
    return;
  } catch (const std::exception& e) {
    ++gFailures;
    std::cout << "FAIL: " << what << ": foreign exception " << e.what() << std::endl;
    return;
  }
  ++gFailures;
  std::cout << "FAIL: " << what << ": no exception" << std::endl;
}

std::string readFile(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot read " + p);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void writeFile(const std::string& p, const std::string& data) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

// Minimal .npy reader (v1/v2, little-endian f4 / f8 / u1, C order).
at::Tensor loadNpy(const std::string& path) {
  std::string d = readFile(path);
  if (d.size() < 10 || d.compare(0, 6, "\x93NUMPY") != 0) throw std::runtime_error("not npy: " + path);
  const int major = static_cast<unsigned char>(d[6]);
  size_t hl, off;
  if (major == 1) {
    hl = static_cast<unsigned char>(d[8]) | (static_cast<unsigned char>(d[9]) << 8);
    off = 10;
  } else {
    hl = 0;
    for (int i = 0; i < 4; ++i) hl |= static_cast<size_t>(static_cast<unsigned char>(d[8 + i])) << (8 * i);
    off = 12;
  }
  std::string h = d.substr(off, hl);
  auto field = [&](const std::string& key) {
    size_t p = h.find("'" + key + "'");
    if (p == std::string::npos) throw std::runtime_error("npy header lacks " + key);
    return h.substr(h.find(':', p) + 1);
  };
  std::string descr = field("descr");
  descr = descr.substr(descr.find('\'') + 1);
  descr = descr.substr(0, descr.find('\''));
  if (field("fortran_order").find("False") > 3) throw std::runtime_error("fortran npy");
  std::string sh = field("shape");
  sh = sh.substr(sh.find('(') + 1, sh.find(')') - sh.find('(') - 1);
  std::vector<int64_t> shape;
  std::stringstream ss(sh);
  std::string tok;
  while (std::getline(ss, tok, ','))
    if (tok.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(tok));
  at::ScalarType st;
  if (descr == "<f4") st = at::kFloat;
  else if (descr == "<f8") st = at::kDouble;
  else if (descr == "|u1") st = at::kByte;
  else throw std::runtime_error("npy dtype " + descr);
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(st));
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (off + hl + bytes > d.size()) throw std::runtime_error("short npy " + path);
  if (bytes) std::memcpy(t.data_ptr(), d.data() + off + hl, bytes);
  return t;
}

double maxAbs(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return INFINITY;
  if (a.numel() == 0) return 0;
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

VitConfig tinyArch() {
  VitConfig c;
  c.patchSize = 8;
  c.embedDim = 32;
  c.depth = 4;
  c.numHeads = 2;
  c.maskLayers = 3;
  c.imageSize = 32;
  return c;
}

std::shared_ptr<MaskGuidedViT> makeTiny(const StateDict& sd) {
  auto vit = std::make_shared<MaskGuidedViT>(inferConfig(sd, tinyArch()));
  loadInto(*vit, sd);
  vit->eval();
  return vit;
}

// ---------------------------------------------------------------------------
void testConfig() {
  std::cout << "[config]" << std::endl;
  auto b8 = presetConfig("dino_vitb8");
  check(b8.patchSize == 8 && b8.embedDim == 768 && b8.numHeads == 12 && b8.depth == 12 && b8.maskLayers == 9,
        "dino_vitb8 preset");
  auto s16 = presetConfig("dino_vits16");
  check(s16.patchSize == 16 && s16.embedDim == 384 && s16.numHeads == 6, "dino_vits16 preset");
  check(presetConfig("dino_vits8").patchSize == 8 && presetConfig("dino_vitb16").patchSize == 16, "patch sizes");
  expectError("unknown preset", code::kInvalidArgument, {"dino_vitb8", "vit_huge"},
              [] { presetConfig("vit_huge"); });
  VitConfig bad = tinyArch();
  bad.numHeads = 3;
  expectError("heads must divide dim", code::kInvalidArgument, {"numHeads"}, [&] { MaskGuidedViT m(bad); });
  // parameter names = DINO keys
  MaskGuidedViT m(presetConfig("dino_vitb8"));
  std::map<std::string, std::vector<int64_t>> shapes;
  for (auto& kv : m.named_parameters()) shapes[kv.key()] = kv.value().sizes().vec();
  check(shapes.size() == 4 + 12 * 12 + 2, "ViT-B/8 parameter count " + std::to_string(shapes.size()));
  check(shapes["cls_token"] == std::vector<int64_t>{1, 1, 768}, "cls_token shape");
  check(shapes["pos_embed"] == std::vector<int64_t>{1, 785, 768}, "pos_embed shape");
  check(shapes["patch_embed.proj.weight"] == std::vector<int64_t>{768, 3, 8, 8}, "patch_embed shape");
  check(shapes["blocks.11.attn.qkv.weight"] == std::vector<int64_t>{2304, 768}, "qkv shape");
  check(shapes["blocks.11.attn.qkv.bias"] == std::vector<int64_t>{2304}, "qkv bias shape");
  check(shapes["blocks.5.mlp.fc1.weight"] == std::vector<int64_t>{3072, 768}, "fc1 shape");
  check(shapes["blocks.0.norm2.bias"] == std::vector<int64_t>{768}, "norm2 shape");
  check(shapes["norm.weight"] == std::vector<int64_t>{768}, "norm shape");
}

void testGoldens(const std::string& dir) {
  std::cout << "[goldens]" << std::endl;
  StateDict pth = readStateDict(dir + "/tiny_vit.pth");
  StateDict st = readStateDict(dir + "/tiny_vit.safetensors");
  check(pth.size() == st.size() && pth.size() == 4 + 4 * 12 + 2, "key count " + std::to_string(pth.size()));
  bool same = true;
  for (auto& [k, t] : pth) same = same && st.count(k) && t.equal(st.at(k));
  check(same, ".pth and .safetensors tensors identical");
  VitConfig inferred = inferConfig(pth, tinyArch());
  check(inferred.imageSize == 32, "inferConfig imageSize 32 (got " + std::to_string(inferred.imageSize) + ")");

  auto vitP = makeTiny(pth);
  auto vitS = makeTiny(st);
  torch::NoGradGuard ng;
  std::ifstream cases(dir + "/cases.txt");
  std::string name;
  int B, H, W;
  double worst = 0, worstPF = 0;
  while (cases >> name >> B >> H >> W) {
    at::Tensor x = loadNpy(dir + "/case_" + name + "_x.npy");
    at::Tensor m = loadNpy(dir + "/case_" + name + "_mask.npy");
    at::Tensor want = loadNpy(dir + "/case_" + name + "_out.npy");
    vitP->setAttentionImpl(AttentionImpl::Plain);
    at::Tensor plain = vitP->forward(x, m);
    vitP->setAttentionImpl(AttentionImpl::Fused);
    at::Tensor fused = vitP->forward(x, m);
    vitS->setAttentionImpl(AttentionImpl::Fused);
    at::Tensor fromSt = vitS->forward(x, m);
    const double dP = maxAbs(plain, want), dF = maxAbs(fused, want), dPF = maxAbs(plain, fused);
    worst = std::max({worst, dP, dF});
    worstPF = std::max(worstPF, dPF);
    std::printf("  case %-11s B=%d %dx%d  |plain-golden| %.2e  |fused-golden| %.2e  |plain-fused| %.2e\n",
                name.c_str(), B, H, W, dP, dF, dPF);
    check(dP <= 1e-4, name + ": plain vs golden " + std::to_string(dP));
    check(dF <= 1e-4, name + ": fused vs golden " + std::to_string(dF));
    check(dPF <= 1e-5, name + ": plain vs fused " + std::to_string(dPF));
    check(fromSt.equal(fused), name + ": .pth and .safetensors models give identical outputs");
    // double precision run of the same model agrees too (dtype-agnostic code path)
    auto vit64 = makeTiny(pth);
    vit64->to(at::kDouble);
    at::Tensor d64 = vit64->forward(x.to(at::kDouble), m.to(at::kDouble));
    check(maxAbs(d64, want) <= 1e-5, name + ": float64 forward vs golden " + std::to_string(maxAbs(d64, want)));
  }
  std::printf("  worst |out-golden| %.3e, worst |plain-fused| %.3e\n", worst, worstPF);

  {  // InferenceMode (what the addon's workers use) gives the same result
    at::Tensor x0 = loadNpy(dir + "/case_rect_b3_x.npy"), m0 = loadNpy(dir + "/case_rect_b3_mask.npy");
    at::Tensor ref = vitP->forward(x0, m0);
    c10::InferenceMode im;
    for (auto impl : {AttentionImpl::Plain, AttentionImpl::Fused}) {
      vitP->setAttentionImpl(impl);
      check(vitP->forward(x0, m0).equal(ref), "InferenceMode forward identical");
    }
    vitP->setAttentionImpl(AttentionImpl::Fused);
  }
  check(presetConfig("dino_vitb8").attention == kDefaultAttentionImpl, "preset uses the default attention impl");
  expectError("directory as checkpoint", code::kIo, {"not a regular file"}, [] { readStateDict("/tmp"); });

  // no mask == all-ones mask; mask [B,H,W] accepted
  at::Tensor x = loadNpy(dir + "/case_sq_b3_x.npy");
  at::Tensor ones = at::ones({3, 1, 32, 32});
  check(vitP->forward(x).equal(vitP->forward(x, ones)), "no mask == all-ones mask");
  check(vitP->forward(x, ones.squeeze(1)).equal(vitP->forward(x, ones)), "mask [B,H,W] == [B,1,H,W]");
  expectError("mask of the wrong size", code::kInvalidArgument, {"mask must be"},
              [&] { vitP->forward(x, at::ones({3, 1, 16, 32})); });
  expectError("image with 1 channel", code::kInvalidArgument, {"[B,3,H,W]"},
              [&] { vitP->forward(at::ones({1, 1, 32, 32})); });
  expectError("image smaller than a patch", code::kInvalidArgument, {"smaller than one patch"},
              [&] { vitP->forward(at::ones({1, 3, 4, 32})); });

  // writeSafetensors round trip of a module snapshot
  writeSafetensors("/tmp/model_selftest_roundtrip.safetensors", stateDictOf(*vitP));
  StateDict back = readStateDict("/tmp/model_selftest_roundtrip.safetensors");
  bool rt = back.size() == pth.size();
  for (auto& [k, t] : pth) rt = rt && back.count(k) && back.at(k).equal(t);
  check(rt, "writeSafetensors -> readStateDict round trip");
}

void testMisc(const std::string& dir) {
  std::cout << "[decoding]" << std::endl;
  StateDict misc = readStateDict(dir + "/misc.pth");
  for (const char* k : {"transposed", "sliced", "whole", "half", "bf16", "double", "long", "scalar", "empty"}) {
    at::Tensor want = loadNpy(dir + "/misc_" + k + ".npy");
    check(misc.count(k) && misc.at(k).scalar_type() == at::kFloat && misc.at(k).is_contiguous() &&
              misc.at(k).sizes() == want.sizes() && misc.at(k).equal(want),
          std::string("misc.pth '") + k + "' decoded exactly");
  }
  StateDict ms = readStateDict(dir + "/misc.safetensors");
  for (const char* k : {"half", "bf16", "double", "whole", "scalar"}) {
    at::Tensor want = loadNpy(dir + "/misc_" + k + ".npy");
    check(ms.count(k) && ms.at(k).sizes() == want.sizes() && ms.at(k).equal(want),
          std::string("misc.safetensors '") + k + "' decoded exactly");
  }
}

void testErrors(const std::string& dir) {
  std::cout << "[error paths]" << std::endl;
  const std::string pth = readFile(dir + "/tiny_vit.pth");
  const std::string stf = readFile(dir + "/tiny_vit.safetensors");
  writeFile("/tmp/model_selftest_trunc.pth", pth.substr(0, pth.size() / 2));
  expectError("truncated .pth", code::kCheckpoint, {"model_selftest_trunc.pth"},
              [] { readStateDict("/tmp/model_selftest_trunc.pth"); });
  writeFile("/tmp/model_selftest_trunc2.pth", pth.substr(0, pth.size() - 30));
  expectError("truncated .pth (end of central directory)", code::kCheckpoint, {"model_selftest_trunc2.pth"},
              [] { readStateDict("/tmp/model_selftest_trunc2.pth"); });
  std::string wrong = pth;
  wrong[0] = 'X';
  wrong[1] = 'Y';
  writeFile("/tmp/model_selftest_magic.pth", wrong);
  expectError("wrong magic", code::kCheckpoint, {"model_selftest_magic.pth", "unrecognised format"},
              [] { readStateDict("/tmp/model_selftest_magic.pth"); });
  writeFile("/tmp/model_selftest_empty.pth", "");
  expectError("empty file", code::kCheckpoint, {"empty"}, [] { readStateDict("/tmp/model_selftest_empty.pth"); });
  expectError("missing file", code::kIo, {"/nonexistent/x.pth"}, [] { readStateDict("/nonexistent/x.pth"); });
  expectError("forbidden GLOBAL posix.system", code::kCheckpoint, {"bad_global.pth", "forbidden global", "system"},
              [&] { readStateDict(dir + "/bad_global.pth"); });
  expectError("unsupported opcode (BINFLOAT)", code::kCheckpoint, {"bad_opcode.pth", "unsupported pickle opcode 0x47"},
              [&] { readStateDict(dir + "/bad_opcode.pth"); });
  expectError("legacy format", code::kCheckpoint, {"legacy"}, [&] { readStateDict(dir + "/legacy.pth"); });

  writeFile("/tmp/model_selftest_trunc.safetensors", stf.substr(0, stf.size() - 100));
  expectError("truncated .safetensors", code::kCheckpoint, {"model_selftest_trunc.safetensors", "outside"},
              [] { readStateDict("/tmp/model_selftest_trunc.safetensors"); });
  writeFile("/tmp/model_selftest_short.safetensors", stf.substr(0, 5));
  expectError("5-byte .safetensors", code::kCheckpoint, {"truncated"},
              [] { readStateDict("/tmp/model_selftest_short.safetensors"); });
  std::string hugeHdr = stf;
  hugeHdr[6] = '\x7f';
  writeFile("/tmp/model_selftest_hdr.safetensors", hugeHdr);
  expectError("safetensors header length beyond file", code::kCheckpoint, {"exceeds the file size"},
              [] { readStateDict("/tmp/model_selftest_hdr.safetensors"); });
  {
    std::string h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000,1000000000],\"data_offsets\":[0,4]}}";
    std::string f(8, '\0');
    f[0] = static_cast<char>(h.size());
    writeFile("/tmp/model_selftest_shape.safetensors", f + h + "abcd");
    expectError("safetensors absurd shape", code::kCheckpoint, {"'a'"},
                [] { readStateDict("/tmp/model_selftest_shape.safetensors"); });
    h = "{\"a\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[0,4]}}";
    f[0] = static_cast<char>(h.size());
    writeFile("/tmp/model_selftest_dtype.safetensors", f + h + "abcd");
    expectError("safetensors unsupported dtype", code::kCheckpoint, {"unsupported dtype 'I8'"},
                [] { readStateDict("/tmp/model_selftest_dtype.safetensors"); });
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}";
    f[0] = static_cast<char>(h.size());
    writeFile("/tmp/model_selftest_span.safetensors", f + h + "abcd");
    expectError("safetensors span/shape mismatch", code::kCheckpoint, {"needs 8"},
                [] { readStateDict("/tmp/model_selftest_span.safetensors"); });
    h = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{}}";
    f[0] = static_cast<char>(h.size());
    writeFile("/tmp/model_selftest_dup.safetensors", f + h + "abcd");
    expectError("safetensors duplicate key", code::kCheckpoint, {"duplicate"},
                [] { readStateDict("/tmp/model_selftest_dup.safetensors"); });
  }

  StateDict sd = readStateDict(dir + "/tiny_vit.pth");
  {
    StateDict missing = sd;
    missing.erase("blocks.2.attn.proj.weight");
    MaskGuidedViT m(tinyArch());
    expectError("missing key", code::kCheckpoint, {"blocks.2.attn.proj.weight", "missing"},
                [&] { loadInto(m, missing); });
  }
  {
    StateDict wrongShape = sd;
    wrongShape["blocks.1.mlp.fc1.weight"] = at::zeros({64, 32});
    MaskGuidedViT m(tinyArch());
    expectError("wrong shape", code::kCheckpoint, {"blocks.1.mlp.fc1.weight", "[64, 32]", "[128, 32]"},
                [&] { loadInto(m, wrongShape); });
  }
  {
    StateDict extra = sd;
    extra["head.weight"] = at::zeros({3});
    MaskGuidedViT m(tinyArch());
    expectError("unexpected key (strict)", code::kCheckpoint, {"head.weight", "unexpected"},
                [&] { loadInto(m, extra); });
    bool ok = true;
    try {
      loadInto(m, extra, /*strict=*/false);
    } catch (...) {
      ok = false;
    }
    check(ok, "unexpected key ignored with strict = false");
  }
  {
    VitConfig arch = tinyArch();
    arch.embedDim = 64;
    arch.numHeads = 4;
    expectError("inferConfig embedDim mismatch", code::kCheckpoint, {"pos_embed", "embedDim 64"},
                [&] { inferConfig(sd, arch); });
    arch = tinyArch();
    arch.depth = 12;
    arch.maskLayers = 9;
    expectError("inferConfig depth mismatch", code::kCheckpoint, {"blocks", "depth 12"},
                [&] { inferConfig(sd, arch); });
    arch = tinyArch();
    arch.patchSize = 16;
    expectError("inferConfig patch mismatch", code::kCheckpoint, {"patch_embed.proj.weight"},
                [&] { inferConfig(sd, arch); });
    StateDict noPos = sd;
    noPos.erase("pos_embed");
    expectError("inferConfig without pos_embed", code::kCheckpoint, {"pos_embed"},
                [&] { inferConfig(noPos, tinyArch()); });
  }
}

// Re-zips data.pkl (mutated) with the original storages, so that the unpickler itself
// (not the zip CRC) sees the corruption.
void writeZip(const std::string& path, const std::string& pkl, const std::vector<std::pair<std::string, std::string>>& recs) {
  caffe2::serialize::PyTorchStreamWriter w(path);
  w.writeRecord("data.pkl", pkl.data(), pkl.size());
  for (auto& [n, d] : recs) w.writeRecord(n, d.data(), d.size());
  w.writeEndOfFile();
}

void testFuzz(const std::string& dir) {
  std::cout << "[fuzz]" << std::endl;
  caffe2::serialize::PyTorchStreamReader r(dir + "/tiny_vit.pth");
  auto [pp, ps] = r.getRecord("data.pkl");
  const std::string pkl(static_cast<const char*>(pp.get()), ps);
  std::vector<std::pair<std::string, std::string>> recs;
  for (auto& name : r.getAllRecords()) {
    if (name == "data.pkl" || name == "version" || name.rfind(".data/", 0) == 0) continue;
    auto [dp, ds] = r.getRecord(name);
    recs.emplace_back(name, std::string(static_cast<const char*>(dp.get()), ds));
  }
  // untouched re-zip loads
  writeZip("/tmp/model_selftest_rezip.pth", pkl, recs);
  check(readStateDict("/tmp/model_selftest_rezip.pth").size() == 54, "re-zipped checkpoint loads");

  std::mt19937 rng(42);
  int loaded = 0, rejected = 0, other = 0;
  const std::string fileBytes = readFile(dir + "/tiny_vit.pth");
  const std::string stBytes = readFile(dir + "/tiny_vit.safetensors");
  const int total = std::getenv("MODEL_SELFTEST_FUZZ") ? std::atoi(std::getenv("MODEL_SELFTEST_FUZZ")) : 600;
  for (int it = 0; it < total; ++it) {
    std::string path;
    const int phase = it % 600;
    if (phase < 300) {  // pickle mutations: flips, truncations, insertions
      std::string m = pkl;
      const int kind = it % 3;
      if (kind == 0) {
        for (int j = 0; j < 1 + static_cast<int>(rng() % 4); ++j) m[rng() % m.size()] = static_cast<char>(rng());
      } else if (kind == 1) {
        m.resize(rng() % m.size());
      } else {
        m.insert(rng() % m.size(), 1, static_cast<char>(rng()));
      }
      path = "/tmp/model_selftest_fuzz.pth";
      writeZip(path, m, recs);
    } else if (phase < 450) {  // raw file mutations of the zip
      std::string m = fileBytes;
      for (int j = 0; j < 1 + static_cast<int>(rng() % 8); ++j) m[rng() % m.size()] = static_cast<char>(rng());
      path = "/tmp/model_selftest_fuzz2.pth";
      writeFile(path, m);
    } else {  // safetensors header mutations
      std::string m = stBytes;
      const size_t hl = static_cast<unsigned char>(m[0]) | (static_cast<unsigned char>(m[1]) << 8);
      for (int j = 0; j < 1 + static_cast<int>(rng() % 3); ++j)
        m[8 + rng() % hl] = static_cast<char>(it % 2 ? rng() : "0123456789,:[]{}\""[rng() % 17]);
      path = "/tmp/model_selftest_fuzz.safetensors";
      writeFile(path, m);
    }
    try {
      StateDict s = readStateDict(path);
      ++loaded;
    } catch (const Error& e) {
      if (e.code() == code::kCheckpoint) ++rejected;
      else ++other;
    } catch (...) {
      ++other;
    }
  }
  std::printf("  %d mutated files: %d loaded, %d rejected with ERR_CHECKPOINT, %d other\n", total, loaded, rejected, other);
  check(other == 0, "mutated files only ever load or raise ERR_CHECKPOINT");

  // hand-made hostile pickles
  auto pick = [&](const std::string& body) {
    writeZip("/tmp/model_selftest_hostile.pth", body, recs);
    return std::function<void()>([] { readStateDict("/tmp/model_selftest_hostile.pth"); });
  };
  expectError("pickle: cyclic list", code::kCheckpoint, {"not a state dict"},
              pick(std::string("\x80\x02]q\x00h\x00\x61.", 9)));
  std::string deep = "\x80\x02)" + std::string(200000, '\x85') + ".";  // ((((),),),) 200k deep
  expectError("pickle: 200k-deep tuple", code::kCheckpoint, {"not a state dict"}, pick(deep));
  expectError("pickle: stack underflow", code::kCheckpoint, {"underflow"}, pick("\x80\x02R."));
  expectError("pickle: STACK_GLOBAL builtins.eval", code::kCheckpoint, {"forbidden global", "builtins.eval"},
              pick("\x80\x04\x8c\x08\x62uiltins\x8c\x04\x65val\x93."));
  auto U = [](const std::string& t) {  // BINUNICODE
    std::string o = "X";
    const uint32_t n = static_cast<uint32_t>(t.size());
    for (int i = 0; i < 4; ++i) o += static_cast<char>((n >> (8 * i)) & 0xff);
    return o + t;
  };
  auto K = [](int v) { return std::string("K") + static_cast<char>(v); };  // BININT1
  auto tensorPickle = [&](int claimedNumel, int offset, int size, int stride) {
    return std::string("\x80\x02}(") + U("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" + U("storage") +
           "ctorch\nFloatStorage\n" + U("0") + U("cpu") + K(claimedNumel) + "tQ" + K(offset) + K(size) +
           "\x85" + K(stride) + "\x85\x89NtRu.";
  };
  check(readStateDict((pick(tensorPickle(8, 2, 3, 2)), "/tmp/model_selftest_hostile.pth")).at("w").numel() == 3,
        "hand-made state dict pickle loads");
  expectError("pickle: storage view out of range", code::kCheckpoint, {"exceeds its storage"},
              pick(tensorPickle(4, 2, 5, 1)));
  expectError("pickle: storage larger than its record", code::kCheckpoint, {"expected"},
              pick(tensorPickle(200, 0, 5, 1)));
}

void testAutogradAndHeads(const std::string& dir) {
  std::cout << "[autograd / heads]" << std::endl;
  StateDict sd = readStateDict(dir + "/tiny_vit.pth");
  at::Tensor x = loadNpy(dir + "/case_rect_b3_x.npy");
  at::Tensor m = loadNpy(dir + "/case_rect_b3_mask.npy");
  std::map<std::string, at::Tensor> grads[2];
  for (int pass = 0; pass < 2; ++pass) {
    auto vit = makeTiny(sd);
    vit->train();
    setTrainableFromBlock(*vit, 3);
    vit->setAttentionImpl(pass == 0 ? AttentionImpl::Plain : AttentionImpl::Fused);
    at::Tensor out = vit->forward(x, m);
    out.pow(2).sum().backward();
    for (auto& kv : vit->named_parameters()) {
      const bool trainable = kv.key().rfind("blocks.3.", 0) == 0;
      check(kv.value().requires_grad() == trainable, "requires_grad of " + kv.key());
      check(kv.value().grad().defined() == trainable, "grad presence of " + kv.key());
      if (trainable) grads[pass][kv.key()] = kv.value().grad().clone();
    }
  }
  double gd = 0;
  for (auto& [k, g] : grads[0]) gd = std::max(gd, maxAbs(g, grads[1][k]));
  check(!grads[0].empty() && gd <= 1e-5, "block-3 grads equal for Plain and Fused requests (" + std::to_string(gd) + ")");
  expectError("gradFromBlock out of range", code::kInvalidArgument, {"gradFromBlock"}, [&] {
    MaskGuidedViT v(tinyArch());
    setTrainableFromBlock(v, 5);
  });

  HeadsConfig hc;
  hc.inDim = 32;
  hc.numClasses = 5;
  MultiHead heads(hc);
  std::set<std::string> names;
  for (auto& kv : heads.named_parameters()) names.insert(kv.key());
  check(names.count("projector.fc1.weight") && names.count("projector.fc3.bias") && names.count("heads.3.weight") &&
            names.size() == 6 + 4,
        "heads parameter names");
  check(heads.projector->fc2->bias.abs().max().item<double>() == 0, "projector biases zero");
  const double sd2 = heads.projector->fc2->weight.std().item<double>();
  check(std::fabs(sd2 - 0.02) < 0.002, "projector trunc-normal std 0.02 (" + std::to_string(sd2) + ")");
  at::Tensor f = at::randn({7, 32}) * 3;
  HeadsOutput ho = heads.forward(f);
  check(ho.z.sizes() == std::vector<int64_t>({7, 256}), "z shape");
  check(ho.logits.sizes() == std::vector<int64_t>({4, 7, 5}), "logits shape");
  at::Tensor v = heads.headList[2]->weight;
  at::Tensor manual = at::matmul(f / f.norm(2, {1}, true), (v / v.norm(2, {1}, true)).t());
  check(maxAbs(ho.logits[2], manual) < 1e-6, "cosine head = normalised f . normalised v");
  check(ho.logits.abs().max().item<double>() <= 1.0 + 1e-6, "cosines in [-1, 1]");
  check(maxAbs(heads.classify(f * 10), ho.logits) < 1e-6, "classifier invariant to feature scale");
  expectError("heads numClasses 0", code::kInvalidArgument, {"numClasses"}, [] {
    HeadsConfig c;
    MultiHead h(c);
  });
}

void testAttentionEquivalence() {
  std::cout << "[attention]" << std::endl;
  torch::NoGradGuard ng;
  for (auto st : {at::kFloat, at::kDouble}) {
    for (int N : {1, 2, 17, 197}) {
      const int B = 3, H = 4, hd = 16;
      at::Tensor qkv = at::randn({B, N, 3, H, hd}, at::TensorOptions().dtype(st)).permute({2, 0, 3, 1, 4});
      at::Tensor blocked = at::rand({B, N}).lt(0.6);
      blocked.select(1, 0).fill_(false);
      blocked[1].fill_(true);  // everything blocked except... even CLS (must still be finite)
      for (bool withMask : {false, true}) {
        at::Tensor bl = withMask ? blocked : at::Tensor();
        at::Tensor p = maskedAttention(qkv[0], qkv[1], qkv[2], 0.25, bl, AttentionImpl::Plain);
        at::Tensor fz = maskedAttention(qkv[0], qkv[1], qkv[2], 0.25, bl, AttentionImpl::Fused);
        check(p.sizes() == std::vector<int64_t>({B, N, H * hd}) && maxAbs(p, fz) <= 1e-5,
              "fused == plain, N=" + std::to_string(N) + " mask=" + std::to_string(withMask) + " " +
                  std::to_string(maxAbs(p, fz)));
        check(at::isfinite(fz).all().item<bool>(), "fused output finite");
      }
    }
  }
}

void testPreprocess(const std::string& dir) {
  std::cout << "[preprocess]" << std::endl;
  std::ifstream probe(dir + "/pre_rgb.npy");
  if (!probe) {
    std::cout << "  (no Pillow goldens; skipped)" << std::endl;
    return;
  }
  at::Tensor rgb = loadNpy(dir + "/pre_rgb.npy");
  at::Tensor mask = loadNpy(dir + "/pre_mask.npy");
  at::Tensor wantI = loadNpy(dir + "/pre_image_out.npy");
  at::Tensor wantM = loadNpy(dir + "/pre_mask_out.npy");
  at::Tensor img = at::empty({3, 224, 224}), msk = at::empty({224, 224});
  preprocess(rgb.data_ptr<uint8_t>(), mask.data_ptr<uint8_t>(), static_cast<int>(rgb.size(0)),
             static_cast<int>(rgb.size(1)), img.data_ptr<float>(), msk.data_ptr<float>());
  const double di = maxAbs(img, wantI), dm = maxAbs(msk, wantM);
  std::printf("  37x53 -> 256x366 -> crop: |image-PIL| %.2e  |mask-PIL| %.2e\n", di, dm);
  check(di == 0 && dm == 0, "preprocess bit-exact vs Pillow + torchvision");
  auto sz = shortSideResizeSize(37, 53);
  check(sz.first == 256 && sz.second == 366, "resize size 37x53 -> 256x366");
  sz = shortSideResizeSize(300, 256);
  check(sz.first == 300 && sz.second == 256, "short side already 256 -> no resize");
  sz = shortSideResizeSize(1000, 300);
  check(sz.first == 853 && sz.second == 256, "1000x300 -> 853x256 (truncation)");
  expectError("zero-size image", code::kInvalidArgument, {"positive"}, [&] {
    preprocess(rgb.data_ptr<uint8_t>(), nullptr, 0, 5, img.data_ptr<float>(), nullptr);
  });
}

// ---------------------------------------------------------------------------
double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Interleaved Plain/Fused timing (order alternates every repetition; min and median
// reported, the machine is shared).
double cpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int bench(int reps, int threads) {
  at::set_num_threads(threads);
  torch::NoGradGuard ng;
  VitConfig cfg = presetConfig("dino_vits16");
  MaskGuidedViT vit(cfg);
  vit.eval();
  at::manual_seed(0);
  at::Tensor x = at::randn({8, 3, 224, 224});
  at::Tensor m = (at::rand({8, 1, 224, 224}) < 0.7).to(at::kFloat);
  std::printf("bench: ViT-S/16, batch 8, 224x224, %d intra-op threads (OPENBLAS_NUM_THREADS=%s), %d reps\n",
              at::get_num_threads(), std::getenv("OPENBLAS_NUM_THREADS") ? std::getenv("OPENBLAS_NUM_THREADS") : "unset",
              reps);
  std::vector<double> t[2], cpu[2];
  at::Tensor out[2];
  for (int r = -1; r < reps; ++r) {
    for (int j = 0; j < 2; ++j) {
      const int impl = (r & 1) ? 1 - j : j;
      vit.setAttentionImpl(impl == 0 ? AttentionImpl::Plain : AttentionImpl::Fused);
      auto t0 = std::chrono::steady_clock::now();
      const double c0 = cpuNow();
      out[impl] = vit.forward(x, m);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r >= 0) {
        t[impl].push_back(s);
        cpu[impl].push_back(cpuNow() - c0);
      }
    }
  }
  std::printf("  full forward  plain: min %.3f s  median %.3f s | fused: min %.3f s  median %.3f s | |plain-fused| %.1e\n",
              *std::min_element(t[0].begin(), t[0].end()), median(t[0]),
              *std::min_element(t[1].begin(), t[1].end()), median(t[1]), maxAbs(out[0], out[1]));
  std::printf("  full forward CPU time  plain: min %.3f s  median %.3f s | fused: min %.3f s  median %.3f s\n",
              *std::min_element(cpu[0].begin(), cpu[0].end()), median(cpu[0]),
              *std::min_element(cpu[1].begin(), cpu[1].end()), median(cpu[1]));
  // attention core only (one block's q, k, v): ViT-S/16 and ViT-B/8 sizes at batch 8
  for (auto [H, N] : {std::pair<int, int>{6, 197}, std::pair<int, int>{12, 785}}) {
    const int B = 8, hd = 64;
    at::Tensor qkv = at::randn({B, N, 3, H, hd}).permute({2, 0, 3, 1, 4});
    at::Tensor blocked = at::rand({B, N}).lt(0.3);
    blocked.select(1, 0).fill_(false);
    std::vector<double> c[2], cc[2];
    const int coreReps = N > 500 ? std::max(2, reps / 2) : reps * 6;
    for (int r = -1; r < coreReps; ++r)
      for (int j = 0; j < 2; ++j) {
        const int impl = (r & 1) ? 1 - j : j;
        auto t0 = std::chrono::steady_clock::now();
        const double c0 = cpuNow();
        at::Tensor o = maskedAttention(qkv[0], qkv[1], qkv[2], 0.125, blocked,
                                       impl == 0 ? AttentionImpl::Plain : AttentionImpl::Fused);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r >= 0) {
          c[impl].push_back(s);
          cc[impl].push_back(cpuNow() - c0);
        }
      }
    std::printf("  attention core B%d H%d N%d hd%d  plain: min %.1f ms median %.1f ms | fused: min %.1f ms median %.1f ms\n",
                B, H, N, hd, *std::min_element(c[0].begin(), c[0].end()) * 1e3, median(c[0]) * 1e3,
                *std::min_element(c[1].begin(), c[1].end()) * 1e3, median(c[1]) * 1e3);
    std::printf("    (CPU time: plain median %.1f ms, fused median %.1f ms)\n", median(cc[0]) * 1e3, median(cc[1]) * 1e3);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--bench")
    return bench(argc >= 3 ? std::atoi(argv[2]) : 5, argc >= 4 ? std::atoi(argv[3]) : 2);
  const std::string dir = argc >= 2 ? argv[1] : "test/fixtures/vit";
  at::manual_seed(123);
  try {
    testConfig();
    testGoldens(dir);
    testMisc(dir);
    testErrors(dir);
    testFuzz(dir);
    testAutogradAndHeads(dir);
    testAttentionEquivalence();
    testPreprocess(dir);
  } catch (const Error& e) {
    std::cout << "FAIL: unexpected anomalyncd::Error [" << e.code() << "] " << e.what() << std::endl;
    ++gFailures;
  } catch (const std::exception& e) {
    std::cout << "FAIL: unexpected exception " << e.what() << std::endl;
    ++gFailures;
  }
  std::cout << std::flush;
  return selftest::summary();
}

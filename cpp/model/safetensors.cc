// safetensors (https://github.com/huggingface/safetensors): reading with every
// offset checked against the file, writing F32 with string metadata.
#include "model/safetensors.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <fstream>
#include <functional>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "common/limits.h"
#include "common/untrusted.h"
#include "model/checkpoint_detail.h"

namespace anomalyncd::model {

namespace detail {

StateDict readSafetensorsStream(const CheckpointError& err, std::ifstream& f, uint64_t fileSize,
                                std::map<std::string, std::string>* metadata) {
  if (fileSize < 8) err.fail("truncated safetensors file (shorter than the 8-byte header length)");
  unsigned char lenBytes[8];
  f.seekg(0);
  if (!f.read(reinterpret_cast<char*>(lenBytes), 8)) err.fail("cannot read the safetensors header length");
  uint64_t hlen = 0;
  for (int i = 0; i < 8; ++i) hlen |= static_cast<uint64_t>(lenBytes[i]) << (8 * i);
  if (hlen > fileSize - 8)
    err.fail("safetensors header length " + std::to_string(hlen) + " exceeds the file size " +
             std::to_string(fileSize) + " (truncated or corrupt file)");
  if (hlen > (100u << 20)) err.fail("safetensors header too large (" + std::to_string(hlen) + " bytes)");
  std::string header(hlen, '\0');
  if (hlen && !f.read(&header[0], static_cast<std::streamsize>(hlen))) err.fail("cannot read the safetensors header");
  Json root;
  try {
    root = parseJson(header, 32);
  } catch (const JsonError& e) {
    err.fail("safetensors header is not valid JSON: " + e.what);
  }
  if (root.type != Json::Obj) err.fail("safetensors header is not a JSON object");
  const uint64_t dataStart = 8 + hlen;
  const uint64_t dataSize = fileSize - dataStart;
  StateDict sd;
  for (auto& [name, v] : root.obj) {
    if (name == "__metadata__") {
      if (v.type != Json::Obj) err.fail("__metadata__ is not an object");
      if (metadata)
        for (auto& [k, mv] : v.obj)
          if (mv.type == Json::Str) (*metadata)[k] = mv.s;
      continue;
    }
    const std::string where = "tensor " + quoteUntrusted(name) + ": ";
    if (v.type != Json::Obj) err.fail(where + "entry is not an object");
    const Json* dt = v.get("dtype");
    const Json* shape = v.get("shape");
    const Json* offs = v.get("data_offsets");
    if (!dt || dt->type != Json::Str) err.fail(where + "missing dtype");
    if (!shape || shape->type != Json::Arr) err.fail(where + "missing shape");
    if (!offs || offs->type != Json::Arr || offs->arr.size() != 2) err.fail(where + "missing data_offsets");
    at::ScalarType st;
    if (dt->s == "F32") st = at::kFloat;
    else if (dt->s == "F16") st = at::kHalf;
    else if (dt->s == "BF16") st = at::kBFloat16;
    else if (dt->s == "F64") st = at::kDouble;
    else err.fail(where + "unsupported dtype " + quoteUntrusted(dt->s) + " (F32, F16, BF16, F64 are supported)");
    std::vector<int64_t> dims;
    for (auto& d : shape->arr) {
      if (d.type != Json::Num || !d.isInt || d.i < 0) err.fail(where + "bad shape");
      dims.push_back(d.i);
    }
    if (dims.size() > 32) err.fail(where + "too many dimensions");
    for (auto& o : offs->arr)
      if (o.type != Json::Num || !o.isInt || o.i < 0) err.fail(where + "bad data_offsets");
    const uint64_t b = static_cast<uint64_t>(offs->arr[0].i), e = static_cast<uint64_t>(offs->arr[1].i);
    const size_t es = c10::elementSize(st);
    int64_t numel = 0;
    if (!checkedNumel(dims, static_cast<int64_t>(dataSize / es) + 1, &numel))
      err.fail(where + "shape " + shapeStr(dims) + " does not fit in the file");
    checkTensorElements(numel, "checkpoint '" + err.path() + "': " + where + "shape " + shapeStr(dims));
    if (b > e || e > dataSize)
      err.fail(where + "data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
               "] outside the data section (" + std::to_string(dataSize) + " bytes; truncated file?)");
    if (e - b != static_cast<uint64_t>(numel) * es)
      err.fail(where + "data_offsets span " + std::to_string(e - b) + " bytes but shape " +
               shapeStr(dims) + " of " + dt->s + " needs " + std::to_string(numel * es));
    at::Tensor raw = at::empty({numel}, at::TensorOptions().dtype(st));
    if (numel) {
      f.seekg(static_cast<std::streamoff>(dataStart + b));
      if (!f.read(static_cast<char*>(raw.data_ptr()), static_cast<std::streamsize>(e - b)))
        err.fail(where + "cannot read its data (truncated file?)");
    }
    sd[name] = raw.view(dims).to(at::kFloat).contiguous();
  }
  return sd;
}

}  // namespace detail

namespace {

std::string jsonEscape(const std::string& s) {
  std::string o;
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"') o += "\\\"";
    else if (c == '\\') o += "\\\\";
    else if (u < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", u);
      o += b;
    } else o += c;
  }
  return o;
}

}  // namespace

SafetensorsFile readSafetensors(const std::string& path) {
  detail::CheckpointError err(path);
  uint64_t fileSize = 0;
  std::ifstream f = detail::openCheckpoint(path, &fileSize);
  if (fileSize == 0) err.fail("empty file");
  SafetensorsFile out;
  out.tensors = detail::guardCorrupt(err, [&] { return detail::readSafetensorsStream(err, f, fileSize, &out.metadata); });
  return out;
}

void writeSafetensors(const std::string& path, const StateDict& sd,
                      const std::vector<std::pair<std::string, std::string>>& metadata, bool atomic) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"";
  for (const auto& [k, v] : metadata) {
    if (k == "format") throw Error(code::kInvalidArgument, "writeSafetensors: metadata 'format' is always 'pt'");
    header += ",\"" + jsonEscape(k) + "\":\"" + jsonEscape(v) + "\"";
  }
  header += "}";
  uint64_t off = 0;
  std::vector<at::Tensor> data;
  data.reserve(sd.size());
  for (const auto& [name, t0] : sd) {
    if (!t0.defined()) throw Error(code::kInvalidArgument, "writeSafetensors: tensor '" + name + "' is undefined");
    at::Tensor t = t0.detach().to(at::kCPU, at::kFloat).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
    header += ",\"" + jsonEscape(name) + "\":{\"dtype\":\"F32\",\"shape\":[";
    for (int64_t i = 0; i < t.dim(); ++i) header += (i ? "," : "") + std::to_string(t.size(i));
    header += "],\"data_offsets\":[" + std::to_string(off) + "," + std::to_string(off + bytes) + "]}";
    off += bytes;
    data.push_back(t);
  }
  header += "}";
  while (header.size() % 8) header += ' ';
  // The file's bytes, through `put` (which throws on failure).
  auto emit = [&](const ByteSink& put) {
    unsigned char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<uint64_t>(header.size()) >> (8 * i));
    put(len, 8);
    put(header.data(), header.size());
    for (auto& t : data)
      if (t.numel()) put(t.data_ptr(), static_cast<size_t>(t.numel()) * 4);
  };
  if (atomic) {
    writeFileAtomic(path, emit);
    return;
  }
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(code::kIo, "Cannot write '" + path + "'");
  emit([&](const void* p, size_t n) { f.write(static_cast<const char*>(p), static_cast<std::streamsize>(n)); });
  f.close();
  if (!f) throw Error(code::kIo, "Failed writing '" + path + "'");
}

}  // namespace anomalyncd::model

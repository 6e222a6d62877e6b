#include "model/checkpoint.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <fcntl.h>
#include <torch/nn/module.h>
#include <torch/utils.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.h"

namespace anomalyncd::model {

std::string shapeStr(at::IntArrayRef s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

namespace {

std::string hex2(unsigned v) {
  char b[8];
  std::snprintf(b, sizeof b, "0x%02x", v & 0xffu);
  return b;
}

// Printable, bounded rendering of untrusted text for error messages.
std::string quoteUntrusted(const std::string& s) {
  std::string o = "'";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) o += static_cast<char>(c);
    else o += "\\x" + hex2(c).substr(2);
  }
  if (s.size() > 80) o += "...";
  return o + "'";
}

class CheckpointError {
 public:
  explicit CheckpointError(std::string path) : path_(std::move(path)) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(code::kCheckpoint, "Cannot load checkpoint '" + path_ + "': " + what);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};


// numel of `shape` with overflow / limit checks; false if negative or above `limit`.
bool checkedNumel(const std::vector<int64_t>& shape, int64_t limit, int64_t* out) {
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) zero = true;
  }
  if (zero) {
    *out = 0;
    return true;
  }
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d > limit / n) return false;
    n *= d;
  }
  *out = n;
  return true;
}

// ==========================================================================
// Restricted unpickler
// ==========================================================================
enum class Kind { None, Bool, Int, Str, Tuple, List, Dict, Global, Storage, Tensor };
enum class GlobalId { OrderedDict, RebuildTensorV2, RebuildParameter, StorageType };

struct Obj;
using ObjP = std::shared_ptr<Obj>;

struct Obj {
  explicit Obj(Kind k) : kind(k) {}
  Kind kind;
  bool b = false;
  int64_t i = 0;
  std::string s;                            // Str; Global: "module.name"; Storage: key
  GlobalId g = GlobalId::OrderedDict;       // Global
  at::ScalarType st = at::kFloat;           // Global(StorageType) / Storage
  std::vector<ObjP> items;                  // Tuple / List
  std::vector<std::pair<ObjP, ObjP>> dict;  // Dict (insertion order)
  at::Tensor t;                             // Storage (1-D, native dtype) / Tensor
};

const char* kindName(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Str: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

using StorageLoader = std::function<at::Tensor(const std::string& key, at::ScalarType st, int64_t numel)>;

class Unpickler {
 public:
  Unpickler(const CheckpointError& err, const uint8_t* data, size_t size, StorageLoader loader)
      : err_(err), d_(data), n_(size), loader_(std::move(loader)) {}

  ~Unpickler() {
    // Break reference cycles / deep chains iteratively (hostile pickles can build
    // self-referencing or very deep containers through the memo).
    for (auto& o : containers_) {
      o->items.clear();
      o->dict.clear();
    }
  }

  ObjP run() {
    while (true) {
      if (pos_ >= n_) fail("truncated pickle (no STOP opcode)");
      opPos_ = pos_;
      const uint8_t op = d_[pos_++];
      switch (op) {
        case 0x80: {  // PROTO
          const uint8_t v = u8();
          if (v > 5) fail("unsupported pickle protocol " + std::to_string(v));
          break;
        }
        case 0x95:  // FRAME (protocol 4 framing hint)
          need(8);
          pos_ += 8;
          break;
        case '}': push(container(Kind::Dict)); break;   // EMPTY_DICT
        case ']': push(container(Kind::List)); break;   // EMPTY_LIST
        case ')': push(container(Kind::Tuple)); break;  // EMPTY_TUPLE
        case '(': marks_.push_back(stack_.size()); break;  // MARK
        case 'X': {  // BINUNICODE
          const uint32_t len = u32();
          push(str(bytes(len)));
          break;
        }
        case 0x8c: {  // SHORT_BINUNICODE
          const uint8_t len = u8();
          push(str(bytes(len)));
          break;
        }
        case 'J': {  // BININT
          const uint32_t v = u32();
          push(integer(static_cast<int32_t>(v)));
          break;
        }
        case 'K': push(integer(u8())); break;   // BININT1
        case 'M': push(integer(u16())); break;  // BININT2
        case 0x8a: {                            // LONG1
          const uint8_t len = u8();
          if (len > 8) fail("integer too large (LONG1 of " + std::to_string(len) + " bytes)");
          need(len);
          uint64_t v = 0;
          for (unsigned i = 0; i < len; ++i) v |= static_cast<uint64_t>(d_[pos_ + i]) << (8 * i);
          if (len > 0 && len < 8 && (d_[pos_ + len - 1] & 0x80)) v |= ~uint64_t(0) << (8 * len);
          pos_ += len;
          push(integer(static_cast<int64_t>(v)));
          break;
        }
        case 't': {  // TUPLE
          auto items = popMark();
          auto t = container(Kind::Tuple);
          t->items = std::move(items);
          push(t);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1/2/3
          const int k = op - 0x84;
          std::vector<ObjP> items(k);
          for (int i = k - 1; i >= 0; --i) items[i] = pop();
          auto t = container(Kind::Tuple);
          t->items = std::move(items);
          push(t);
          break;
        }
        case 'Q': {  // BINPERSID
          ObjP pid = pop();
          push(persistentLoad(pid));
          break;
        }
        case 'c': {  // GLOBAL "module\nname\n"
          std::string mod = line();
          std::string name = line();
          push(global(mod, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          ObjP name = pop();
          ObjP mod = pop();
          if (name->kind != Kind::Str || mod->kind != Kind::Str) fail("STACK_GLOBAL operands are not strings");
          push(global(mod->s, name->s));
          break;
        }
        case 'R': {  // REDUCE
          ObjP args = pop();
          ObjP fn = pop();
          push(reduce(fn, args));
          break;
        }
        case 's': {  // SETITEM
          ObjP v = pop();
          ObjP k = pop();
          ObjP dict = top();
          if (dict->kind != Kind::Dict) fail("SETITEM on a " + std::string(kindName(dict->kind)));
          dict->dict.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          auto items = popMark();
          ObjP dict = top();
          if (dict->kind != Kind::Dict) fail("SETITEMS on a " + std::string(kindName(dict->kind)));
          if (items.size() % 2) fail("SETITEMS with an odd number of items");
          for (size_t i = 0; i < items.size(); i += 2) dict->dict.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'a': {  // APPEND
          ObjP v = pop();
          ObjP list = top();
          if (list->kind != Kind::List) fail("APPEND on a " + std::string(kindName(list->kind)));
          list->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          auto items = popMark();
          ObjP list = top();
          if (list->kind != Kind::List) fail("APPENDS on a " + std::string(kindName(list->kind)));
          for (auto& it : items) list->items.push_back(it);
          break;
        }
        case 'b': {  // BUILD: only the OrderedDict state of a state dict (_metadata); dropped
          ObjP state = pop();
          ObjP obj = top();
          if (obj->kind != Kind::Dict) fail("BUILD on a " + std::string(kindName(obj->kind)));
          if (state->kind != Kind::Dict && state->kind != Kind::None && state->kind != Kind::Tuple)
            fail("BUILD with a " + std::string(kindName(state->kind)) + " state");
          break;
        }
        case 'q': memoPut(u8()); break;   // BINPUT
        case 'r': memoPut(u32()); break;  // LONG_BINPUT
        case 0x94: memoPut(static_cast<uint32_t>(memo_.size())); break;  // MEMOIZE
        case 'h': push(memoGet(u8())); break;   // BINGET
        case 'j': push(memoGet(u32())); break;  // LONG_BINGET
        case 0x89: push(boolean(false)); break;  // NEWFALSE
        case 0x88: push(boolean(true)); break;   // NEWTRUE
        case 'N': push(std::make_shared<Obj>(Kind::None)); break;
        case '.': {  // STOP
          ObjP result = pop();
          return result;
        }
        default:
          fail("unsupported pickle opcode " + hex2(op) + " at offset " + std::to_string(opPos_));
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    err_.fail("data.pkl: " + what + (what.find(" at offset ") == std::string::npos
                                         ? " (at offset " + std::to_string(opPos_) + ")"
                                         : ""));
  }

  void need(size_t k) {
    if (k > n_ - pos_) fail("truncated pickle");
  }
  uint8_t u8() {
    need(1);
    return d_[pos_++];
  }
  uint16_t u16() {
    need(2);
    uint16_t v = static_cast<uint16_t>(d_[pos_] | (d_[pos_ + 1] << 8));
    pos_ += 2;
    return v;
  }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(d_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return v;
  }
  std::string bytes(size_t len) {
    need(len);
    std::string s(reinterpret_cast<const char*>(d_ + pos_), len);
    pos_ += len;
    return s;
  }
  std::string line() {
    size_t e = pos_;
    while (e < n_ && d_[e] != '\n' && e - pos_ < 256) ++e;
    if (e >= n_ || d_[e] != '\n') fail("malformed GLOBAL");
    std::string s(reinterpret_cast<const char*>(d_ + pos_), e - pos_);
    pos_ = e + 1;
    return s;
  }

  void push(ObjP o) {
    if (stack_.size() > (1u << 22)) fail("pickle stack too deep");
    stack_.push_back(std::move(o));
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  ObjP pop() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    ObjP o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  ObjP top() {
    if (stack_.size() <= floor()) fail("pickle stack underflow");
    return stack_.back();
  }
  std::vector<ObjP> popMark() {
    if (marks_.empty()) fail("pickle MARK missing");
    const size_t k = marks_.back();
    marks_.pop_back();
    std::vector<ObjP> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(k)),
                            std::make_move_iterator(stack_.end()));
    stack_.resize(k);
    return items;
  }
  void memoPut(uint32_t idx) {
    ObjP o = top();
    if (memo_.size() > (1u << 22) && !memo_.count(idx)) fail("pickle memo too large");
    memo_[idx] = o;
  }
  ObjP memoGet(uint32_t idx) {
    auto it = memo_.find(idx);
    if (it == memo_.end()) fail("memo index " + std::to_string(idx) + " undefined");
    return it->second;
  }

  ObjP container(Kind k) {
    auto o = std::make_shared<Obj>(k);
    containers_.push_back(o);
    return o;
  }
  static ObjP str(std::string s) {
    auto o = std::make_shared<Obj>(Kind::Str);
    o->s = std::move(s);
    return o;
  }
  static ObjP integer(int64_t v) {
    auto o = std::make_shared<Obj>(Kind::Int);
    o->i = v;
    return o;
  }
  static ObjP boolean(bool v) {
    auto o = std::make_shared<Obj>(Kind::Bool);
    o->b = v;
    return o;
  }

  ObjP global(const std::string& mod, const std::string& name) {
    auto o = std::make_shared<Obj>(Kind::Global);
    o->s = mod + "." + name;
    if (mod == "collections" && name == "OrderedDict") {
      o->g = GlobalId::OrderedDict;
      return o;
    }
    if (mod == "torch._utils" && name == "_rebuild_tensor_v2") {
      o->g = GlobalId::RebuildTensorV2;
      return o;
    }
    if (mod == "torch._utils" && name == "_rebuild_parameter") {
      o->g = GlobalId::RebuildParameter;
      return o;
    }
    if (mod == "torch") {
      static const std::pair<const char*, at::ScalarType> kStorages[] = {
          {"FloatStorage", at::kFloat},  {"DoubleStorage", at::kDouble},
          {"HalfStorage", at::kHalf},    {"BFloat16Storage", at::kBFloat16},
          {"LongStorage", at::kLong},    {"IntStorage", at::kInt},
          {"ShortStorage", at::kShort},  {"CharStorage", at::kChar},
          {"ByteStorage", at::kByte},    {"BoolStorage", at::kBool}};
      for (const auto& [n, st] : kStorages) {
        if (name == n) {
          o->g = GlobalId::StorageType;
          o->st = st;
          return o;
        }
      }
    }
    err_.fail("data.pkl: forbidden global " + quoteUntrusted(mod + "." + name) + " at offset " +
              std::to_string(opPos_) + " (only state-dict tensors are accepted)");
  }

  ObjP persistentLoad(const ObjP& pid) {
    // ('storage', torch.<T>Storage, key, location, numel)
    if (pid->kind != Kind::Tuple || pid->items.size() != 5) fail("unsupported persistent id");
    const auto& it = pid->items;
    if (it[0]->kind != Kind::Str || it[0]->s != "storage") fail("unsupported persistent id");
    if (it[1]->kind != Kind::Global || it[1]->g != GlobalId::StorageType)
      fail("persistent id without a storage type");
    if (it[2]->kind != Kind::Str || it[3]->kind != Kind::Str || it[4]->kind != Kind::Int)
      fail("malformed storage persistent id");
    const std::string& key = it[2]->s;
    if (key.empty() || key.size() > 64) fail("bad storage key " + quoteUntrusted(key));
    for (char c : key)
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
        fail("bad storage key " + quoteUntrusted(key));
    const int64_t numel = it[4]->i;
    if (numel < 0) fail("negative storage size");
    const at::ScalarType st = it[1]->st;
    auto found = storages_.find(key);
    if (found != storages_.end()) {
      if (found->second->st != st) fail("storage '" + key + "' used with two dtypes");
      return found->second;
    }
    auto o = std::make_shared<Obj>(Kind::Storage);
    o->s = key;
    o->st = st;
    o->t = loader_(key, st, numel);
    storages_[key] = o;
    return o;
  }

  static bool intTuple(const ObjP& o, std::vector<int64_t>* out) {
    if (o->kind != Kind::Tuple) return false;
    out->clear();
    for (auto& e : o->items) {
      if (e->kind != Kind::Int) return false;
      out->push_back(e->i);
    }
    return true;
  }

  ObjP reduce(const ObjP& fn, const ObjP& args) {
    if (fn->kind != Kind::Global) fail("REDUCE on a " + std::string(kindName(fn->kind)));
    if (args->kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
    const auto& a = args->items;
    switch (fn->g) {
      case GlobalId::OrderedDict:
        if (!a.empty()) fail("OrderedDict(...) with arguments is not supported");
        return container(Kind::Dict);
      case GlobalId::RebuildTensorV2: {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.size() != 6 && a.size() != 7) fail("_rebuild_tensor_v2 with " + std::to_string(a.size()) + " arguments");
        if (a[0]->kind != Kind::Storage) fail("_rebuild_tensor_v2 without a storage");
        if (a[1]->kind != Kind::Int) fail("_rebuild_tensor_v2: bad storage offset");
        std::vector<int64_t> size, stride;
        if (!intTuple(a[2], &size) || !intTuple(a[3], &stride) || size.size() != stride.size())
          fail("_rebuild_tensor_v2: bad size/stride");
        if (a[5]->kind != Kind::Dict && a[5]->kind != Kind::None) fail("_rebuild_tensor_v2: bad backward hooks");
        if (a[5]->kind == Kind::Dict && !a[5]->dict.empty()) fail("tensor with backward hooks is not supported");
        return makeTensor(a[0], a[1]->i, size, stride);
      }
      case GlobalId::RebuildParameter: {
        if (a.size() != 3 || a[0]->kind != Kind::Tensor) fail("_rebuild_parameter: bad arguments");
        if (a[2]->kind == Kind::Dict && !a[2]->dict.empty()) fail("parameter with backward hooks is not supported");
        return a[0];
      }
      case GlobalId::StorageType:
        fail("calling a storage type is not supported");
    }
    fail("unsupported REDUCE");
  }

  ObjP makeTensor(const ObjP& storage, int64_t offset, const std::vector<int64_t>& size,
                  const std::vector<int64_t>& stride) {
    const int64_t storageNumel = storage->t.numel();
    if (size.size() > 32) fail("tensor with " + std::to_string(size.size()) + " dimensions");
    if (offset < 0) fail("negative storage offset");
    int64_t numel = 0;
    if (!checkedNumel(size, int64_t(1) << 32, &numel)) fail("bad tensor size " + shapeStr(size));
    // stride-0 (expanded) views are legal, but a tiny storage must not become a huge tensor
    if (numel > 1024 * std::max<int64_t>(storageNumel, 1) + 1024)
      fail("tensor of " + std::to_string(numel) + " elements over a storage of " + std::to_string(storageNumel));
    if (numel > 0) {
      // last element index = offset + sum((size_i - 1) * stride_i) must lie inside the storage
      __int128 last = offset;
      for (size_t i = 0; i < size.size(); ++i) {
        if (stride[i] < 0) fail("negative stride");
        last += static_cast<__int128>(size[i] - 1) * stride[i];
      }
      if (last >= storageNumel)
        fail("tensor view (offset " + std::to_string(offset) + ", size " + shapeStr(size) + ", stride " +
             shapeStr(stride) + ") exceeds its storage of " + std::to_string(storageNumel) + " elements");
    }
    at::Tensor view = storage->t.as_strided(size, stride, numel > 0 ? offset : 0);
    auto o = std::make_shared<Obj>(Kind::Tensor);
    o->t = at::empty(size, at::TensorOptions().dtype(at::kFloat));
    o->t.copy_(view);
    return o;
  }

  const CheckpointError& err_;
  const uint8_t* d_;
  size_t n_;
  size_t pos_ = 0, opPos_ = 0;
  StorageLoader loader_;
  std::vector<ObjP> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint32_t, ObjP> memo_;
  std::unordered_map<std::string, ObjP> storages_;
  std::vector<ObjP> containers_;
};

// Turns the unpickled root object into a state dict.
StateDict toStateDict(const CheckpointError& err, const ObjP& root) {
  auto tensorDict = [](const ObjP& d, std::string* why) -> bool {
    if (d->kind != Kind::Dict) {
      *why = std::string("the pickled object is a ") + kindName(d->kind) + ", not a dict";
      return false;
    }
    for (auto& [k, v] : d->dict) {
      if (k->kind != Kind::Str) {
        *why = std::string("a key is a ") + kindName(k->kind);
        return false;
      }
      if (v->kind != Kind::Tensor) {
        *why = "key " + quoteUntrusted(k->s) + " holds a " + kindName(v->kind) + ", not a tensor";
        return false;
      }
    }
    return true;
  };
  std::string why;
  ObjP d = root;
  bool stripPrefixes = false;
  if (!tensorDict(root, &why)) {
    ObjP inner;
    if (root->kind == Kind::Dict) {
      for (const char* w : {"teacher", "student", "model", "state_dict"}) {
        for (auto& [k, v] : root->dict)
          if (k->kind == Kind::Str && k->s == w && v->kind == Kind::Dict) inner = v;
        if (inner) break;
      }
    }
    std::string why2;
    if (!inner || !tensorDict(inner, &why2)) err.fail("not a state dict: " + why);
    d = inner;
    stripPrefixes = true;
  }
  StateDict sd;
  for (auto& [k, v] : d->dict) {
    std::string name = k->s;
    if (stripPrefixes) {
      for (const char* p : {"module.", "backbone."})
        if (name.rfind(p, 0) == 0) name = name.substr(std::strlen(p));
    }
    sd[name] = v->t;  // later duplicates win, as in Python
  }
  return sd;
}

StateDict readTorchZip(const CheckpointError& err, const std::string& path, uint64_t fileSize) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    err.fail(std::string("not a valid torch.save zip archive (") + e.what_without_backtrace() + ")");
  } catch (const std::exception& e) {
    err.fail(std::string("not a valid torch.save zip archive (") + e.what() + ")");
  }
  auto record = [&](const std::string& name) -> std::tuple<at::DataPtr, size_t> {
    try {
      if (!reader->hasRecord(name)) err.fail("archive has no record '" + name + "'");
      return reader->getRecord(name);
    } catch (const Error&) {
      throw;
    } catch (const c10::Error& e) {
      err.fail("cannot read record '" + name + "' (" + e.what_without_backtrace() + ")");
    } catch (const std::exception& e) {
      err.fail("cannot read record '" + name + "' (" + e.what() + ")");
    }
  };
  try {
    if (reader->hasRecord("byteorder")) {
      auto [ptr, sz] = record("byteorder");
      std::string bo(static_cast<const char*>(ptr.get()), sz);
      if (bo != "little") err.fail("unsupported byte order " + quoteUntrusted(bo));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    err.fail(std::string("corrupt archive (") + e.what() + ")");
  }
  auto [pkl, pklSize] = record("data.pkl");
  StorageLoader loader = [&](const std::string& key, at::ScalarType st, int64_t numel) -> at::Tensor {
    const size_t es = c10::elementSize(st);
    if (static_cast<uint64_t>(numel) > fileSize / es)
      err.fail("storage '" + key + "' claims " + std::to_string(numel) + " elements, more than the file holds");
    auto [ptr, sz] = record("data/" + key);
    const size_t bytes = static_cast<size_t>(numel) * es;
    if (sz < bytes)
      err.fail("storage 'data/" + key + "' has " + std::to_string(sz) + " bytes, expected " +
               std::to_string(bytes));
    at::Tensor t = at::empty({numel}, at::TensorOptions().dtype(st));
    if (bytes) std::memcpy(t.data_ptr(), ptr.get(), bytes);
    return t;
  };
  Unpickler up(err, static_cast<const uint8_t*>(pkl.get()), pklSize, loader);
  ObjP root = up.run();
  return toStateDict(err, root);
}

}  // namespace

// ==========================================================================
// Minimal JSON (safetensors header, training-bundle metadata)
// ==========================================================================
const Json* Json::get(const std::string& k) const {
  for (auto& [key, v] : obj)
    if (key == k) return &v;
  return nullptr;
}

namespace {

class JsonParser {
 public:
  JsonParser(const std::string& s, int maxDepth) : s_(s), maxDepth_(maxDepth) {}
  Json parseDocument() {
    Json v = value(0);
    ws();
    if (p_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& w) const { throw JsonError{w + " at byte " + std::to_string(p_)}; }
  void ws() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\t' || s_[p_] == '\n' || s_[p_] == '\r')) ++p_;
  }
  bool lit(const char* w) {
    const size_t n = std::strlen(w);
    if (s_.compare(p_, n, w) == 0) {
      p_ += n;
      return true;
    }
    return false;
  }
  Json value(int depth) {
    if (depth > maxDepth_) fail("nesting too deep");
    ws();
    if (p_ >= s_.size()) fail("unexpected end");
    Json v;
    const char c = s_[p_];
    if (c == '{') {
      v.type = Json::Obj;
      ++p_;
      ws();
      if (p_ < s_.size() && s_[p_] == '}') {
        ++p_;
        return v;
      }
      std::set<std::string> keys;
      while (true) {
        ws();
        if (p_ >= s_.size() || s_[p_] != '"') fail("expected a key");
        std::string k = string();
        if (!keys.insert(k).second) fail("duplicate key " + quoteUntrusted(k));
        ws();
        if (p_ >= s_.size() || s_[p_] != ':') fail("expected ':'");
        ++p_;
        v.obj.emplace_back(std::move(k), value(depth + 1));
        ws();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < s_.size() && s_[p_] == '}') {
          ++p_;
          return v;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.type = Json::Arr;
      ++p_;
      ws();
      if (p_ < s_.size() && s_[p_] == ']') {
        ++p_;
        return v;
      }
      while (true) {
        v.arr.push_back(value(depth + 1));
        ws();
        if (p_ < s_.size() && s_[p_] == ',') {
          ++p_;
          continue;
        }
        if (p_ < s_.size() && s_[p_] == ']') {
          ++p_;
          return v;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') {
      v.type = Json::Str;
      v.s = string();
      return v;
    }
    if (lit("true")) {
      v.type = Json::Bool;
      v.b = true;
      return v;
    }
    if (lit("false")) {
      v.type = Json::Bool;
      return v;
    }
    if (lit("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail("unexpected character");
  }
  Json number() {
    Json v;
    v.type = Json::Num;
    const size_t start = p_;
    bool neg = false;
    if (s_[p_] == '-') {
      neg = true;
      ++p_;
    }
    if (p_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[p_]))) fail("bad number");
    uint64_t acc = 0;
    bool overflow = false;
    while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) {
      const unsigned dgt = static_cast<unsigned>(s_[p_] - '0');
      if (acc > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - dgt) / 10) overflow = true;
      else acc = acc * 10 + dgt;
      ++p_;
    }
    bool frac = false;
    if (p_ < s_.size() && s_[p_] == '.') {
      frac = true;
      ++p_;
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
    }
    if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
      frac = true;
      ++p_;
      if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) ++p_;
      // an exponent needs digits (the bundle's metadata parser always required them)
      if (p_ >= s_.size() || !std::isdigit(static_cast<unsigned char>(s_[p_]))) fail("bad number");
      while (p_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[p_]))) ++p_;
    }
    v.num = std::strtod(s_.substr(start, p_ - start).c_str(), nullptr);
    if (!frac && !overflow) {
      v.isInt = true;
      v.i = neg ? -static_cast<int64_t>(acc) : static_cast<int64_t>(acc);
    }
    return v;
  }
  static void utf8(std::string& o, uint32_t cp) {
    if (cp < 0x80) {
      o += static_cast<char>(cp);
    } else if (cp < 0x800) {
      o += static_cast<char>(0xC0 | (cp >> 6));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      o += static_cast<char>(0xE0 | (cp >> 12));
      o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      o += static_cast<char>(0xF0 | (cp >> 18));
      o += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      o += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      o += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  uint32_t hex4() {
    if (p_ + 4 > s_.size()) fail("bad \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = s_[p_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<uint32_t>(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    ++p_;  // opening quote
    std::string o;
    while (true) {
      if (p_ >= s_.size()) fail("unterminated string");
      const char c = s_[p_++];
      if (c == '"') return o;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
      if (c != '\\') {
        o += c;
        continue;
      }
      if (p_ >= s_.size()) fail("unterminated string");
      const char e = s_[p_++];
      switch (e) {
        case '"': o += '"'; break;
        case '\\': o += '\\'; break;
        case '/': o += '/'; break;
        case 'b': o += '\b'; break;
        case 'f': o += '\f'; break;
        case 'n': o += '\n'; break;
        case 'r': o += '\r'; break;
        case 't': o += '\t'; break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.compare(p_, 2, "\\u") == 0) {
            p_ += 2;
            const uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) fail("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          utf8(o, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
  }

  const std::string& s_;
  const int maxDepth_;
  size_t p_ = 0;
};

}  // namespace

Json parseJson(const std::string& text, int maxDepth) { return JsonParser(text, maxDepth).parseDocument(); }

namespace {

// `metadata` (optional) receives the string values of `__metadata__`.
StateDict readSafetensors(const CheckpointError& err, std::ifstream& f, uint64_t fileSize,
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

void writeAll(int fd, const void* data, size_t n, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

// `emit(put)` writes the bytes into a temp file beside `path` (fsync'ed), then renames it.
void writeFileAtomic(const std::string& path,
                     const std::function<void(const std::function<void(const void*, size_t)>&)>& emit) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(errno));
  try {
    emit([&](const void* p, size_t n) { writeAll(fd, p, n, path); });
    if (::fsync(fd) != 0) throw Error(code::kIo, "Cannot write '" + path + "': fsync: " + std::strerror(errno));
    if (::close(fd) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(err));
    }
  } catch (...) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(code::kIo, "Cannot write '" + path + "': rename: " + std::strerror(err));
  }
  // Make the rename durable too (best effort).
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

// Opens `path` for readStateDict / readSafetensors; Error(kIo) when it cannot be read.
std::ifstream openCheckpoint(const std::string& path, uint64_t* fileSize) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(code::kIo, "Cannot open checkpoint '" + path + "': " +
                               (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(code::kIo, "Cannot open checkpoint '" + path + "'");
  f.seekg(0, std::ios::end);
  const std::streamoff endPos = f.tellg();
  if (endPos < 0) throw Error(code::kIo, "Cannot read checkpoint '" + path + "'");
  *fileSize = static_cast<uint64_t>(endPos);
  f.seekg(0);
  return f;
}

// Runs `body`, reporting anything but our own Error as a corrupt file.
template <typename F>
StateDict guardCorrupt(const CheckpointError& err, F&& body) {
  try {
    return body();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    err.fail(std::string("corrupt file (") + e.what_without_backtrace() + ")");
  } catch (const std::bad_alloc&) {
    err.fail("corrupt file (out of memory while reading it)");
  } catch (const std::exception& e) {
    err.fail(std::string("corrupt file (") + e.what() + ")");
  }
}

}  // namespace

// ==========================================================================
// Public API
// ==========================================================================
StateDict readStateDict(const std::string& path) {
  CheckpointError err(path);
  uint64_t fileSize = 0;
  std::ifstream f = openCheckpoint(path, &fileSize);
  unsigned char magic[8] = {0};
  const size_t got = fileSize >= 8 ? 8 : static_cast<size_t>(fileSize);
  if (got && !f.read(reinterpret_cast<char*>(magic), static_cast<std::streamsize>(got)))
    throw Error(code::kIo, "Cannot read checkpoint '" + path + "'");
  if (fileSize == 0) err.fail("empty file");
  return guardCorrupt(err, [&]() -> StateDict {
    if (got >= 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) {
      f.close();
      return readTorchZip(err, path, fileSize);
    }
    if (magic[0] == 0x80 && got >= 2 && magic[1] >= 2 && magic[1] <= 5)
      err.fail("legacy torch.save format (pre-1.6, not a zip archive) is not supported; re-save it "
               "with torch >= 1.6 (default zip format) or convert it to .safetensors");
    // safetensors: 8-byte header length followed by '{'
    const bool named = path.size() >= 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
    if (named) return readSafetensors(err, f, fileSize, nullptr);
    if (got == 8) {
      uint64_t hlen = 0;
      for (int i = 0; i < 8; ++i) hlen |= static_cast<uint64_t>(magic[i]) << (8 * i);
      char first = 0;
      if (hlen > 0 && fileSize > 8) {
        f.seekg(8);
        f.read(&first, 1);
      }
      if (first == '{') return readSafetensors(err, f, fileSize, nullptr);
    }
    err.fail("unrecognised format (neither a torch.save zip archive nor a .safetensors file)");
  });
}

SafetensorsFile readSafetensors(const std::string& path) {
  CheckpointError err(path);
  uint64_t fileSize = 0;
  std::ifstream f = openCheckpoint(path, &fileSize);
  if (fileSize == 0) err.fail("empty file");
  SafetensorsFile out;
  out.tensors = guardCorrupt(err, [&] { return readSafetensors(err, f, fileSize, &out.metadata); });
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
  auto emit = [&](const std::function<void(const void*, size_t)>& put) {
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

void loadInto(torch::nn::Module& module, const StateDict& sd, bool strict) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (auto& kv : module.named_parameters(true)) targets.emplace_back(kv.key(), kv.value());
  for (auto& kv : module.named_buffers(true)) targets.emplace_back(kv.key(), kv.value());
  std::vector<std::string> missing;
  std::set<std::string> known;
  for (auto& [name, p] : targets) {
    known.insert(name);
    auto it = sd.find(name);
    if (it == sd.end()) {
      missing.push_back(name);
      continue;
    }
    if (!it->second.defined() || it->second.sizes() != p.sizes())
      throw Error(code::kCheckpoint, "Checkpoint key '" + name + "' has shape " +
                                         (it->second.defined() ? shapeStr(it->second.sizes()) : "undefined") +
                                         " but the model expects " + shapeStr(p.sizes()));
  }
  auto listOf = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + std::string("'") + v[i] + "'";
    if (v.size() > 8) s += " and " + std::to_string(v.size() - 8) + " more";
    return s;
  };
  if (!missing.empty())
    throw Error(code::kCheckpoint, "Checkpoint is missing " + std::to_string(missing.size()) +
                                       " key(s) the model needs: " + listOf(missing));
  if (strict) {
    std::vector<std::string> unexpected;
    for (auto& [name, t] : sd)
      if (!known.count(name)) unexpected.push_back(name);
    if (!unexpected.empty())
      throw Error(code::kCheckpoint, "Checkpoint has " + std::to_string(unexpected.size()) +
                                         " unexpected key(s): " + listOf(unexpected));
  }
  torch::NoGradGuard ng;
  for (auto& [name, p] : targets) p.copy_(sd.at(name));
}

StateDict stateDictOf(const torch::nn::Module& module) {
  StateDict sd;
  for (auto& kv : module.named_parameters(true))
    sd[kv.key()] = kv.value().detach().to(at::kCPU, at::kFloat).contiguous().clone();
  for (auto& kv : module.named_buffers(true))
    sd[kv.key()] = kv.value().detach().to(at::kCPU, at::kFloat).contiguous().clone();
  return sd;
}

VitConfig inferConfig(const StateDict& sd, const VitConfig& arch) {
  auto bad = [](const std::string& key, const std::string& what) -> void {
    throw Error(code::kCheckpoint, "Checkpoint key '" + key + "': " + what);
  };
  auto get = [&](const std::string& key) -> const at::Tensor& {
    auto it = sd.find(key);
    if (it == sd.end() || !it->second.defined())
      throw Error(code::kCheckpoint, "Checkpoint has no key '" + key + "' (not a DINO ViT state dict?)");
    return it->second;
  };
  const int64_t D = arch.embedDim;
  const at::Tensor& pos = get("pos_embed");
  if (pos.dim() != 3 || pos.size(0) != 1 || pos.size(1) < 2)
    bad("pos_embed", "shape " + shapeStr(pos.sizes()) + ", expected [1, N+1, D]");
  if (pos.size(2) != D)
    bad("pos_embed", "embedding dim " + std::to_string(pos.size(2)) + " but the architecture has embedDim " +
                         std::to_string(D) + " (shape " + shapeStr(pos.sizes()) + ")");
  const at::Tensor& pw = get("patch_embed.proj.weight");
  if (pw.dim() != 4 || pw.size(0) != D || pw.size(1) != 3 || pw.size(2) != arch.patchSize ||
      pw.size(3) != arch.patchSize)
    bad("patch_embed.proj.weight", "shape " + shapeStr(pw.sizes()) + ", expected [" + std::to_string(D) +
                                       ", 3, " + std::to_string(arch.patchSize) + ", " +
                                       std::to_string(arch.patchSize) + "]");
  const int64_t N = pos.size(1) - 1;
  int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(N))));
  if (side * side != N)
    bad("pos_embed", std::to_string(N) + " patch positions do not form a square grid");
  int maxBlock = -1;
  for (auto& [k, t] : sd) {
    if (k.rfind("blocks.", 0) != 0) continue;
    const size_t dot = k.find('.', 7);
    const std::string idx = k.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
    if (idx.empty() || idx.size() > 6 || idx.find_first_not_of("0123456789") != std::string::npos)
      bad(k, "unexpected block key");
    maxBlock = std::max(maxBlock, std::stoi(idx));
  }
  if (maxBlock + 1 != arch.depth)
    bad("blocks." + std::to_string(std::max(maxBlock, 0)) + ".*",
        "checkpoint has " + std::to_string(maxBlock + 1) + " blocks but the architecture has depth " +
            std::to_string(arch.depth));
  if (arch.depth > 0) {
    const at::Tensor& qkv = get("blocks.0.attn.qkv.weight");
    if (qkv.dim() != 2 || qkv.size(0) != 3 * D || qkv.size(1) != D)
      bad("blocks.0.attn.qkv.weight", "shape " + shapeStr(qkv.sizes()) + ", expected [" + std::to_string(3 * D) +
                                          ", " + std::to_string(D) + "]");
    const bool hasBias = sd.count("blocks.0.attn.qkv.bias") > 0;
    if (hasBias != arch.qkvBias)
      bad("blocks.0.attn.qkv.bias", hasBias ? "present but the architecture has qkvBias = false"
                                            : "absent but the architecture has qkvBias = true");
    const int64_t hidden = static_cast<int64_t>(D * arch.mlpRatio);
    const at::Tensor& fc1 = get("blocks.0.mlp.fc1.weight");
    if (fc1.dim() != 2 || fc1.size(0) != hidden || fc1.size(1) != D)
      bad("blocks.0.mlp.fc1.weight", "shape " + shapeStr(fc1.sizes()) + ", expected [" + std::to_string(hidden) +
                                         ", " + std::to_string(D) + "]");
  }
  VitConfig c = arch;
  c.imageSize = static_cast<int>(side * arch.patchSize);
  return c;
}

}  // namespace anomalyncd::model

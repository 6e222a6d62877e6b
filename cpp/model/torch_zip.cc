// torch.save zip archives (torch >= 1.6) read without Python: `data.pkl` goes
// through a restricted unpickler that knows only the opcodes and globals a state
// dict uses; nothing is ever executed (see checkpoint.h).
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/limits.h"
#include "common/untrusted.h"
#include "model/checkpoint_detail.h"

namespace anomalyncd::model::detail {

namespace {

const auto& hex2 = hexByte;

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
    checkTensorElements(numel, "checkpoint '" + err_.path() + "': tensor of shape " + shapeStr(size));
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

}  // namespace

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
    checkTensorElements(numel, "checkpoint '" + path + "': storage '" + key + "'");
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

}  // namespace anomalyncd::model::detail

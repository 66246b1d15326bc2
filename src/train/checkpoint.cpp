#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/json.h"
#include "core/mmap_file.h"
#include "model/lora_io.h"
#include "model/safetensors.h"

namespace camelid::train {

namespace fs = std::filesystem;
using json = nlohmann::json;

void write_file_durable(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, ": cannot create (", std::strerror(errno), ")");
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : EIO;
      ::close(fd);
      fail(path, ": write failed (", std::strerror(e), ")");
    }
    off += size_t(n);
  }
  // A full disk may only show at fsync or close (delayed allocation, NFS).
  if (::fsync(fd) != 0 && errno != EINVAL) {
    const int e = errno;
    ::close(fd);
    fail(path, ": fsync failed (", std::strerror(e), ")");
  }
  if (::close(fd) != 0) fail(path, ": close failed (", std::strerror(errno), ")");
}

void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(dir, ": cannot open directory to sync (", std::strerror(errno), ")");
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) fail(dir, ": fsync failed (", std::strerror(e), ")");
}

namespace {

std::vector<int64_t> shape_of(const Param& p) {
  // Norms are vectors in Hugging Face files; everything else a matrix.
  const bool vec = p.rows == 1 && p.name.size() >= 11 && p.name.compare(p.name.size() - 11, 11, "norm.weight") == 0;
  return vec ? std::vector<int64_t>{p.cols} : std::vector<int64_t>{p.rows, p.cols};
}

SafetensorsOut f32_tensor(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  SafetensorsOut t{name, DType::F32, std::move(shape), {}};
  t.bytes.resize(v.size() * 4);
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  return t;
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open (", std::strerror(errno), ")");
  return {std::istreambuf_iterator<char>(f), {}};
}

const char* kTokenizerFiles[] = {"tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                 "special_tokens_map.json", "generation_config.json", "chat_template.jinja"};

// The moments of every trainable parameter of ps (in ps order, as opt holds them).
std::string optimizer_bytes(const ParamSet& ps, const AdamW& opt) {
  std::vector<SafetensorsOut> moments;
  size_t k = 0;
  for (const Param& p : ps.params) {
    if (!p.trainable) continue;
    const AdamW::Slot& s = opt.slots().at(k++);
    if (s.name != p.name) fail("optimizer state out of order at ", p.name);
    moments.push_back(f32_tensor(p.name + ".exp_avg", shape_of(p), s.m));
    moments.push_back(f32_tensor(p.name + ".exp_avg_sq", shape_of(p), s.v));
  }
  return safetensors_bytes(moments);
}

void fsync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open to sync (", std::strerror(errno), ")");
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) fail(path, ": fsync failed (", std::strerror(e), ")");
}

}  // namespace

std::string write_checkpoint_dir(const std::string& out_dir, int64_t step, const CheckpointSource& src,
                                 const std::function<void(const std::string& tmp, const PutFile& put)>& fill) {
  const std::string name = "checkpoint-" + std::to_string(step);
  const fs::path final_path = fs::path(out_dir) / name;
  const fs::path tmp = fs::path(out_dir) / (".tmp-" + name + "-" + std::to_string(::getpid()));
  std::error_code ec;
  try {
    fs::create_directories(out_dir, ec);
    if (ec) fail(out_dir, ": cannot create directory (", ec.message(), ")");
    fs::remove_all(tmp, ec);
    if (!fs::create_directory(tmp, ec) || ec) fail(tmp.string(), ": cannot create directory (", ec.message(), ")");
    auto put = [&](const std::string& file, const std::string& bytes) {
      const std::string p = (tmp / file).string();
      if (src.before_write) src.before_write(p);
      write_file_durable(p, bytes);
    };
    fill(tmp.string(), put);
    if (!src.tokenizer_dir.empty())
      for (const char* f : kTokenizerFiles) {
        const fs::path from = fs::path(src.tokenizer_dir) / f;
        if (fs::is_regular_file(from, ec)) put(f, read_all(from.string()));
      }
    fsync_dir(tmp.string());

    // rename(2) cannot replace a non-empty directory: move an existing one (a rerun of the same
    // step) aside first, and drop it only once the new one is in place.
    const fs::path old = fs::path(out_dir) / (".old-" + name + "-" + std::to_string(::getpid()));
    const bool had = fs::exists(final_path, ec);
    if (had) {
      fs::remove_all(old, ec);
      fs::rename(final_path, old, ec);
      if (ec) fail(final_path.string(), ": cannot move the old checkpoint aside (", ec.message(), ")");
    }
    fs::rename(tmp, final_path, ec);
    if (ec) {
      std::error_code ec2;
      if (had) fs::rename(old, final_path, ec2);
      fail(final_path.string(), ": cannot rename into place (", ec.message(), ")");
    }
    fsync_dir(out_dir);
    if (had) fs::remove_all(old, ec);
  } catch (const Error& e) {
    fs::remove_all(tmp, ec);
    fail("checkpoint ", final_path.string(), " not written (earlier checkpoints are kept): ", e.what());
  } catch (const std::exception& e) {
    fs::remove_all(tmp, ec);
    fail("checkpoint ", final_path.string(), " not written (earlier checkpoints are kept): ", e.what());
  }
  return final_path.string();
}


std::string save_checkpoint(const std::string& out_dir, int64_t step, const ParamSet& ps, const AdamW& opt,
                            const json& trainer_state, const CheckpointSource& src) {
  return write_checkpoint_dir(out_dir, step, src, [&](const std::string&, const PutFile& put) {
    json cfg = ps.config.to_json();
    cfg["architectures"] = {ps.config.num_labels > 0 ? "LlamaForSequenceClassification" : "LlamaForCausalLM"};
    cfg["model_type"] = "llama";
    cfg["hidden_act"] = "silu";
    cfg["torch_dtype"] = "float32";
    put("config.json", dump_json(cfg, 2) + "\n");
    {
      std::vector<SafetensorsOut> weights;
      for (const Param& p : ps.params) weights.push_back(f32_tensor(p.name, shape_of(p), p.value));
      put("model.safetensors", safetensors_bytes(weights));
    }
    put("optimizer.safetensors", optimizer_bytes(ps, opt));
    put("trainer_state.json", dump_json(trainer_state, 2) + "\n");
  });
}

std::string save_lora_checkpoint(const std::string& out_dir, int64_t step, const LoraAdapter& adapter,
                                 const ModelConfig& base, const AdamW& opt, const json& trainer_state,
                                 const CheckpointSource& src) {
  return write_checkpoint_dir(out_dir, step, src, [&](const std::string& tmp, const PutFile& put) {
    for (const char* f : {"adapter_model.safetensors", "adapter_config.json"})
      if (src.before_write) src.before_write(tmp + "/" + f);
    save_lora(tmp, adapter, base);
    for (const char* f : {"adapter_model.safetensors", "adapter_config.json"}) fsync_file(tmp + "/" + f);
    put("optimizer.safetensors", optimizer_bytes(adapter.params, opt));
    put("trainer_state.json", dump_json(trainer_state, 2) + "\n");
  });
}

std::string resolve_checkpoint(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(fs::path(path) / "trainer_state.json", ec)) return path;
  if (!fs::is_directory(path, ec)) fail("--resume: ", path, ": no such directory");
  int64_t best = -1;
  std::string found;
  for (const auto& e : fs::directory_iterator(path, ec)) {
    const std::string n = e.path().filename().string();
    if (n.rfind("checkpoint-", 0) != 0) continue;
    const std::string digits = n.substr(11);
    if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!fs::is_regular_file(e.path() / "trainer_state.json", ec)) continue;
    const int64_t s = std::stoll(digits);
    if (s > best) best = s, found = e.path().string();
  }
  if (found.empty()) fail("--resume: ", path, ": no checkpoint-STEP directory with a trainer_state.json in it");
  return found;
}

json read_trainer_state(const std::string& ckpt_dir) {
  const std::string p = (fs::path(ckpt_dir) / "trainer_state.json").string();
  json j = parse_json(read_all(p), p);
  if (!j.is_object() || !j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() < 0)
    fail(p, ": not a camelid trainer state (no step)");
  return j;
}

void load_optimizer(const std::string& ckpt_dir, AdamW& opt, int64_t steps) {
  const std::string p = (fs::path(ckpt_dir) / "optimizer.safetensors").string();
  MappedFile f(p);
  const auto entries = parse_safetensors(f);
  for (AdamW::Slot& s : opt.slots()) {
    for (auto [suffix, dst] : {std::pair<const char*, std::vector<float>*>{".exp_avg", &s.m}, {".exp_avg_sq", &s.v}}) {
      auto it = entries.find(s.name + suffix);
      if (it == entries.end()) fail(p, ": no tensor ", s.name, suffix);
      if (it->second.dtype != "F32" || it->second.nbytes != dst->size() * 4)
        fail(p, ": tensor ", s.name, suffix, " is not f32 of ", dst->size(), " elements");
      std::memcpy(dst->data(), it->second.data, it->second.nbytes);
    }
  }
  opt.set_steps(steps);
}

}  // namespace camelid::train

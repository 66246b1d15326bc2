#pragma once
// Training checkpoints as Hugging Face model directories plus optimizer state, written atomically.
//
// Layout of OUT (--out):
//   OUT/checkpoint-STEP/config.json            ModelConfig (+ architectures, model_type, torch_dtype)
//   OUT/checkpoint-STEP/model.safetensors      f32 weights under Hugging Face names
//   OUT/checkpoint-STEP/tokenizer*.json, ...   copied from the source model / --tokenizer dir
//   OUT/checkpoint-STEP/optimizer.safetensors  AdamW moments: NAME.exp_avg, NAME.exp_avg_sq (f32)
//   OUT/checkpoint-STEP/trainer_state.json     step, data order, schedule, optimizer settings, history
//   OUT/loss.svg                               the loss curve, rewritten at each checkpoint
// A checkpoint directory is built as OUT/.tmp-checkpoint-STEP-PID (every file fsynced), then
// renamed into place and OUT fsynced: a crash or a full disk leaves the previous checkpoints as
// they were and at most a .tmp-* directory behind.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "model/lora.h"
#include "model/params.h"
#include "train/adamw.h"

namespace camelid::train {

// Writes bytes to path (created or truncated), flushes and fsyncs it; throws Error naming the
// path and the system's reason (e.g. "No space left on device").
void write_file_durable(const std::string& path, const std::string& bytes);
void fsync_dir(const std::string& dir);

struct CheckpointSource {
  std::string tokenizer_dir;  // tokenizer files to copy (empty: none)
  // Called before each file is written with its path (tests inject failures by throwing).
  std::function<void(const std::string&)> before_write;
};

// Writes OUT/checkpoint-STEP atomically and returns its path. On failure nothing but the
// temporary directory is touched (and that is removed); throws Error naming the checkpoint.
std::string save_checkpoint(const std::string& out_dir, int64_t step, const ParamSet& ps, const AdamW& opt,
                            const nlohmann::json& trainer_state, const CheckpointSource& src);

// LoRA mode (camelid finetune --lora-r): OUT/checkpoint-STEP/ is a PEFT adapter directory
// (adapter_config.json + adapter_model.safetensors, model/lora_io.h) with the same
// optimizer.safetensors (moments of the adapter's tensors), trainer_state.json and tokenizer files.
std::string save_lora_checkpoint(const std::string& out_dir, int64_t step, const LoraAdapter& adapter,
                                 const ModelConfig& base, const AdamW& opt, const nlohmann::json& trainer_state,
                                 const CheckpointSource& src);

// The atomic directory protocol both use: fill writes the files into the temporary directory
// (through put, or directly then fsynced); the tokenizer files are copied after it.
using PutFile = std::function<void(const std::string& file, const std::string& bytes)>;
std::string write_checkpoint_dir(const std::string& out_dir, int64_t step, const CheckpointSource& src,
                                 const std::function<void(const std::string& tmp, const PutFile& put)>& fill);

// A checkpoint directory from what --resume names: a checkpoint directory itself (holding
// trainer_state.json) or an --out directory (its checkpoint with the highest step).
std::string resolve_checkpoint(const std::string& path);

nlohmann::json read_trainer_state(const std::string& ckpt_dir);
// Fills opt's moments from ckpt_dir/optimizer.safetensors (every trainable parameter must be
// there with its shape) and sets its step count.
void load_optimizer(const std::string& ckpt_dir, AdamW& opt, int64_t steps);

}  // namespace camelid::train

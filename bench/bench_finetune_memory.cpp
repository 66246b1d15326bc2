// Resident memory of fine-tuning, measured next to what model/train_memory predicts (not a Google
// Benchmark: one run per mode).
//   bench_finetune_memory CAMELID F32_MODEL QUANT_GGUF SFT.jsonl [B 4] [T 128] [r 16]
// Runs `CAMELID finetune` for 2 steps of B rows of T tokens in four modes (full from the f32
// model, full from the GGUF (dequantized to f32 parameters), LoRA r over the f32 model, QLoRA r
// over the GGUF; LoRA on q,k,v,o) and reports each child's peak RSS (wait4's ru_maxrss) beside
// the prediction for that shape; one JSON line per mode.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/lora.h"
#include "model/train_memory.h"
#include "model/weights.h"

using namespace camelid;

namespace {

// Peak RSS in bytes of `argv` run to completion (stdout/stderr to /dev/null); -1 on failure.
double peak_rss(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr)) _exit(126);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
  return double(ru.ru_maxrss) * 1024.0;  // KiB on Linux
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s CAMELID F32_MODEL QUANT_GGUF SFT.jsonl [B] [T] [r]\n", argv[0]);
    return 2;
  }
  const std::string camelid = argv[1], f32 = argv[2], quant = argv[3], data = argv[4];
  const int B = argc > 5 ? std::atoi(argv[5]) : 4, T = argc > 6 ? std::atoi(argv[6]) : 128,
            r = argc > 7 ? std::atoi(argv[7]) : 16;
  LoraConfig lc;
  lc.r = r, lc.alpha = 2.0 * r;
  lc.targets = {LoraTarget::Q, LoraTarget::K, LoraTarget::V, LoraTarget::O};
  const auto wf = load_model(f32), wq = load_model(quant);
  struct Mode {
    const char* name;
    std::string model;
    bool lora;
    TrainMemory predicted;
  };
  const Mode modes[] = {{"full", f32, false, full_training_memory(wf->config, B, T)},
                        {"full-from-quantized", quant, false, full_training_memory(wq->config, B, T)},
                        {"lora", f32, true, lora_training_memory(*wf, lc, B, T)},
                        {"qlora", quant, true, lora_training_memory(*wq, lc, B, T)}};
  for (const Mode& m : modes) {
    std::vector<std::string> args = {camelid, "finetune", "-m", m.model, "--data", data, "-T", std::to_string(T),
                                     "-b", std::to_string(B), "--steps", "2", "-t", "2", "--lr-schedule", "constant"};
    if (m.lora) args.insert(args.end(), {"--lora-r", std::to_string(r), "--lora-targets", "q,k,v,o"});
    const double rss = peak_rss(args);
    const double mib = 1.0 / (1 << 20);
    nlohmann::json j = {{"mode", m.name},
                        {"model", m.model},
                        {"model_parameters", modes[0].predicted.trainable},
                        {"trainable", m.predicted.trainable},
                        {"peak_rss_mib", rss < 0 ? -1.0 : rss * mib},
                        {"predicted_mib",
                         {{"weights", double(m.predicted.weights) * mib},
                          {"grads", double(m.predicted.grads) * mib},
                          {"adam", double(m.predicted.adam) * mib},
                          {"activations", double(m.predicted.activations) * mib},
                          {"total", double(m.predicted.total()) * mib}}}};
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }
}

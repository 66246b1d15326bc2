#include "train/step_common.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "train/checkpoint.h"

namespace camelid::train {

using json = nlohmann::json;

uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

StepUpdate clipped_update(ParamSet& ps, AdamW& opt, const LrSchedule& schedule, double clip, int64_t step_index,
                          double loss, const std::string& last_ckpt) {
  StepUpdate u;
  u.grad_norm = clip_grad_norm(ps, clip);
  if (!std::isfinite(loss) || !std::isfinite(u.grad_norm)) {
    const std::string kept = last_ckpt.empty() ? "no checkpoint was written" : "last good checkpoint: " + last_ckpt;
    fail("step ", step_index + 1, ": loss ", loss, ", grad norm ", u.grad_norm,
         " is not finite; stopped before updating the weights (", kept, ")");
  }
  u.lr = schedule.at(int(step_index));
  opt.step(ps, u.lr);
  return u;
}

json schedule_json(const LrSchedule& s) {
  const char* kinds[] = {"cosine", "constant"};
  return {{"kind", kinds[int(s.kind)]}, {"lr", s.lr}, {"min_lr", s.min_lr}, {"warmup", s.warmup}, {"total", s.total}};
}

json optimizer_json(const AdamWConfig& c, double clip, int64_t steps) {
  return {{"type", "adamw"},
          {"beta1", c.beta1},
          {"beta2", c.beta2},
          {"eps", c.eps},
          {"weight_decay", c.weight_decay},
          {"clip", clip},
          {"steps", steps}};
}

json curve_json(const Curve& c) {
  json a = json::array();
  for (auto [s, v] : c) a.push_back({s, v});
  return a;
}

void expect_state(const json& st, const std::string& where, const char* key, const json& want, const char* flag) {
  if (!st.contains(key) || st[key] != want)
    fail("--resume: ", where, " has ", key, " = ", st.contains(key) ? st[key].dump() : "(none)", " but this run has ",
         want.dump(), " (", flag, " must match to continue the same data order)");
}

Curve curve_from_state(const json& st, const char* which) {
  Curve c;
  if (!st.contains("history") || !st["history"].is_object() || !st["history"].contains(which) ||
      !st["history"][which].is_array())
    return c;
  for (const auto& p : st["history"][which])
    if (p.is_array() && p.size() == 2 && p[0].is_number() && p[1].is_number())
      c.emplace_back(p[0].get<double>(), p[1].get<double>());
  return c;
}

int64_t optimizer_steps_in_state(const json& st, int64_t step) {
  if (st.contains("optimizer") && st["optimizer"].is_object() && st["optimizer"].contains("steps") &&
      st["optimizer"]["steps"].is_number_integer())
    return st["optimizer"]["steps"].get<int64_t>();
  return step;
}

void write_loss_plot(const std::string& out_dir, const Curve& train, const Curve& val) {
  const std::string svg = (std::filesystem::path(out_dir) / "loss.svg").string(), tmp = svg + ".tmp";
  try {
    write_file_durable(tmp, loss_svg(train, val));
    std::filesystem::rename(tmp, svg);
  } catch (const std::exception&) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
  }
}

}  // namespace camelid::train

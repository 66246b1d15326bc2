#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "train/distributed.h"
#include "train/loss_plot.h"
#include "train/step_common.h"

namespace camelid::train {

using json = nlohmann::json;

namespace {
ParamSet config_only(const ModelConfig& c) {
  ParamSet ps;
  ps.config = c;
  return ps;
}
}  // namespace

Trainer::Trainer(ParamSet ps, Windows train, std::optional<Windows> val, TrainOptions o)
    : Trainer(std::move(ps), LoraTraining{}, std::make_shared<WindowRows>(std::move(train)),
              val ? std::make_shared<WindowRows>(std::move(*val)) : nullptr, std::move(o)) {}

Trainer::Trainer(ParamSet ps, std::shared_ptr<const RowSource> train, std::shared_ptr<const RowSource> val,
                 TrainOptions o)
    : Trainer(std::move(ps), LoraTraining{}, std::move(train), std::move(val), std::move(o)) {}

Trainer::Trainer(LoraTraining lora, std::shared_ptr<const RowSource> train, std::shared_ptr<const RowSource> val,
                 TrainOptions o)
    : Trainer(config_only(lora.base ? lora.base->config : ModelConfig{}), lora, std::move(train), std::move(val),
              std::move(o)) {}

Trainer::Trainer(ParamSet ps, LoraTraining lora, std::shared_ptr<const RowSource> train,
                 std::shared_ptr<const RowSource> val, TrainOptions o)
    : ps_(std::move(ps)),
      lora_(std::move(lora)),
      train_(std::move(train)),
      val_(std::move(val)),
      o_(std::move(o)),
      opt_(trained(), o_.adamw),
      model_(ps_.config),
      order_(train_ ? train_->count() : 0, o_.shuffle, o_.seed) {
  if (!train_ || train_->count() < 1) fail("no training rows");
  if (lora_.adapter && !lora_.base) fail("LoRA training without a base model");
  if (o_.batch < 1) fail("--batch: must be >= 1, got ", o_.batch);
  if (o_.grad_accum < 1) fail("--grad-accum: must be >= 1, got ", o_.grad_accum);
  if (o_.steps < 1 || o_.steps > INT32_MAX) fail("--steps: must be in 1..2^31-1, got ", o_.steps);
  if (o_.eval_batches < 1) fail("--eval-batches: must be >= 1, got ", o_.eval_batches);
  if (!(o_.clip >= 0) || !std::isfinite(o_.clip)) fail("--clip: must be >= 0, got ", o_.clip);
  if (o_.eval_every < 0 || o_.save_every < 0) fail("--eval-every / --save-every: must be >= 0");
  if (train_->seq_len() > ps_.config.max_seq_len && ps_.config.max_seq_len > 0)
    fail("--seq-len ", train_->seq_len(), " exceeds the model's context (max_position_embeddings ",
         ps_.config.max_seq_len, ")");
  if (val_ && val_->seq_len() != train_->seq_len()) fail("validation windows differ in length from training's");
  if (val_ && val_->count() < 1) fail("no validation rows");
  o_.schedule.total = int(o_.steps);
  Comm& comm = Comm::world();
  if (o_.global_rows() % comm.size() != 0)
    fail("--batch x --grad-accum = ", o_.global_rows(), " rows per step do not split evenly over ", comm.size(),
         " ranks");
  // Every rank starts from rank 0's weights (the same seed or file gives the same, but a rank
  // that read a different file must not train a different model).
  for (Param& p : trained().params) comm.broadcast(p.value.data(), p.value.size() * sizeof(float));
  if (lora_.adapter) {
    for (const Param& p : lora_.adapter->params.params)
      if (!p.trainable || p.grad.size() != p.value.size()) fail("LoRA parameter ", p.name, " has no gradient buffer");
    lora_.base->lora = lora_.adapter;
    view_ = lora_.base;
  } else {
    view_ = weights_view(ps_);
  }
  tokens_.resize(size_t(o_.batch) * size_t(train_->seq_len()));
  targets_.resize(tokens_.size());
}

void Trainer::fill_rows(int64_t first_row, int rows, const RowSource& w, WindowOrder* order) {
  const int T = w.seq_len();
  for (int r = 0; r < rows; ++r)
    w.fill(row_index(first_row + r, w, order), tokens_.data() + ptrdiff_t(r) * T, targets_.data() + ptrdiff_t(r) * T);
}

void Trainer::backward() {
  if (lora_.adapter) model_.backward_lora(*view_, *lora_.adapter);
  else model_.backward(*view_, ps_);
}

// Data parallel over the ranks of Comm::world(): rank r takes its contiguous share of the step's
// global rows (in micro-batches of up to `batch`), and the gradients and loss sums are added
// over ranks before clipping, so every rank takes the same optimizer step as one process would.
StepLog Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  Comm& comm = Comm::world();
  const int T = train_->seq_len(), V = ps_.config.vocab_size;
  const int64_t first = step_ * o_.global_rows();
  // The loss is the mean over the step's targets (every rank counts all of them: the rows are
  // known to all); for stream windows that is rows x T.
  int64_t total = 0;
  for (int64_t g = first; g < first + o_.global_rows(); ++g) total += train_->targets(row_index(g, *train_, &order_));
  total = std::max<int64_t>(total, 1);
  const int share = o_.global_rows() / comm.size();
  ParamSet& tp = trained();
  tp.zero_grad();
  double loss_sum = 0;
  for (int r0 = 0; r0 < share; r0 += o_.batch) {
    const int B = std::min(o_.batch, share - r0);
    const int64_t g0 = first + int64_t(comm.rank()) * share + r0;
    fill_rows(g0, B, *train_, &order_);
    // LoRA dropout's mask: a function of the seed and the micro-batch's first global row, so a
    // resumed run draws the same masks as an uninterrupted one.
    model_.set_dropout(true, mix64(o_.seed ^ mix64(uint64_t(g0))));
    model_.forward(*view_, tokens_.data(), B, T);
    loss_sum += cross_entropy(model_.logits(), targets_.data(), B * T, V, float(1.0 / double(total)));
    backward();
  }
  if (comm.size() > 1) {
    for (Param& p : tp.params)
      if (p.trainable) comm.allreduce_sum(p.grad.data(), p.grad.size());
    comm.allreduce_sum(&loss_sum, 1);
  }
  StepLog l;
  l.step = step_ + 1;
  l.loss = loss_sum / double(total);
  const StepUpdate u = clipped_update(tp, opt_, o_.schedule, o_.clip, step_, l.loss, last_ckpt_);
  l.grad_norm = u.grad_norm, l.lr = u.lr;
  ++step_;
  l.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  l.tokens_per_s = l.seconds > 0 ? double(total) / l.seconds : 0;
  train_curve_.emplace_back(double(l.step), l.loss);
  return l;
}

double Trainer::evaluate() {
  if (!val_) fail("no held-out data (--val-data or --val-fraction)");
  Comm& comm = Comm::world();
  const int T = val_->seq_len(), V = ps_.config.vocab_size;
  const int64_t rows = std::min<int64_t>(int64_t(o_.eval_batches) * o_.batch, val_->count());
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) count += val_->targets(r);
  double sum = 0;
  model_.set_dropout(false);
  // Micro-batches go round the ranks; the sums are added over ranks.
  int64_t k = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += o_.batch, ++k) {
    if (k % comm.size() != comm.rank()) continue;
    const int n = int(std::min<int64_t>(o_.batch, rows - r0));
    fill_rows(r0, n, *val_, nullptr);
    model_.forward(*view_, tokens_.data(), n, T);
    sum += cross_entropy(model_.logits(), targets_.data(), n * T, V, 1.0f);
  }
  comm.allreduce_sum(&sum, 1);
  const double v = sum / double(std::max<int64_t>(count, 1));
  val_curve_.emplace_back(double(step_), v);
  return v;
}

json Trainer::state_json() const {
  json j = {{"format", "camelid-trainer-state"},
            {"version", 1},
            {"step", step_},
            {"seed", o_.seed},
            {"shuffle", o_.shuffle},
            {"batch", o_.batch},
            {"grad_accum", o_.grad_accum},
            {"global_rows", o_.global_rows()},
            {"seq_len", train_->seq_len()},
            {"train_windows", train_->count()},
            {"train_tokens", train_->tokens()},
            {"next_row", step_ * o_.global_rows()},
            {"schedule", schedule_json(o_.schedule)},
            {"optimizer", optimizer_json(o_.adamw, o_.clip, opt_.steps())}};
  if (lora_.adapter) j["lora"] = true;
  j["history"] = {{"train", curve_json(train_curve_)}, {"val", curve_json(val_curve_)}};
  return j;
}

void Trainer::resume(const std::string& ckpt_dir) {
  const json st = read_trainer_state(ckpt_dir);
  const std::string where = ckpt_dir + "/trainer_state.json";
  auto expect = [&](const char* key, const json& want, const char* flag) { expect_state(st, where, key, want, flag); };
  if (st.value("lora", false) != bool(lora_.adapter))
    fail("--resume: ", where, lora_.adapter ? " is a full-model checkpoint, not a LoRA one" : " is a LoRA checkpoint, not a full-model one");
  expect("seq_len", train_->seq_len(), "--seq-len");
  expect("global_rows", o_.global_rows(), "--batch x --grad-accum");
  expect("shuffle", o_.shuffle, "--no-shuffle");
  expect("seed", o_.seed, "--seed");
  expect("train_windows", train_->count(), "the training data");
  const int64_t s = st["step"].get<int64_t>();
  if (s > o_.steps) fail("--resume: ", ckpt_dir, " is at step ", s, ", past --steps ", o_.steps);
  load_optimizer(ckpt_dir, opt_, optimizer_steps_in_state(st, s));
  step_ = s;
  train_curve_ = curve_from_state(st, "train");
  val_curve_ = curve_from_state(st, "val");
  last_ckpt_ = ckpt_dir;
}

std::string Trainer::save() {
  if (o_.out_dir.empty()) return {};
  Comm& comm = Comm::world();
  if (!comm.is_root()) {  // one writer; the others wait so that no rank runs ahead of the files
    comm.barrier();
    return last_ckpt_ = (std::filesystem::path(o_.out_dir) / ("checkpoint-" + std::to_string(step_))).string();
  }
  last_ckpt_ = lora_.adapter ? save_lora_checkpoint(o_.out_dir, step_, *lora_.adapter, ps_.config, opt_, state_json(), o_.source)
                             : save_checkpoint(o_.out_dir, step_, ps_, opt_, state_json(), o_.source);
  write_loss_plot(o_.out_dir, train_curve_, val_curve_);
  comm.barrier();
  return last_ckpt_;
}

bool Trainer::run(const std::function<void(const StepLog&)>& on_step, const std::function<bool()>& stop) {
  while (step_ < o_.steps) {
    StepLog l = step();
    const bool last = step_ == o_.steps;
    if (val_ && ((o_.eval_every > 0 && step_ % o_.eval_every == 0) || last)) l.val_loss = evaluate();
    if (on_step) on_step(l);
    // Every rank stops at the same step (a Ctrl-C reaches the ranks at different moments).
    double stopping = stop && stop() ? 1 : 0;
    Comm::world().allreduce_sum(&stopping, 1);
    if (stopping > 0) {
      save();
      return false;
    }
    if (!last && o_.save_every > 0 && step_ % o_.save_every == 0) save();
  }
  save();
  return true;
}

}  // namespace camelid::train

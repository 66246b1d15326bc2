#pragma once
// Training forward and backward of the Llama over B rows of T tokens (causal, positions 0..T-1,
// no KV cache). The forward uses the inference ops and kernels (ops::rmsnorm, ops::rope,
// kernels::matmul) and keeps what the backward needs; each forward op has its backward in
// model/ops_backward.h. The weights are any ModelWeights: weights_view(ParamSet) for full
// training (f32), or a frozen base in any format camelid loads with a LoRA adapter attached
// (ModelWeights::lora; LoRA/QLoRA): the projections go through model/lora.h's linear(), the seam
// inference uses too.
#include <array>
#include <cstdint>
#include <vector>

#include "model/lora.h"
#include "model/params.h"
#include "model/weights.h"

namespace camelid {

class LlamaTrain {
 public:
  explicit LlamaTrain(const ModelConfig& c);

  // tokens: [B*T] row-major. Keeps every activation the backward needs.
  void forward(const ModelWeights& w, const int* tokens, int B, int T);
  // [B*T, vocab] logits of the last forward (none for a reward model: config.num_labels > 0). A loss (cross_entropy) overwrites them in place with
  // dLoss/dlogits before backward.
  float* logits() { return logits_.data(); }
  // [B*T, dim]: the final hidden states after the last norm (input of the classifier).
  const float* hidden() const { return xf_.data(); }

  // Backpropagates dLoss/dlogits (in logits()) and, if given, dLoss/dhidden ([B*T, dim], added to
  // the classifier's input gradient; for a head on the hidden states), accumulating (+=) into the
  // grad of every trainable parameter of `grads` (the set `w` views, same names).
  void backward(const ModelWeights& w, ParamSet& grads, const float* dhidden = nullptr);
  // LoRA/QLoRA: the base of `w` is frozen (no gradient computed for any of its tensors) and the
  // gradients of its adapter w.lora are accumulated (+=) into `adapter`, which must be that same
  // adapter (ModelWeights::lora = a shared_ptr to it).
  void backward_lora(const ModelWeights& w, LoraAdapter& adapter, const float* dhidden = nullptr);

  // The adapter's dropout (its config's lora_dropout) in forward/backward: on by default, with a
  // mask that changes every forward (numbered from 0 after this call) and depends on seed. Off
  // for evaluation (validation loss).
  void set_dropout(bool enabled, uint64_t seed = 0) { dropout_on_ = enabled, dropout_seed_ = seed, n_forward_ = 0; }

 private:
  void backward_impl(const ModelWeights& w, ParamSet* base, LoraAdapter* adapter, const float* dhidden);

  ModelConfig c_;
  bool dropout_on_ = true;
  uint64_t dropout_seed_ = 0, n_forward_ = 0;
  LoraDropout dropout_;               // of the last forward
  std::vector<float> inv_freq_;
  int B_ = 0, T_ = 0;
  std::vector<int> tokens_;
  std::vector<int> pos_;              // [B*T]: 0..T-1 per row
  struct LayerActs {                  // what each layer's backward needs
    std::vector<float> x, xn, q, k, v, probs, att, x2, xn2, gate, up;
    std::vector<float> r1, r2;        // 1/rms per row of each norm
    std::array<std::vector<float>, kLoraTargetCount> lora_h;  // A·dropout(x) per adapted module
  };
  std::vector<LayerActs> acts_;
  std::vector<float> xlast_, xf_, rf_, logits_;
  std::vector<float> act_;            // swiglu output (recomputed per layer in backward)
  // Gradient buffers, reused by every layer.
  std::vector<float> dx_, dx2_, dxn_, dq_, dk_, dv_, datt_, dgate_, dup_;
};

// Token cross-entropy. For each row r with targets[r] >= 0: loss += -log softmax(logits[r])[t];
// logits[r] is replaced by scale * (softmax(logits[r]) - onehot(t)); rows with targets[r] < 0
// (ignored, e.g. prompt tokens in SFT) become 0. Returns the summed loss (double).
double cross_entropy(float* logits, const int* targets, int rows, int vocab, float scale);

}  // namespace camelid

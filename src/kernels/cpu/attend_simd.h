#pragma once
// Attention of several query rows over the same keys and values (the query heads sharing a kv
// head, for consecutive tokens of one sequence), shared by the AVX-512 and AVX2 builds (included
// with their `V` traits, as matmul_simd.h).
//
// Each row's arithmetic is one fixed sequence, whatever the other rows of its call: scores in
// groups of L positions from position 0 (a group whose L dot products reduce together; positions
// past the row's last whole group one dot product each), times scale; softmax of the row; then
// the values weighted and summed in position order into accumulators of L lanes. The rows only
// share the order in which memory is visited: positions go in blocks that fit L1, and every row
// takes its turn on a block before the next block is loaded, so K and V are read from L2/DRAM
// once per call instead of once per row. An accumulator parked in `out` between two blocks comes
// back with the same bits, so a row's result is the same alone (decode), in any tile of a prefill,
// and with any chunking or thread count.
#include <algorithm>
#include <immintrin.h>

#include "kernels/kernels.h"
#include "kernels/cpu/softmax.h"

namespace camelid::kernels::simd {

template <class V>
inline float dot(const float* a, const float* b, int n) {
  typename V::vec acc = V::zero();
  int i = 0;
  for (; i + V::lanes <= n; i += V::lanes) acc = V::fma(V::load(a + i), V::load(b + i), acc);
  float s = V::sum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Scores of one row for positions [p0, p1) (p0 a multiple of L; p1 <= n, the row's length).
template <class V>
inline void attend_scores(const float* q, const KVRows& k, int n, int hd, float scale, int p0, int p1, float* s) {
  constexpr int L = V::lanes;
  int p = p0;
  if (hd % L == 0)  // L positions at a time: their L dot products reduce together in one pass
    for (; p + L <= p1 && p + L <= n; p += L) {
      typename V::vec acc[L];
      for (int j = 0; j < L; ++j) acc[j] = V::zero();
      for (int i = 0; i < hd; i += L) {
        const typename V::vec qi = V::load(q + i);
        for (int j = 0; j < L; ++j) acc[j] = V::fma(qi, V::load(k.at(p + j) + i), acc[j]);
      }
      V::store(s + p, V::mul(V::sums(acc), V::set1(scale)));
    }
  for (; p < p1; ++p) s[p] = dot<V>(q, k.at(p), hd) * scale;
}

// out += sum over p in [p0, p1) of s[p] v_p, in position order.
template <class V>
inline void attend_values(const float* s, const KVRows& v, int hd, int p0, int p1, float* out) {
  constexpr int L = V::lanes, R = 8;
  if (hd % L == 0 && hd <= R * L) {  // a head of up to R vectors stays in registers over the block
    const int nv = hd / L;
    typename V::vec acc[R];
    for (int j = 0; j < R; ++j) acc[j] = j < nv ? V::load(out + j * L) : V::zero();
    for (int p = p0; p < p1; ++p) {
      const typename V::vec a = V::set1(s[p]);
      const float* vp = v.at(p);
      for (int j = 0; j < R; ++j)
        if (j < nv) acc[j] = V::fma(a, V::load(vp + j * L), acc[j]);
    }
    for (int j = 0; j < nv; ++j) V::store(out + j * L, acc[j]);
    return;
  }
  for (int p = p0; p < p1; ++p) {
    const typename V::vec a = V::set1(s[p]);
    const float* vp = v.at(p);
    int i = 0;
    for (; i + L <= hd; i += L) V::store(out + i, V::fma(a, V::load(vp + i), V::load(out + i)));
    for (; i < hd; ++i) out[i] += s[p] * vp[i];
  }
}

// attend_values for RT rows over the same positions [p0, p1), head of nv <= 4 vectors: each
// value vector is loaded once for the RT rows; each row's accumulators see the same fma sequence.
template <class V, int RT>
inline void attend_values_tile(const float* const* s, const KVRows& v, int nv, int p0, int p1, float* const* out) {
  constexpr int L = V::lanes;
  typename V::vec acc[RT][4];
  for (int r = 0; r < RT; ++r)
    for (int j = 0; j < 4; ++j) acc[r][j] = j < nv ? V::load(out[r] + j * L) : V::zero();
  for (int p = p0; p < p1; ++p) {
    const float* vp = v.at(p);
    for (int j = 0; j < 4; ++j)
      if (j < nv) {
        const typename V::vec x = V::load(vp + j * L);
        for (int r = 0; r < RT; ++r) acc[r][j] = V::fma(V::set1(s[r][p]), x, acc[r][j]);
      }
  }
  for (int r = 0; r < RT; ++r)
    for (int j = 0; j < nv; ++j) V::store(out[r] + j * L, acc[r][j]);
}

template <class V>
void attend_rows(const AttendRow* rows, int nrows, const KVRows& k, const KVRows& v, int hd, float scale, float* scores) {
  constexpr int L = V::lanes;
  // Positions per block: a block of keys (or values) of one head fits comfortably in L1.
  const int pb = std::max(L, int((16 << 10) / (size_t(hd) * 4)) / L * L);
  int nmax = 0;
  for (int r = 0; r < nrows; ++r) nmax = std::max(nmax, rows[r].n);
  auto row_scores = [&](int r) { return scores + size_t(r) * nmax; };
  for (int p0 = 0; p0 < nmax; p0 += pb)
    for (int r = 0; r < nrows; ++r)
      if (p0 < rows[r].n)
        attend_scores<V>(rows[r].q, k, rows[r].n, hd, scale, p0, std::min(p0 + pb, rows[r].n), row_scores(r));
  for (int r = 0; r < nrows; ++r) {
    softmax(row_scores(r), rows[r].n);
    std::fill_n(rows[r].out, hd, 0.f);
  }
  // Values: rows by fours where a head is up to 4 vectors (16 accumulators), over the positions
  // the four share in this block, each row then finishing its own; else row by row.
  constexpr int RT = 4;
  const bool tiled = hd % L == 0 && hd <= 4 * L && sizeof(typename V::vec) == 64;
  for (int p0 = 0; p0 < nmax; p0 += pb) {
    int r = 0;
    if (tiled)
      for (; r + RT <= nrows; r += RT) {
        int common = p0 + pb;
        const float* s4[RT];
        float* o4[RT];
        for (int i = 0; i < RT; ++i) {
          common = std::min(common, rows[r + i].n);
          s4[i] = row_scores(r + i);
          o4[i] = rows[r + i].out;
        }
        if (common > p0) attend_values_tile<V, RT>(s4, v, hd / L, p0, common, o4);
        for (int i = 0; i < RT; ++i) {
          const int end = std::min(p0 + pb, rows[r + i].n);
          if (end > std::max(p0, common)) attend_values<V>(s4[i], v, hd, std::max(p0, common), end, o4[i]);
        }
      }
    for (; r < nrows; ++r)
      if (p0 < rows[r].n) attend_values<V>(row_scores(r), v, hd, p0, std::min(p0 + pb, rows[r].n), rows[r].out);
  }
}

}  // namespace camelid::kernels::simd

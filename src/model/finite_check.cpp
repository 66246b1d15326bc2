#include "model/finite_check.h"

#include "core/error.h"

namespace camelid {

namespace {

// Big tensors are scanned on every thread: the scan is bound by memory bandwidth, which one
// core does not saturate. Small ones (norms, tests, fuzzing) stay on the calling thread.
constexpr int64_t kParallelElements = int64_t(1) << 20;

size_t row_bad(const Tensor& t, int64_t r) { return count_nonfinite(t.dtype, t.row(r), size_t(t.cols)); }

}  // namespace

void require_finite(const Tensor& t, const std::string& where) {
  if (t.empty() || t.numel() == 0) return;
  size_t bad = 0;
#pragma omp parallel for schedule(static) reduction(+ : bad) if (t.numel() >= kParallelElements)
  for (int64_t r = 0; r < t.rows; ++r) bad += row_bad(t, r);
  if (bad == 0) return;
  for (int64_t r = 0; r < t.rows; ++r) {
    if (row_bad(t, r) == 0) continue;
    std::vector<float> row(size_t(t.cols));
    to_f32(t.dtype, t.row(r), row.data(), row.size());
    size_t c = 0;
    while (c < row.size() && (row[c] - row[c]) == 0.f) ++c;  // x - x is NaN for NaN and Inf
    const char* what = c < row.size() && row[c] != row[c] ? "NaN" : "Inf";
    if (t.rows == 1)
      fail(where, ": ", bad, " NaN/Inf value", bad == 1 ? "" : "s", " (first: ", what, " at index ", c,
           "); the checkpoint is corrupt");
    fail(where, ": ", bad, " NaN/Inf value", bad == 1 ? "" : "s", " (first: ", what, " at row ", r, ", column ", c,
         "); the checkpoint is corrupt");
  }
}

std::vector<int> nonfinite_rows(const Tensor& t) {
  std::vector<int> rows;
  if (t.empty() || t.numel() == 0) return rows;
  std::vector<char> bad(size_t(t.rows));
#pragma omp parallel for schedule(static) if (t.numel() >= kParallelElements)
  for (int64_t r = 0; r < t.rows; ++r) bad[size_t(r)] = row_bad(t, r) != 0;
  for (int64_t r = 0; r < t.rows; ++r)
    if (bad[size_t(r)]) rows.push_back(int(r));
  return rows;
}

std::string describe_rows(const std::vector<int>& rows) {
  std::string s = rows.size() == 1 ? "row " : "rows ";
  for (size_t i = 0; i < rows.size() && i < 8; ++i) s += (i ? ", " : "") + std::to_string(rows[i]);
  if (rows.size() > 8) s += " and " + std::to_string(rows.size() - 8) + " more";
  return s;
}

}  // namespace camelid

#pragma once
// The interleaved ("panel") layout of quantized weights that the decode kernels stream
// (qgemv_panel_simd.h). Row-major blocks make a decode kernel read 8 row streams, unpack each
// row's block, and reduce each row's products horizontally; in a panel, the blocks of 8
// consecutive rows at one position are regrouped field by field so that one 32-byte load holds 4
// quant bytes of each of the 8 rows (a row per 32-bit lane: a broadcast of 4 activation bytes
// multiplies all 8 rows, and sums build up in their row's lane with no reduction), and the 8
// rows' scales lie side by side (one load and one widening instead of 8 scalar loads).
//
// A panel block is 8 blocks' bytes: each field of the block (qlayout.h's byte layout), in the
// order listed, as `bytes / unit` units, each unit holding the `unit` bytes of rows 0..7 in turn.
// Same bytes as the row-major blocks, so a model's size does not change.
#include <cstdint>

#include "core/dtype.h"

namespace camelid::kernels::panel {

constexpr int kRows = 8;

struct Field {
  int offset, bytes, unit;  // in the row-major block
};
struct PanelLayout {
  int n = 0;  // fields (0: the type has no panel layout)
  Field f[5];
};

// The types with a panel decode kernel, and their fields (scales first, then quants).
inline PanelLayout layout(DType t) {
  switch (t) {
    case DType::Q4_0: return {2, {{0, 2, 2}, {2, 16, 4}}};                                    // d, qs
    case DType::Q4_1: return {3, {{0, 2, 2}, {2, 2, 2}, {4, 16, 4}}};                        // d, m, qs
    case DType::Q5_0: return {3, {{0, 2, 2}, {2, 4, 4}, {6, 16, 4}}};                        // d, qh, qs
    case DType::Q5_1: return {4, {{0, 2, 2}, {2, 2, 2}, {4, 4, 4}, {8, 16, 4}}};              // d, m, qh, qs
    case DType::Q8_0: return {2, {{0, 2, 2}, {2, 32, 4}}};                                    // d, qs
    case DType::Q4_K: return {4, {{0, 2, 2}, {2, 2, 2}, {4, 12, 1}, {16, 128, 4}}};           // d, dmin, scales, qs
    case DType::Q5_K: return {5, {{0, 2, 2}, {2, 2, 2}, {4, 12, 1}, {16, 32, 4}, {48, 128, 4}}};  // d, dmin, scales, qh, qs
    case DType::Q6_K: return {4, {{208, 2, 2}, {192, 16, 1}, {0, 128, 4}, {128, 64, 4}}};     // d, scales, ql, qh
    case DType::Q2_K: return {4, {{80, 2, 2}, {82, 2, 2}, {0, 16, 4}, {16, 64, 4}}};           // d, dmin, scales, qs
    case DType::Q3_K: return {4, {{108, 2, 2}, {96, 12, 4}, {0, 32, 4}, {32, 64, 4}}};         // d, scales, hmask, qs
    case DType::IQ4_NL: return {2, {{0, 2, 2}, {2, 16, 4}}};                                  // d, qs
    case DType::IQ4_XS: return {4, {{0, 2, 2}, {2, 2, 2}, {4, 4, 4}, {8, 128, 4}}};           // d, scales_h, scales_l, qs
    default: return {};
  }
}

// Whether batches of more than 4 activation rows take the panel kernel too (4 rows per pass) rather
// than the packed kernel on rows read back. Measured on Zen 3, bench-450m prefill of 128 tokens:
// Q4_0 1.24x, Q8_0 1.08x, Q4_K_M 1.09x, Q4_1 1.35x, Q5_0 1.08x the row-major kernels' with panels; Q5_K_M 0.75x with
// Q5_K panels (its fifth bits unpacked again for every 4 rows) and 0.9x reading them back. Q2_K
// and Q3_K (2-bit fields unpacked for every 4 rows): bench-450m Q2_K 168-187 against 200-213.
inline bool for_batches(DType t) { return t != DType::Q5_K && t != DType::Q2_K && t != DType::Q3_K; }

}  // namespace camelid::kernels::panel

// Kernel mxfp4_down_combine_gemv_<T>: decode-time down projection of the K selected experts, bias,
// times the router weights, summed over the experts: one output row per token, in one kernel.
//   y[n, d] = sum_k weights[n, k] * (Wd[idx[n, k], d] . h[n, k] + bd[idx[n, k], d])
//
// Template: T (weights, bias, output dtype), HIDDEN (D), INTER (I), TOPK (K).
// Inputs:  h [N, K, I] float32 (from mxfp4_gate_up_swiglu); idx [N, K] uint32; weights [N, K] T;
//          blocks [E, D, I/8] uint32; scales [E, D, I/32] uint8; bias [E, D] T.
// Output:  y [N, D] T.
// Launch assumptions (engine/metal_kernels/launch.py): threadgroup (32 * K, 1, 1): SIMD-group k
//   handles slot k; grid (D / 4 * 32 * K, N, 1): each threadgroup makes 4 outputs of one token.
//   I % 32 == 0, D % 4 == 0. The K partial sums meet in threadgroup memory, added in slot order.
constexpr int ROWS = 4;          // outputs per threadgroup
constexpr int NB = INTER / 32;   // blocks per row
threadgroup float partial[TOPK][ROWS];

const uint lane = thread_index_in_simdgroup;
const uint k = simdgroup_index_in_threadgroup;
const uint n = threadgroup_position_in_grid.y;
const uint d0 = threadgroup_position_in_grid.x * ROWS;
const uint e = idx[n * TOPK + k];

const size_t row0 = size_t(e) * HIDDEN + d0;
const device uint4* w = (const device uint4*)(blocks) + row0 * NB;
const device uint8_t* s = scales + row0 * NB;
const device float* hr = h + (size_t(n) * TOPK + k) * INTER;

float acc[ROWS];
for (int r = 0; r < ROWS; ++r) acc[r] = 0.0f;
for (int b = lane; b < NB; b += 32) {
  float xv[32];
  for (int i = 0; i < 32; ++i) xv[i] = hr[32 * b + i];
  for (int r = 0; r < ROWS; ++r) {
    acc[r] += mxfp4_block_dot(w[r * NB + b], xv) * mxfp4_e8m0_to_float(s[r * NB + b]);
  }
}
for (int r = 0; r < ROWS; ++r) acc[r] = simd_sum(acc[r]);

if (lane == 0) {
  const float wk = float(weights[n * TOPK + k]);
  for (int r = 0; r < ROWS; ++r) partial[k][r] = wk * (acc[r] + float(bias[row0 + r]));
}
threadgroup_barrier(mem_flags::mem_threadgroup);
if (k == 0 && lane < uint(ROWS)) {
  float y = 0.0f;
  for (int kk = 0; kk < TOPK; ++kk) y += partial[kk][lane];
  out[size_t(n) * HIDDEN + d0 + lane] = T(y);
}

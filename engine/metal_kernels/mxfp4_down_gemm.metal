// Kernel mxfp4_down_gemm_<T>: prefill-time down projection over (token, slot) pairs sorted by
// expert, bias and router weight fused; each pair's row goes back to its unsorted place:
//   y[order[m], d] = weights[order[m]] * (Wd[e_m, d] . h[m] + bd[e_m, d])
// The caller sums y [N * K, D] over the K slots of each token (one MLX reduction).
//
// Template: T (weights, bias dtype), HIDDEN (D), INTER (I), TOPK (K).
// Inputs:  h [M, I] float32 (sorted, from mxfp4_gate_up_swiglu_gemm); order [M] uint32;
//          experts [M] uint32 (ascending); weights [N, K] T; blocks [E, D, I/8] uint32;
//          scales [E, D, I/32] uint8; bias [E, D] T.
// Output:  y [N * K, D] float32.
// Launch assumptions (engine/metal_kernels/launch.py): threadgroup (128, 1, 1) = 4 SIMD-groups in
//   a 2 x 2 layout over a 32 x 32 tile of (sorted pairs) x (output features);
//   grid (D / 32 * 128, ceil(M / 32), 1). I % 32 == 0, D % 32 == 0. As in the gate_up GEMM, one
//   pass per expert present in the row tile.
constexpr int BM = 32, BN = 32, BK = 32;
constexpr int NB = INTER / 32;
threadgroup float As[BM][BK];
threadgroup float Bs[BK][BN];
threadgroup float Cs[BM][BN];

const uint M = order_shape[0];
const uint tid = thread_index_in_threadgroup;
const uint sg = simdgroup_index_in_threadgroup;
const uint sm = sg / 2, sn = sg % 2;
const uint m0 = threadgroup_position_in_grid.y * BM;
const uint n0 = threadgroup_position_in_grid.x * BN;
const uint m_last = min(m0 + BM, M) - 1;
const uint e_last = experts[m_last];
const uint ar = tid / 4, ac = (tid % 4) * 8;

for (uint e = experts[m0];;) {
  const uint m = m0 + ar;
  const bool live = m < M && experts[m] == e;
  const device float* hr = h + size_t(live ? m : m0) * INTER + ac;
  const size_t wrow = size_t(e) * HIDDEN + n0 + ar;
  const device uint* wb = blocks + wrow * (INTER / 8) + tid % 4;
  const device uint8_t* ws = scales + wrow * NB;

  simdgroup_float8x8 acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);

  for (int kb = 0; kb < NB; ++kb) {
    for (int i = 0; i < 8; ++i) As[ar][ac + i] = live ? hr[kb * 32 + i] : 0.0f;
    const uint bits = wb[kb * 4];
    const float scale = mxfp4_e8m0_to_float(ws[kb]);
    for (int p = 0; p < 8; ++p) Bs[ac + p][ar] = mxfp4_e2m1_to_float((bits >> (4 * p)) & 15u) * scale;
    threadgroup_barrier(mem_flags::mem_threadgroup);
    for (int kk = 0; kk < BK; kk += 8) {
      simdgroup_float8x8 a0, a1, b0, b1;
      simdgroup_load(a0, &As[sm * 16][kk], BK);
      simdgroup_load(a1, &As[sm * 16 + 8][kk], BK);
      simdgroup_load(b0, &Bs[kk][sn * 16], BN);
      simdgroup_load(b1, &Bs[kk][sn * 16 + 8], BN);
      simdgroup_multiply_accumulate(acc[0][0], a0, b0, acc[0][0]);
      simdgroup_multiply_accumulate(acc[0][1], a0, b1, acc[0][1]);
      simdgroup_multiply_accumulate(acc[1][0], a1, b0, acc[1][0]);
      simdgroup_multiply_accumulate(acc[1][1], a1, b1, acc[1][1]);
    }
    threadgroup_barrier(mem_flags::mem_threadgroup);
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) simdgroup_store(acc[i][j], &Cs[sm * 16 + 8 * i][sn * 16 + 8 * j], BN);
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // Epilogue: 32 pairs x 32 features, 8 per thread (row ar, features ac ..).
  if (live) {
    const uint pair = order[m];
    const float wk = float(weights[pair]);
    const device T* be = bias + size_t(e) * HIDDEN + n0;
    for (int q = 0; q < 8; ++q) {
      y[size_t(pair) * HIDDEN + n0 + ac + q] = wk * (Cs[ar][ac + q] + float(be[ac + q]));
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);
  if (e == e_last) break;
  uint next = e_last;
  for (uint r = m0; r <= m_last; ++r) {
    const uint er = experts[r];
    if (er > e && er < next) next = er;
  }
  e = next;
}

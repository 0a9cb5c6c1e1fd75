// Kernel mxfp4_gate_up_swiglu_gemm_<T>: prefill-time expert GEMM over (token, slot) pairs sorted
// by expert, with bias and clamped SwiGLU fused:
//   h[m, j] = swiglu(W[e_m, 2j] . x[t_m] + b[e_m, 2j], W[e_m, 2j+1] . x[t_m] + b[e_m, 2j+1])
// where pair m of the sorted order is order[m] = t_m * TOPK + slot and e_m = experts[m].
//
// Template: T (x, bias dtype), HIDDEN (D), INTER (I), TOPK (K).
// Inputs:  x [N, D] T; order [M] uint32 (pair indices sorted by expert); experts [M] uint32
//          (ascending); blocks [E, 2I, D/8] uint32; scales [E, 2I, D/32] uint8; bias [E, 2I] T;
//          swiglu_limit: float scalar.
// Output:  h [M, I] float32, in sorted order.
// Launch assumptions (engine/metal_kernels/launch.py): threadgroup (128, 1, 1) = 4 SIMD-groups, a
//   2 x 2 layout of 16 x 16 sub-tiles over a 32 x 32 tile of (sorted pairs) x (interleaved weight
//   rows); grid (2I / 32 * 128, ceil(M / 32), 1). D % 32 == 0, I % 16 == 0. The K loop steps one
//   MXFP4 block (32) at a time: the tile's 32 weight rows x 16 bytes are dequantised into
//   threadgroup memory once and shared by the 4 SIMD-groups' 8 x 8 simdgroup_matrix products.
//   A row tile can hold pairs of several experts (sorted, so contiguous): one pass per expert,
//   rows of other experts masked to zero and not written.
constexpr int BM = 32, BN = 32, BK = 32;
constexpr int NB = HIDDEN / 32;
threadgroup float As[BM][BK];  // activations of the tile's pairs, one block of D
threadgroup float Bs[BK][BN];  // dequantised weights, k-major (B[k][n] = W[n0 + n][k])
threadgroup float Cs[BM][BN];

const uint M = order_shape[0];
const uint tid = thread_index_in_threadgroup;
const uint sg = simdgroup_index_in_threadgroup;
const uint sm = sg / 2, sn = sg % 2;
const uint m0 = threadgroup_position_in_grid.y * BM;
const uint n0 = threadgroup_position_in_grid.x * BN;  // first weight row of the tile (a gate row)
const uint m_last = min(m0 + BM, M) - 1;
const uint e_last = experts[m_last];
const uint ar = tid / 4, ac = (tid % 4) * 8;  // this thread's 8 activations / 8 weight codes

for (uint e = experts[m0];;) {
  const uint m = m0 + ar;
  const bool live = m < M && experts[m] == e;
  const device T* xr = x + size_t(order[live ? m : m0] / TOPK) * HIDDEN + ac;
  const size_t wrow = size_t(e) * 2 * INTER + n0 + ar;  // the weight row this thread dequantises
  const device uint* wb = blocks + wrow * (HIDDEN / 8) + tid % 4;
  const device uint8_t* ws = scales + wrow * NB;

  simdgroup_float8x8 acc[2][2];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) acc[i][j] = make_filled_simdgroup_matrix<float, 8, 8>(0.0f);

  for (int kb = 0; kb < NB; ++kb) {
    for (int i = 0; i < 8; ++i) As[ar][ac + i] = live ? float(xr[kb * 32 + i]) : 0.0f;
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
    threadgroup_barrier(mem_flags::mem_threadgroup);  // As/Bs are rewritten next step
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) simdgroup_store(acc[i][j], &Cs[sm * 16 + 8 * i][sn * 16 + 8 * j], BN);
  threadgroup_barrier(mem_flags::mem_threadgroup);

  // Epilogue: 32 pairs x 16 outputs, 4 per thread (row ar, outputs (tid % 4) * 4 ..).
  if (live) {
    const device T* be = bias + size_t(e) * 2 * INTER + n0;
    for (int q = 0; q < 4; ++q) {
      const uint j = (tid % 4) * 4 + q;
      const float gate = Cs[ar][2 * j] + float(be[2 * j]);
      const float up = Cs[ar][2 * j + 1] + float(be[2 * j + 1]);
      h[size_t(m) * INTER + n0 / 2 + j] = gptoss_swiglu(gate, up, swiglu_limit);
    }
  }
  threadgroup_barrier(mem_flags::mem_threadgroup);  // Cs is rewritten by the next expert's pass
  if (e == e_last) break;
  // The next expert present in this tile: the smallest id above e (the same for every thread).
  uint next = e_last;
  for (uint r = m0; r <= m_last; ++r) {
    const uint er = experts[r];
    if (er > e && er < next) next = er;
  }
  e = next;
}

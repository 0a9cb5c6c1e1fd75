// Kernel mxfp4_gate_up_swiglu_gemv_<T>: decode-time expert GEMV, gate and up rows together, bias and
// clamped SwiGLU fused. For every (token n, slot k) it computes, for its expert e = idx[n, k]
// (read here on the GPU, so the host never waits for the router):
//   h[n, k, j] = swiglu(W[e, 2j] . x[n] + b[e, 2j], W[e, 2j+1] . x[n] + b[e, 2j+1])
//
// Template: T (x, bias dtype), HIDDEN (D), INTER (I), TOPK (K).
// Inputs:  x [N, D] T; idx [N, K] uint32; blocks [E, 2I, D/8] uint32 (MXFP4, 16-byte blocks);
//          scales [E, 2I, D/32] uint8 (E8M0); bias [E, 2I] T; swiglu_limit: float scalar.
// Output:  h [N, K, I] float32.
// Launch assumptions (engine/metal_kernels/launch.py): threadgroup (64, 1, 1) = 2 SIMD-groups of 32;
//   grid (I / 8 * 64, N * K, 1): each SIMD-group makes 4 outputs (8 interleaved rows) of one pair.
//   D % 32 == 0 (whole blocks) and I % 8 == 0. Lane l takes blocks l, l + 32, ...: for D = 2880
//   (90 blocks) that is 3, 3, ..., 2, 2 blocks per lane: no separate tail path.
constexpr int ROWS = 4;            // outputs per SIMD-group; 2 * ROWS weight rows
constexpr int NB = HIDDEN / 32;    // blocks per row
const uint lane = thread_index_in_simdgroup;
const uint pair = threadgroup_position_in_grid.y;  // n * TOPK + k
const uint n = pair / TOPK;
const uint e = idx[pair];
const uint j0 = (threadgroup_position_in_grid.x * 2 + simdgroup_index_in_threadgroup) * ROWS;

const size_t row0 = (size_t(e) * 2 * INTER + 2 * j0);  // first weight row (gate of output j0)
const device uint4* w = (const device uint4*)(blocks) + row0 * NB;
const device uint8_t* s = scales + row0 * NB;
const device T* xr = x + size_t(n) * HIDDEN;

float acc[2 * ROWS];
for (int r = 0; r < 2 * ROWS; ++r) acc[r] = 0.0f;
for (int b = lane; b < NB; b += 32) {
  // x is loaded once per block and reused by all 8 rows.
  float xv[32];
  for (int i = 0; i < 32; ++i) xv[i] = float(xr[32 * b + i]);
  for (int r = 0; r < 2 * ROWS; ++r) {
    acc[r] += mxfp4_block_dot(w[r * NB + b], xv) * mxfp4_e8m0_to_float(s[r * NB + b]);
  }
}
for (int r = 0; r < 2 * ROWS; ++r) acc[r] = simd_sum(acc[r]);

// Lane r < ROWS writes output j0 + r (a loop, not acc[2 * lane], keeps acc in registers).
const device T* bias_e = bias + size_t(e) * 2 * INTER;
for (int r = 0; r < ROWS; ++r) {
  if (lane == uint(r)) {
    const uint j = j0 + r;
    const float gate = acc[2 * r] + float(bias_e[2 * j]);
    const float up = acc[2 * r + 1] + float(bias_e[2 * j + 1]);
    h[size_t(pair) * INTER + j] = gptoss_swiglu(gate, up, swiglu_limit);
  }
}

// Shared helpers of the MXFP4 expert kernels. This file holds no kernel: it is passed as the
// `header=` of every mx.fast.metal_kernel built in engine/metal_kernels/build.py.
//
// MXFP4 as the gpt-oss checkpoint stores it: 32 FP4 E2M1 codes per 16-byte block plus one E8M0
// scale byte per block. A block read as 4 little-endian uint32 words: nibble p of word w (bits
// 4p..4p+3) is element 8*w + p, because the low nibble of each byte is the even element.

// MLX's own header already includes these; repeated so the file stands on its own.
#include <metal_stdlib>
using namespace metal;

// E8M0 byte s -> 2^(s - 127). The shift puts s straight into the float's exponent field; byte 0
// would become +0.0 that way, while the format means 2^-127 (a float subnormal), so it is special-
// cased. (Byte 255, the spec's NaN, becomes +inf; checkpoints never contain it.)
inline float mxfp4_e8m0_to_float(uint s) {
  return s == 0u ? as_type<float>(0x00400000u) : as_type<float>(s << 23);
}

// FP4 E2M1 code -> float, exactly and without a table lookup. Magnitudes 2..7 are the normal
// numbers 2^(e-1) * (1 + m/2) (code = e:m), i.e. float exponent 126 + e with m as the top mantissa
// bit: ((252 + mag) << 22). Magnitudes 0 and 1 are 0 and 0.5. Bit 3 is the sign (code 8 is -0).
inline float mxfp4_e2m1_to_float(uint code) {
  const uint mag = code & 7u;
  const float v = mag < 2u ? 0.5f * float(mag) : as_type<float>((252u + mag) << 22);
  return as_type<float>(as_type<uint>(v) | ((code & 8u) << 28));
}

// Dot product of one block's 32 FP4 values with 32 activations, before the block's scale (applied
// once per block by the caller). The 16-byte block is one uint4 load; nibbles are decoded in
// registers.
inline float mxfp4_block_dot(uint4 block, thread const float* xv) {
  float acc = 0.0f;
  for (int w = 0; w < 4; ++w) {
    const uint bits = block[w];
    for (int p = 0; p < 8; ++p) {
      acc = fma(mxfp4_e2m1_to_float((bits >> (4 * p)) & 15u), xv[8 * w + p], acc);
    }
  }
  return acc;
}

// gpt-oss's clamped SwiGLU: gate clamped above, up clamped both ways, alpha = 1.702, (up + 1).
inline float gptoss_swiglu(float gate, float up, float limit) {
  gate = min(gate, limit);
  up = clamp(up, -limit, limit);
  return gate / (1.0f + exp(-1.702f * gate)) * (up + 1.0f);
}

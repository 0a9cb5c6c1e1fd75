// A small Metal-on-CPU shim: just enough of the Metal Shading Language for clang++ to compile the
// project's kernel sources unchanged and run them lane by lane (tests/metal/harness.py).
//
// What it models: address-space qualifiers (dropped), vector types with swizzles (clang
// ext_vector_type), half / bfloat16_t (exact IEEE / round-to-nearest-even conversions), as_type,
// the math built-ins the kernels use, and SIMD-group / threadgroup collectives. Every lane is a
// cooperative fiber (ucontext): a collective parks the lane until every lane that must take part has
// arrived, and arriving from different source lines (divergent control flow) is an error.
// What it cannot model: Apple's compiler, fast-math rounding, device-memory races, occupancy.
#pragma once
// Standard headers come first (the address-space macros below would break them); few of them,
// because every kernel variant compiles this file.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

// ---- address spaces and attributes: no meaning on the CPU --------------------------------------
#define device
#define constant
#define thread
#define threadgroup
#define kernel

// ---- scalar and vector types --------------------------------------------------------------------
typedef unsigned int uint;
typedef unsigned short ushort;
typedef unsigned char uchar;
typedef unsigned long ulong;

#define MTL_VEC(T, N, NAME) typedef T NAME __attribute__((ext_vector_type(N)));
#define MTL_VECS(T, P) MTL_VEC(T, 2, P##2) MTL_VEC(T, 3, P##3) MTL_VEC(T, 4, P##4)
MTL_VECS(float, float)
MTL_VECS(int, int)
MTL_VECS(uint, uint)
MTL_VECS(short, short)
MTL_VECS(ushort, ushort)
MTL_VECS(char, char)
MTL_VECS(uchar, uchar)
MTL_VECS(ulong, ulong)

namespace mtl_shim {
template <class To, class From>
inline To bit_cast(const From& v) {
  static_assert(sizeof(To) == sizeof(From), "as_type needs types of the same size");
  To out;
  std::memcpy(&out, &v, sizeof(To));
  return out;
}

// float -> IEEE half bits, round to nearest even, with subnormals, inf and NaN.
inline uint16_t float_to_half_bits(float f) {
  uint32_t x = bit_cast<uint32_t>(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mag = x & 0x7fffffffu;
  if (mag >= 0x7f800000u) return sign | (mag > 0x7f800000u ? 0x7e00u : 0x7c00u);
  if (mag >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: inf
  if (mag < 0x38800000u) {                          // half subnormal (or zero)
    float a = bit_cast<float>(mag) * 16777216.0f;    // * 2^24: the subnormal's integer count
    return sign | (uint16_t)std::nearbyint(a);       // nearbyint rounds half to even
  }
  uint32_t r = mag + 0xfffu + ((mag >> 13) & 1u);  // round to nearest even on the dropped 13 bits
  return sign | (uint16_t)((r - 0x38000000u) >> 13);
}
inline float half_bits_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ffu;
  float v;
  if (e == 0) v = std::ldexp((float)m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = std::ldexp((float)(m | 0x400u), (int)e - 25);
  return bit_cast<float>(bit_cast<uint32_t>(v) | sign);
}
}  // namespace mtl_shim

// half: storage is IEEE binary16; arithmetic is done in float (Metal computes in half: a known gap).
struct half {
  uint16_t bits;
  half() = default;
  half(float f) : bits(mtl_shim::float_to_half_bits(f)) {}
  operator float() const { return mtl_shim::half_bits_to_float(bits); }
};
typedef half float16_t;

// bfloat16_t as MLX defines it: the top 16 bits of a float, converted with round to nearest even.
struct bfloat16_t {
  uint16_t bits;
  bfloat16_t() = default;
  bfloat16_t(float f) {
    uint32_t x = mtl_shim::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) bits = (uint16_t)((x >> 16) | 0x40u);  // quiet NaN
    else bits = (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
  }
  operator float() const { return mtl_shim::bit_cast<float>((uint32_t)bits << 16); }
};
typedef bfloat16_t bfloat;

template <class To, class From>
inline To as_type(const From& v) { return mtl_shim::bit_cast<To>(v); }

// ---- math ----------------------------------------------------------------------------------------
namespace metal {
using std::abs;
using std::ceil;
using std::exp;
using std::exp2;
using std::floor;
using std::fma;
using std::isnan;
using std::log;
using std::sqrt;
using std::tanh;
using std::ldexp;
inline float rsqrt(float x) { return 1.0f / std::sqrt(x); }
// NaN in, NaN out (unlike fmin/fmax): the harness fills unwritten memory with NaN and a min()
// that swallowed it would hide exactly the bugs the NaN fill is there to expose.
inline float min(float a, float b) { return (a != a || b != b) ? NAN : (b < a ? b : a); }
inline float max(float a, float b) { return (a != a || b != b) ? NAN : (b > a ? b : a); }
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline uint min(uint a, uint b) { return a < b ? a : b; }
inline uint max(uint a, uint b) { return a > b ? a : b; }
inline float clamp(float x, float lo, float hi) { return min(max(x, lo), hi); }
template <class T> inline T select(T a, T b, bool c) { return c ? b : a; }
inline float dot(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }
inline float dot(float2 a, float2 b) { return a.x * b.x + a.y * b.y; }
namespace fast { using metal::exp; using metal::exp2; using metal::log; using metal::rsqrt; using metal::tanh; }
namespace precise { using metal::exp; using metal::exp2; using metal::log; using metal::rsqrt; using metal::tanh; }
enum class mem_flags { mem_none = 0, mem_device = 1, mem_threadgroup = 2, mem_texture = 4 };
}  // namespace metal
using namespace metal;

// ---- collectives: implemented by the harness's fiber scheduler ---------------------------------
namespace mtl_shim {
enum Collective : int { kSimdReduce = 1, kSimdShuffle = 2, kSimdBarrier = 3, kGroupBarrier = 4, kSimdMatrix = 5 };
typedef void (*CombineFn)(const unsigned char* in, unsigned char* out, const int* arg, int lanes);
// Parks the calling lane at a collective; returns once every lane has arrived and `combine` has
// filled this lane's result (out points at `size` bytes). Defined in the generated driver.
void park(int kind, int line, const void* in, void* out, int size, int arg, CombineFn combine);
// Threadgroup storage for one `threadgroup T name[...]` declaration (numbered by the rewrite).
void* threadgroup_slot(int id, int bytes);

template <class T> void combine_sum(const unsigned char* in, unsigned char* out, const int*, int lanes) {
  T acc;
  std::memcpy(&acc, in, sizeof(T));
  for (int i = 1; i < lanes; ++i) { T v; std::memcpy(&v, in + i * sizeof(T), sizeof(T)); acc = acc + v; }
  for (int i = 0; i < lanes; ++i) std::memcpy(out + i * sizeof(T), &acc, sizeof(T));
}
template <class T> void combine_max(const unsigned char* in, unsigned char* out, const int*, int lanes) {
  T acc;
  std::memcpy(&acc, in, sizeof(T));
  for (int i = 1; i < lanes; ++i) { T v; std::memcpy(&v, in + i * sizeof(T), sizeof(T)); acc = metal::max(acc, v); }
  for (int i = 0; i < lanes; ++i) std::memcpy(out + i * sizeof(T), &acc, sizeof(T));
}
template <class T> void combine_min(const unsigned char* in, unsigned char* out, const int*, int lanes) {
  T acc;
  std::memcpy(&acc, in, sizeof(T));
  for (int i = 1; i < lanes; ++i) { T v; std::memcpy(&v, in + i * sizeof(T), sizeof(T)); acc = metal::min(acc, v); }
  for (int i = 0; i < lanes; ++i) std::memcpy(out + i * sizeof(T), &acc, sizeof(T));
}
// arg[i] = the source lane lane i reads (already resolved by the caller's rule).
template <class T> void combine_gather(const unsigned char* in, unsigned char* out, const int* arg, int lanes) {
  for (int i = 0; i < lanes; ++i) {
    int src = (arg[i] >= 0 && arg[i] < lanes) ? arg[i] : i;
    std::memcpy(out + i * sizeof(T), in + src * sizeof(T), sizeof(T));
  }
}
int lane_id();  // this fiber's thread_index_in_simdgroup (for the shuffle rules below)

template <class T> T simd_sum_at(T x, int line) { T r; park(kSimdReduce, line, &x, &r, sizeof(T), 0, combine_sum<T>); return r; }
template <class T> T simd_max_at(T x, int line) { T r; park(kSimdReduce, line, &x, &r, sizeof(T), 0, combine_max<T>); return r; }
template <class T> T simd_min_at(T x, int line) { T r; park(kSimdReduce, line, &x, &r, sizeof(T), 0, combine_min<T>); return r; }
template <class T> T simd_shuffle_at(T x, int src, int line) { T r; park(kSimdShuffle, line, &x, &r, sizeof(T), src, combine_gather<T>); return r; }
// Metal: lanes whose source falls outside the SIMD-group keep their own value.
template <class T> T simd_shuffle_down_at(T x, int d, int line) { int s = lane_id() + d; return simd_shuffle_at(x, s < 32 ? s : lane_id(), line); }
template <class T> T simd_shuffle_up_at(T x, int d, int line) { int s = lane_id() - d; return simd_shuffle_at(x, s >= 0 ? s : lane_id(), line); }
template <class T> T simd_shuffle_xor_at(T x, int m, int line) { return simd_shuffle_at(x, (lane_id() ^ m) & 31, line); }
}  // namespace mtl_shim

// The line number goes with every collective so a divergent arrival can name the source line.
#define simd_sum(x) mtl_shim::simd_sum_at((x), __LINE__)
#define simd_max(x) mtl_shim::simd_max_at((x), __LINE__)
#define simd_min(x) mtl_shim::simd_min_at((x), __LINE__)
#define simd_shuffle(x, l) mtl_shim::simd_shuffle_at((x), (int)(l), __LINE__)
#define simd_broadcast(x, l) mtl_shim::simd_shuffle_at((x), (int)(l), __LINE__)
#define simd_shuffle_down(x, d) mtl_shim::simd_shuffle_down_at((x), (int)(d), __LINE__)
#define simd_shuffle_up(x, d) mtl_shim::simd_shuffle_up_at((x), (int)(d), __LINE__)
#define simd_shuffle_xor(x, m) mtl_shim::simd_shuffle_xor_at((x), (int)(m), __LINE__)
#define simdgroup_barrier(f) mtl_shim::park(mtl_shim::kSimdBarrier, __LINE__, nullptr, nullptr, 0, 0, nullptr)
#define threadgroup_barrier(f) mtl_shim::park(mtl_shim::kGroupBarrier, __LINE__, nullptr, nullptr, 0, 0, nullptr)

// ---- simdgroup_matrix: every lane keeps the whole matrix (a GPU spreads it over the lanes), and
// each operation is a SIMD-group collective, so reaching one from divergent code is caught.
template <class T, int Cols, int Rows>
struct simdgroup_matrix {
  T v[Rows][Cols];
  simdgroup_matrix() = default;
  explicit simdgroup_matrix(T diagonal) {  // Metal: a diagonal matrix
    for (int i = 0; i < Rows; ++i)
      for (int j = 0; j < Cols; ++j) v[i][j] = i == j ? diagonal : T(0);
  }
};
typedef simdgroup_matrix<float, 8, 8> simdgroup_float8x8;
typedef simdgroup_matrix<half, 8, 8> simdgroup_half8x8;

template <class T, int C, int R>
inline simdgroup_matrix<T, C, R> make_filled_simdgroup_matrix(T value) {
  simdgroup_matrix<T, C, R> m;
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) m.v[i][j] = value;
  return m;
}

namespace mtl_shim {
template <class T, int C, int R, class S>
inline void sg_load_at(int line, simdgroup_matrix<T, C, R>& d, const S* src, ulong elements_per_row = C,
                       ulong2 origin = ulong2(0), bool transpose = false) {
  park(kSimdMatrix, line, nullptr, nullptr, 0, 0, nullptr);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j)
      d.v[i][j] = transpose ? T(src[(origin.y + j) * elements_per_row + origin.x + i])
                            : T(src[(origin.y + i) * elements_per_row + origin.x + j]);
}
template <class T, int C, int R, class S>
inline void sg_store_at(int line, const simdgroup_matrix<T, C, R>& m, S* dst, ulong elements_per_row = C,
                        ulong2 origin = ulong2(0), bool transpose = false) {
  park(kSimdMatrix, line, nullptr, nullptr, 0, 0, nullptr);
  for (int i = 0; i < R; ++i)
    for (int j = 0; j < C; ++j) {
      S& out = transpose ? dst[(origin.y + j) * elements_per_row + origin.x + i]
                         : dst[(origin.y + i) * elements_per_row + origin.x + j];
      out = S(m.v[i][j]);
    }
}
template <class T, int N, int M, int K>
inline void sg_mma_at(int line, simdgroup_matrix<T, N, M>& d, const simdgroup_matrix<T, K, M>& a,
                      const simdgroup_matrix<T, N, K>& b, const simdgroup_matrix<T, N, M>& c) {
  park(kSimdMatrix, line, nullptr, nullptr, 0, 0, nullptr);
  simdgroup_matrix<T, N, M> r;
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      float acc = float(c.v[i][j]);
      for (int k = 0; k < K; ++k) acc = std::fma(float(a.v[i][k]), float(b.v[k][j]), acc);
      r.v[i][j] = T(acc);
    }
  d = r;
}
}  // namespace mtl_shim

#define simdgroup_load(...) mtl_shim::sg_load_at(__LINE__, __VA_ARGS__)
#define simdgroup_store(...) mtl_shim::sg_store_at(__LINE__, __VA_ARGS__)
#define simdgroup_multiply_accumulate(...) mtl_shim::sg_mma_at(__LINE__, __VA_ARGS__)

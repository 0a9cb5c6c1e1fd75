// The grid runner of the CPU harness, compiled once and linked with each generated kernel file.
// Each threadgroup runs on its own; each of its lanes is a fiber that runs until it parks
// at a collective or returns. The scheduler releases a collective only when every lane that must
// take part is parked at the same one (same source line, same count of collectives so far).
#if defined(__APPLE__) && !defined(_XOPEN_SOURCE)
#define _XOPEN_SOURCE 600  // macOS only declares the (deprecated) ucontext calls with this
#endif
#include <ucontext.h>
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "metal_shim.h"

namespace mtl_shim {

struct LaneAttrs {
  uint3 thread_position_in_grid, thread_position_in_threadgroup, threadgroup_position_in_grid;
  uint3 threads_per_threadgroup, threads_per_grid, threadgroups_per_grid;
  uint thread_index_in_threadgroup, thread_index_in_simdgroup, simdgroup_index_in_threadgroup;
  uint simdgroups_per_threadgroup;
};
void invoke_kernel(void** bufs, const LaneAttrs& a);  // generated: calls the kernel

enum LaneState { kRunnable, kParked, kDone };
// ---- fiber switching: a few instructions on x86-64 (millions of lanes per test), ucontext elsewhere.
#if defined(__x86_64__)
extern "C" void mtl_switch(void** save_sp, void* load_sp);
asm(R"(
.text
.hidden mtl_switch
.globl mtl_switch
.type mtl_switch,@function
mtl_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
)");
struct Fiber {
  void* sp = nullptr;
};
static void fiber_start(Fiber& f, char* stack, size_t size, void (*entry)(), Fiber*) {
  uintptr_t top = ((uintptr_t)(stack + size)) & ~(uintptr_t)15;
  void** sp = (void**)top;
  *--sp = nullptr;          // fake return address of entry (it never returns)
  *--sp = (void*)entry;     // where the first switch "returns" to
  for (int i = 0; i < 6; ++i) *--sp = nullptr;  // rbp rbx r12-r15
  f.sp = sp;
}
static void fiber_switch(Fiber& from, Fiber& to) { mtl_switch(&from.sp, to.sp); }
#else
struct Fiber {
  ucontext_t ctx;
};
static void fiber_start(Fiber& f, char* stack, size_t size, void (*entry)(), Fiber* link) {
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = stack;
  f.ctx.uc_stack.ss_size = size;
  f.ctx.uc_link = &link->ctx;
  makecontext(&f.ctx, entry, 0);
}
static void fiber_switch(Fiber& from, Fiber& to) { swapcontext(&from.ctx, &to.ctx); }
#endif

struct Lane {
  Fiber fiber;
  LaneState state;
  LaneAttrs attrs;
  int kind, line, count, size, arg;
  const void* in;
  void* out;
  CombineFn combine;
};

static std::vector<Lane> g_lanes;
static std::vector<std::vector<char>> g_stacks;
static Fiber g_scheduler;
static int g_current = -1;
static void** g_bufs = nullptr;
static std::vector<std::vector<unsigned char>> g_slots;  // threadgroup storage, by declaration id
static constexpr size_t kStack = 256 * 1024;

int lane_id() { return (int)g_lanes[g_current].attrs.thread_index_in_simdgroup; }

void* threadgroup_slot(int id, int bytes) {
  if ((int)g_slots.size() <= id) g_slots.resize(id + 1);
  if (g_slots[id].empty()) g_slots[id].assign(bytes, 0xFF);  // NaN bytes: unwritten reads show up
  return g_slots[id].data();
}

void park(int kind, int line, const void* in, void* out, int size, int arg, CombineFn combine) {
  Lane& l = g_lanes[g_current];
  l.kind = kind; l.line = line; l.in = in; l.out = out; l.size = size; l.arg = arg; l.combine = combine;
  l.count++;
  l.state = kParked;
  fiber_switch(l.fiber, g_scheduler);
}

static void lane_entry() {
  invoke_kernel(g_bufs, g_lanes[g_current].attrs);
  g_lanes[g_current].state = kDone;
  fiber_switch(g_lanes[g_current].fiber, g_scheduler);  // never resumed
}

static const char* kind_name(int k) {
  switch (k) {
    case kSimdReduce: return "a SIMD-group reduction";
    case kSimdShuffle: return "a SIMD-group shuffle";
    case kSimdBarrier: return "simdgroup_barrier";
    case kSimdMatrix: return "a simdgroup_matrix operation";
    default: return "threadgroup_barrier";
  }
}

static std::string g_error;
static void fail(const std::string& m) { if (g_error.empty()) g_error = m; }

// Releases SIMD-group collectives that every lane of the SIMD-group reached; returns how many lanes
// it released. Sets g_error on a divergent arrival.
static int release_simd(int begin, int end, const std::string& where) {
  int first = -1, done = 0;
  for (int i = begin; i < end; ++i) {
    if (g_lanes[i].state == kDone) { done++; continue; }
    if (g_lanes[i].kind != kGroupBarrier && first < 0) first = i;
  }
  if (first < 0) return 0;
  const Lane& f = g_lanes[first];
  for (int i = begin; i < end; ++i) {
    const Lane& l = g_lanes[i];
    char buf[512];
    if (l.state == kDone) {
      snprintf(buf, sizeof buf, "%s: lane %d returned while lane %d waits at %s on line %d "
               "(a collective reached from divergent control flow)", where.c_str(), i - begin,
               first - begin, kind_name(f.kind), f.line);
      fail(buf); return 0;
    }
    if (l.kind != f.kind || l.line != f.line || l.count != f.count || l.size != f.size || l.combine != f.combine) {
      snprintf(buf, sizeof buf, "%s: lane %d is at %s on line %d (collective #%d) while lane %d is at "
               "%s on line %d (collective #%d): a collective reached from divergent control flow",
               where.c_str(), first - begin, kind_name(f.kind), f.line, f.count, i - begin,
               kind_name(l.kind), l.line, l.count);
      fail(buf); return 0;
    }
  }
  const int lanes = end - begin;
  if (f.combine) {
    std::vector<unsigned char> in(lanes * f.size), out(lanes * f.size);
    std::vector<int> args(lanes);
    for (int i = 0; i < lanes; ++i) {
      std::memcpy(&in[i * f.size], g_lanes[begin + i].in, f.size);
      args[i] = g_lanes[begin + i].arg;
    }
    f.combine(in.data(), out.data(), args.data(), lanes);
    for (int i = 0; i < lanes; ++i) std::memcpy(g_lanes[begin + i].out, &out[i * f.size], f.size);
  }
  for (int i = begin; i < end; ++i) g_lanes[i].state = kRunnable;
  return lanes;
}

static int release_group_barrier(const std::string& where) {
  const Lane* f = nullptr;
  int fi = -1;
  for (size_t i = 0; i < g_lanes.size(); ++i)
    if (g_lanes[i].state == kParked) { f = &g_lanes[i]; fi = (int)i; break; }
  if (!f) return 0;
  for (size_t i = 0; i < g_lanes.size(); ++i) {
    const Lane& l = g_lanes[i];
    char buf[512];
    if (l.state == kDone || l.kind != kGroupBarrier || l.line != f->line || l.count != f->count) {
      if (l.state == kDone)
        snprintf(buf, sizeof buf, "%s: thread %zu returned while thread %d waits at threadgroup_barrier "
                 "on line %d (a barrier reached from divergent control flow)", where.c_str(), i, fi, f->line);
      else
        snprintf(buf, sizeof buf, "%s: thread %d waits at %s on line %d while thread %zu waits at %s on "
                 "line %d: the threadgroup can never meet", where.c_str(), fi, kind_name(f->kind), f->line,
                 i, kind_name(l.kind), l.line);
      fail(buf); return 0;
    }
  }
  for (auto& l : g_lanes) l.state = kRunnable;
  return (int)g_lanes.size();
}

static void run_group(uint3 group, uint3 tg, uint3 grid, std::mt19937* rng) {
  const int n = (int)(tg.x * tg.y * tg.z);
  g_lanes.assign(n, Lane{});
  if ((int)g_stacks.size() < n) g_stacks.resize(n);
  for (auto& s : g_slots) std::fill(s.begin(), s.end(), 0xFF);
  char where[128];
  snprintf(where, sizeof where, "threadgroup (%u, %u, %u)", group.x, group.y, group.z);
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) {
    order[i] = i;
    Lane& l = g_lanes[i];
    LaneAttrs& a = l.attrs;
    uint3 t = {(uint)(i % tg.x), (uint)((i / tg.x) % tg.y), (uint)(i / (tg.x * tg.y))};
    a.thread_position_in_threadgroup = t;
    a.threadgroup_position_in_grid = group;
    a.thread_position_in_grid = group * tg + t;
    a.threads_per_threadgroup = tg;
    a.threads_per_grid = grid;
    a.threadgroups_per_grid = grid / tg;
    a.thread_index_in_threadgroup = (uint)i;
    a.thread_index_in_simdgroup = (uint)(i % 32);
    a.simdgroup_index_in_threadgroup = (uint)(i / 32);
    a.simdgroups_per_threadgroup = (uint)((n + 31) / 32);
    if (g_stacks[i].empty()) g_stacks[i].resize(kStack);
    fiber_start(l.fiber, g_stacks[i].data(), kStack, lane_entry, &g_scheduler);
    l.state = kRunnable;
  }
  // SIMD-groups run one at a time, each as far as it can get (up to a threadgroup barrier or its
  // end) before the next starts: the most hostile order for a missing barrier, since a group that
  // reads what another writes runs before the writer. Shuffled passes permute groups and lanes.
  const int groups = (n + 31) / 32;
  std::vector<int> sg_order(groups);
  for (int s = 0; s < groups; ++s) sg_order[s] = s;
  if (rng) {
    std::shuffle(sg_order.begin(), sg_order.end(), *rng);
    for (int s = 0; s < groups; ++s) std::shuffle(order.begin() + s * 32, order.begin() + std::min(n, s * 32 + 32), *rng);
  }
  for (;;) {
    for (int s : sg_order) {
      const int begin = s * 32, end = std::min(n, begin + 32);
      for (;;) {
        for (int k = begin; k < end; ++k) {
          const int i = order[k];
          if (g_lanes[i].state != kRunnable) continue;
          g_current = i;
          fiber_switch(g_scheduler, g_lanes[i].fiber);
        }
        if (release_simd(begin, end, where) == 0) break;  // parked at a threadgroup barrier, or done
      }
      if (!g_error.empty()) return;
    }
    bool all_done = true;
    for (auto& l : g_lanes) all_done &= (l.state == kDone);
    if (all_done) return;
    if (release_group_barrier(where) == 0) {
      if (g_error.empty()) fail(std::string(where) + ": no lane can make progress");
      return;
    }
  }
}

}  // namespace mtl_shim

// Runs the whole grid. Returns 0, or 1 with a message in err. seed != 0 runs the threadgroups and
// the lanes inside each in a shuffled order.
extern "C" __attribute__((visibility("default"))) int mtl_run_grid(void** bufs, const int* grid, const int* tg, unsigned seed, char* err, int errlen) {
  using namespace mtl_shim;
  g_bufs = bufs;
  g_error.clear();
  g_slots.clear();
  uint3 G = {(uint)grid[0], (uint)grid[1], (uint)grid[2]};
  uint3 T = {(uint)tg[0], (uint)tg[1], (uint)tg[2]};
  uint3 groups = G / T;
  std::vector<uint3> all;
  for (uint z = 0; z < groups.z; ++z)
    for (uint y = 0; y < groups.y; ++y)
      for (uint x = 0; x < groups.x; ++x) all.push_back(uint3{x, y, z});
  std::mt19937 rng(seed);
  if (seed) std::shuffle(all.begin(), all.end(), rng);
  for (const uint3& g : all) {
    run_group(g, T, G, seed ? &rng : nullptr);
    if (!g_error.empty()) break;
  }
  if (g_error.empty()) return 0;
  snprintf(err, errlen, "%s", g_error.c_str());
  return 1;
}

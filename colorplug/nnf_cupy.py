"""PatchMatch on CUDA, written with CuPy: one ElementwiseKernel for the random
initialisation, one for the patch cost, and a RawKernel for the propagation + random
search iterations. Used by `colorplug.nnf` for CUDA tensors when CuPy is installed.

Layout: source patch vectors [B, D, Ns] (neighbouring threads read neighbouring floats),
target patch vectors [B, Nt, D] (a candidate is one contiguous D-vector), the field as a
flat target index per source pixel. Propagation is jump flooding (distances K, K/2, .., 1,
one launch each, ping-pong buffers so no thread reads a half-updated neighbour); random
search (radius halving from the target's size) follows the last jump of every iteration.
Random numbers come from a splitmix64 hash of (seed, iteration, pixel): reproducible,
independent per pixel. Kernels are compiled once per process and cached.

The kernel sources (`INIT_KERNEL`, `COST_KERNEL`, `STEP_KERNEL`) and the host loop
(`run_patchmatch`, any array module) are shared with `colorplug.nnf_cuda_emulation`, which
compiles the same source for the CPU so the tests run this engine without a GPU.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

_SPLITMIX = r"""
__device__ __forceinline__ unsigned long long splitmix64(unsigned long long z) {
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
"""

_PROPAGATE = _SPLITMIX + r"""
extern "C" __global__ void colorplug_pm_step(
        const float* __restrict__ src, const float* __restrict__ tgt,
        const int* __restrict__ nnf_in, const float* __restrict__ best_in,
        int* __restrict__ nnf_out, float* __restrict__ best_out,
        const int batch, const int hs, const int ws, const int ht, const int wt, const int d,
        const int jump, const int radius, const unsigned long long seed) {
    const long long ns = (long long)hs * ws;
    const long long gid = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (gid >= batch * ns) return;
    const int b = (int)(gid / ns);
    const int p = (int)(gid - (long long)b * ns);
    const int y = p / ws, x = p - (p / ws) * ws;
    const float* s = src + (long long)b * d * ns + p;           // stride ns between channels
    const float* t = tgt + (long long)b * ht * wt * d;
    int cur = nnf_in[gid];
    float best = best_in[gid];
    int by = cur / wt, bx = cur - (cur / wt) * wt;

    #define COLORPLUG_TRY(CY, CX)                                              \
    {                                                                          \
        const int cy_ = min(max((CY), 0), ht - 1);                             \
        const int cx_ = min(max((CX), 0), wt - 1);                             \
        if (cy_ != by || cx_ != bx) {                                          \
            const float* c = t + ((long long)cy_ * wt + cx_) * d;              \
            float acc = 0.f;                                                   \
            for (int k = 0; k < d; ++k) acc += s[(long long)k * ns] * c[k];    \
            if (acc > best) { best = acc; by = cy_; bx = cx_; }                \
        }                                                                      \
    }

    if (jump > 0) {
        const int dy[4] = {jump, -jump, 0, 0};
        const int dx[4] = {0, 0, jump, -jump};
        for (int n = 0; n < 4; ++n) {
            const int qy = y + dy[n], qx = x + dx[n];
            if (qy < 0 || qy >= hs || qx < 0 || qx >= ws) continue;
            const int m = nnf_in[(long long)b * ns + (long long)qy * ws + qx];
            // the neighbour at (y+dy, x+dx) matched m; offer m - (dy, dx) here
            COLORPLUG_TRY(m / wt - dy[n], m - (m / wt) * wt - dx[n]);
        }
    }
    if (radius > 0) {
        unsigned long long state = splitmix64(seed ^ ((unsigned long long)gid * 0xD1B54A32D192ED03ULL));
        for (int r = radius; r >= 1; r >>= 1) {
            state = splitmix64(state);
            const int span = 2 * r + 1;
            const int ry = (int)((state >> 32) % (unsigned long long)span) - r;
            const int rx = (int)((state & 0xFFFFFFFFULL) % (unsigned long long)span) - r;
            COLORPLUG_TRY(by + ry, bx + rx);
        }
    }
    #undef COLORPLUG_TRY
    nnf_out[gid] = by * wt + bx;
    best_out[gid] = best;
}
"""


#: The ElementwiseKernels as (in_params, out_params, operation, name): CuPy's own spec
#: strings, shared by `kernels()` (CuPy/NVRTC) and `colorplug.nnf_cuda_emulation` (the
#: same operation compiled for the CPU), so the tested source is the shipped source.
INIT_KERNEL = (
    "uint64 seed, int32 nt", "int32 nnf",
    """
    unsigned long long z = seed ^ ((unsigned long long)i * 0xD1B54A32D192ED03ULL);
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    nnf = (int)(z % (unsigned long long)nt);
    """,
    "colorplug_pm_init")
COST_KERNEL = (
    "raw float32 src, raw float32 tgt, int32 nnf, int32 d, int32 ns, int32 nt",
    "float32 score",
    """
    const long long b = i / ns;
    const long long p = i - b * ns;
    const float* c = &tgt[(b * nt + nnf) * (long long)d];
    float acc = 0.f;
    for (int k = 0; k < d; ++k) acc += src[(b * d + k) * ns + p] * c[k];
    score = acc;
    """,
    "colorplug_pm_cost")
#: The RawKernel: (CUDA C source, function name).
STEP_KERNEL = (_PROPAGATE, "colorplug_pm_step")
#: Threads per block of the RawKernel launches.
THREADS = 256


class KernelCompileError(RuntimeError):
    """CuPy is installed but the kernels could not be compiled (no NVRTC, a compile error)."""


@lru_cache(maxsize=None)
def kernels() -> dict[str, Any]:
    """Build (once per process) the three kernels; CuPy compiles each on its first launch."""
    import cupy as cp

    return {"init": cp.ElementwiseKernel(*INIT_KERNEL),
            "cost": cp.ElementwiseKernel(*COST_KERNEL),
            "step": cp.RawKernel(*STEP_KERNEL)}


_compile_failure: list[str] = []


def compiled_kernels() -> dict[str, Any]:
    """`kernels()`, compiled now (a one-element launch of each ElementwiseKernel, the
    RawKernel's `compile()`), so a missing NVRTC or a compile error surfaces here as a
    `KernelCompileError` before any work is done, and the failure is remembered."""
    if _compile_failure:
        raise KernelCompileError(_compile_failure[0])
    try:
        import cupy as cp

        k = kernels()
        nnf = cp.zeros((1,), dtype=cp.int32)
        k["init"](cp.uint64(0), cp.int32(1), nnf)
        vec = cp.zeros((1,), dtype=cp.float32)
        k["cost"](vec, vec, nnf, cp.int32(1), cp.int32(1), cp.int32(1))
        k["step"].compile()
    except Exception as exc:  # CompileException, NVRTC not found, a CUDA driver error
        _compile_failure.append(f"{type(exc).__name__}: {exc}")
        raise KernelCompileError(_compile_failure[0]) from exc
    return k


def patch_cost(src, tgt, nnf, k: dict[str, Any] | None = None, xp: Any = None):
    """Cosine of each source patch [B, D, Ns] with its match `nnf` [B, Ns] in tgt [B, Nt, D]
    (arrays of `xp`, CuPy by default; the ElementwiseKernel reads them flattened,
    C-contiguous)."""
    if xp is None:
        import cupy as xp
    k = kernels() if k is None else k
    b, d, ns = src.shape
    nt = tgt.shape[1]
    return k["cost"](xp.ascontiguousarray(src).ravel(), xp.ascontiguousarray(tgt).ravel(),
                     nnf, xp.int32(d), xp.int32(ns), xp.int32(nt))


def available() -> bool:
    """CuPy importable and a CUDA device present."""
    try:
        import cupy as cp

        return cp.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CuPy without a working CUDA runtime
        return False


def can_run(tensor: Any) -> bool:
    """Whether the CuPy engine can take this torch tensor: on CUDA, with CuPy working."""
    return bool(getattr(tensor, "is_cuda", False)) and available()


def jump_schedule(hs: int, ws: int, ht: int, wt: int, iterations: int, seed: int):
    """The RawKernel launches of a run, in order: (jump, radius, step seed) per launch.
    Jumps K, K/2, .., 1 per iteration (K the largest power of two below the source's
    longer side); the last jump of each iteration also does the random search."""
    jumps = []
    j = 1
    while j < max(hs, ws):
        jumps.append(j)
        j *= 2
    jumps = list(reversed(jumps or [1]))
    for it in range(iterations):
        for n, jump in enumerate(jumps):
            radius = max(ht, wt) if n == len(jumps) - 1 else 0
            yield jump, radius, (seed * 1_000_003 + it * 131 + n) & 0xFFFFFFFFFFFFFFFF


def run_patchmatch(k: dict[str, Any], xp: Any, src, tgt, hs: int, ws: int, ht: int,
                   wt: int, *, iterations: int = 5, seed: int = 0):
    """The host side of PatchMatch: init, cost, then the jump-flood/random-search launches.

    `k`: the kernels (`kernels()`, or their CPU emulation), `xp`: their array module (CuPy,
    or numpy for the emulation); `src` [B, D, Ns] and `tgt` [B, Nt, D] C-contiguous float32
    unit patch vectors. Returns (flat target index [B, Ns] int32, similarity [B, Ns]).
    """
    b, d, ns = src.shape
    nt = tgt.shape[1]
    nnf = xp.empty((b, ns), dtype=xp.int32)
    k["init"](xp.uint64(seed), xp.int32(nt), nnf)
    best = patch_cost(src, tgt, nnf, k, xp)
    nnf2, best2 = xp.empty_like(nnf), xp.empty_like(best)
    blocks = (b * ns + THREADS - 1) // THREADS
    for jump, radius, step_seed in jump_schedule(hs, ws, ht, wt, iterations, seed):
        k["step"]((blocks,), (THREADS,),
                  (src, tgt, nnf, best, nnf2, best2, xp.int32(b), xp.int32(hs),
                   xp.int32(ws), xp.int32(ht), xp.int32(wt), xp.int32(d),
                   xp.int32(jump), xp.int32(radius), xp.uint64(step_seed)))
        nnf, nnf2 = nnf2, nnf
        best, best2 = best2, best
    return nnf, best


def patchmatch_cuda(src_vectors, tgt_vectors, hs: int, ws: int, ht: int, wt: int, *,
                    iterations: int = 5, seed: int = 0, k: dict[str, Any] | None = None):
    """PatchMatch over unit patch vectors on one CUDA device.

    `src_vectors` [B, D, Hs*Ws] and `tgt_vectors` [B, D, Ht*Wt]: torch CUDA tensors
    (`colorplug.nnf.patch_vectors`). Returns torch (indices [B, Hs, Ws, 2], similarity).
    """
    import cupy as cp
    import torch

    k = compiled_kernels() if k is None else k
    b, _, ns = src_vectors.shape
    stream = torch.cuda.current_stream(src_vectors.device)
    with cp.cuda.Device(src_vectors.device.index or 0), \
            cp.cuda.ExternalStream(stream.cuda_stream):
        src = cp.from_dlpack(src_vectors.float().contiguous())
        tgt = cp.from_dlpack(tgt_vectors.float().transpose(1, 2).contiguous())  # [B, Nt, D]
        nnf, best = run_patchmatch(k, cp, src, tgt, hs, ws, ht, wt,
                                   iterations=iterations, seed=seed)
        idx = torch.from_dlpack(nnf).long().view(b, hs, ws)
        sim = torch.from_dlpack(best).view(b, hs, ws)
    return torch.stack([idx // wt, idx % wt], -1), sim

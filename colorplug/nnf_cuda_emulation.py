"""The CuPy PatchMatch kernels run on the CPU: their CUDA source, unchanged, compiled by the
system C++ compiler behind a thin shim header, so the tests and benchmarks exercise the
shipped kernels (and the shared host code `nnf_cupy.run_patchmatch`) without a GPU.

    idx, sim = patchmatch_emulated(source, target)      # like nearest_neighbor_field

- The RawKernel's CUDA C (`nnf_cupy.STEP_KERNEL`) is compiled as written; a generated
  launcher calls it once per (block, thread) with `blockIdx`/`threadIdx` set.
- The ElementwiseKernels' operation strings (`nnf_cupy.INIT_KERNEL`, `COST_KERNEL`) are
  wrapped the way CuPy wraps them: scalar and raw parameters, a `CUPY_FOR(i, n)`
  grid-stride loop, `const T x = _raw_x[i];` for array inputs and `T &y = _raw_y[i];`
  for outputs. Raw arrays are bounds-checked: an out-of-range index is an error.
- Argument types are checked against the kernel's parameters (CuPy would pass a wrong
  scalar type through silently), and launches can run threads in reverse order: a result
  that depends on the order is a data race on a GPU.

Threads run one after another, so kernels that use shared memory or `__syncthreads` are
not supported (the shim does not define them, so such source fails to compile here). The
shared libraries are cached by source hash under the user cache directory.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from functools import lru_cache
from typing import Any, Sequence

import numpy as np

from .errors import ColorplugError

#: The CUDA built-ins and qualifiers the kernels use, for a host C++ compiler.
SHIM_HEADER = r"""
#include <cstddef>
#include <cstdint>
#include <cmath>
#include <algorithm>
struct dim3 {
    unsigned int x, y, z;
    dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
using std::min;
using std::max;
using std::sqrt; using std::exp; using std::log; using std::fabs; using std::floor;
using std::ceil; using std::pow; using std::fmin; using std::fmax;
#define CUPY_FOR(i, n) \
    for (ptrdiff_t i = static_cast<ptrdiff_t>(blockIdx.x) * blockDim.x + threadIdx.x; \
         i < (n); i += static_cast<ptrdiff_t>(blockDim.x) * gridDim.x)

static long long colorplug_emu_bad_count = 0;
static long long colorplug_emu_bad_index = 0;
static const char* colorplug_emu_bad_name = "";
extern "C" long long colorplug_emu_errors(long long* index, const char** name) {
    *index = colorplug_emu_bad_index; *name = colorplug_emu_bad_name;
    long long n = colorplug_emu_bad_count; colorplug_emu_bad_count = 0; return n;
}
// CuPy's CArray as the ElementwiseKernels see it: flat C-order indexing, bounds-checked.
template <typename T> struct CArray {
    T* data_; ptrdiff_t size_; const char* name_;
    T& operator[](ptrdiff_t i) const {
        if (i < 0 || i >= size_) {
            if (colorplug_emu_bad_count++ == 0) { colorplug_emu_bad_index = i; colorplug_emu_bad_name = name_; }
            static T dummy; dummy = T(); return dummy;
        }
        return data_[i];
    }
    ptrdiff_t size() const { return size_; }
};
static void colorplug_emu_set(long long r, long long nt, const dim3& g, const dim3& b) {
    const long long blk = r / nt, th = r - blk * nt;
    blockIdx = dim3(blk % g.x, (blk / g.x) % g.y, blk / ((long long)g.x * g.y));
    threadIdx = dim3(th % b.x, (th / b.x) % b.y, th / ((long long)b.x * b.y));
}
#define COLORPLUG_EMU_LAUNCH(BODY) \
    gridDim = dim3(gx, gy, gz); blockDim = dim3(bx, by, bz); \
    const long long nb_ = (long long)gx * gy * gz, nt_ = (long long)bx * by * bz; \
    for (long long q_ = 0; q_ < nb_ * nt_; ++q_) { \
        colorplug_emu_set(reverse ? nb_ * nt_ - 1 - q_ : q_, nt_, gridDim, blockDim); \
        BODY; \
    }
#define COLORPLUG_EMU_GRID unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, \
    unsigned bz, int reverse
"""

#: CuPy's dtype names -> (C type, numpy dtype, ctypes type).
_TYPES = {
    "float32": ("float", np.float32, ctypes.c_float),
    "float64": ("double", np.float64, ctypes.c_double),
    "int8": ("signed char", np.int8, ctypes.c_byte),
    "uint8": ("unsigned char", np.uint8, ctypes.c_ubyte),
    "int16": ("short", np.int16, ctypes.c_short),
    "uint16": ("unsigned short", np.uint16, ctypes.c_ushort),
    "int32": ("int", np.int32, ctypes.c_int),
    "uint32": ("unsigned int", np.uint32, ctypes.c_uint),
    "int64": ("long long", np.int64, ctypes.c_longlong),
    "uint64": ("unsigned long long", np.uint64, ctypes.c_ulonglong),
}
_C_TYPES = {c: (dt, ct) for c, dt, ct in _TYPES.values()}
_C_TYPES["unsigned"] = _C_TYPES["unsigned int"]
_C_TYPES["long"] = _C_TYPES["long long"]  # LP64, as on CUDA's 64-bit hosts
_C_TYPES["unsigned long"] = _C_TYPES["unsigned long long"]
_C_TYPES["size_t"] = _C_TYPES["unsigned long long"]
_C_TYPES["ptrdiff_t"] = _C_TYPES["long long"]


class EmulationError(ColorplugError):
    """The CUDA source could not be built or run on the CPU, or a launch misbehaved
    (an argument of the wrong type, an out-of-bounds read)."""


def compiler() -> str | None:
    """The host C++ compiler: $CXX, else g++, c++ or clang++ on PATH; None if there is none."""
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _cache_dir() -> str:
    try:
        import platformdirs

        base = platformdirs.user_cache_dir("colorplug")
    except ImportError:
        base = os.path.join(tempfile.gettempdir(), "colorplug-cache")
    path = os.path.join(base, "cuda-emulation")
    os.makedirs(path, exist_ok=True)
    return path


_FLAGS = ["-O2", "-std=c++17", "-shared", "-fPIC"]


def build(source: str, label: str) -> ctypes.CDLL:
    """Compile `source` (shim header prepended) into a shared library, cached by hash."""
    cxx = compiler()
    if cxx is None:
        raise EmulationError("no C++ compiler found (set CXX or install g++) to build the "
                             "CPU emulation of the CUDA kernels")
    code = SHIM_HEADER + "\n#line 1 \"" + label + "\"\n" + source
    digest = hashlib.sha256((cxx + " ".join(_FLAGS) + code).encode()).hexdigest()[:20]
    folder = _cache_dir()
    lib = os.path.join(folder, f"{label}-{digest}.so")
    if not os.path.exists(lib):
        fd, tmp_src = tempfile.mkstemp(suffix=".cpp", dir=folder)
        with os.fdopen(fd, "w") as fh:
            fh.write(code)
        tmp_lib = tmp_src[:-4] + ".so"
        try:
            proc = subprocess.run([cxx, *_FLAGS, "-o", tmp_lib, tmp_src],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise EmulationError(f"{label}: the C++ compiler rejected the kernel source:\n"
                                     f"{proc.stderr[-4000:]}")
            os.replace(tmp_lib, lib)  # atomic: a concurrent build never sees half a file
        finally:
            for path in (tmp_src, tmp_lib):
                if os.path.exists(path):
                    os.remove(path)
    return ctypes.CDLL(lib)


def _check_errors(dll: ctypes.CDLL, label: str) -> None:
    index, name = ctypes.c_longlong(), ctypes.c_char_p()
    dll.colorplug_emu_errors.restype = ctypes.c_longlong
    n = dll.colorplug_emu_errors(ctypes.byref(index), ctypes.byref(name))
    if n:
        raise EmulationError(f"{label}: {n} out-of-bounds access(es), the first at index "
                             f"{index.value} of raw array {name.value.decode()!r}")


def _grid(dims: Sequence[int] | int) -> tuple[int, int, int]:
    dims = (dims,) if isinstance(dims, (int, np.integer)) else tuple(dims)
    return tuple(int(v) for v in dims) + (1,) * (3 - len(dims))  # type: ignore[return-value]


def _parse_c_param(decl: str) -> tuple[str, str, bool]:
    """'const float* __restrict__ src' -> ('float', 'src', True)."""
    decl = decl.replace("*", " * ")
    words = decl.split()
    name = words[-1]
    pointer = "*" in words
    base = " ".join(w for w in words[:-1] if w not in ("const", "*", "__restrict__",
                                                        "__restrict", "volatile"))
    if base not in _C_TYPES:
        raise EmulationError(f"kernel parameter {decl.strip()!r}: type {base!r} not supported")
    return base, name, pointer


class RawKernel:
    """`cupy.RawKernel(code, name)` on the CPU: `kernel(grid, block, args)` with numpy
    arrays (C-contiguous, the parameter's element type) and numpy scalars of the
    parameter's exact type."""

    def __init__(self, code: str, name: str, *, order: str = "forward"):
        m = re.search(r'extern\s+"C"\s+__global__\s+void\s+' + re.escape(name) + r"\s*\(([^)]*)\)",
                      code)
        if m is None:
            raise EmulationError(f"no extern \"C\" __global__ function {name!r} in the source")
        self.name, self.order = name, order
        self.params = [_parse_c_param(p) for p in m.group(1).split(",")]
        args = ", ".join(f"{'const ' if not ptr else ''}{base}{' *' if ptr else ''} {pname}"
                         for base, pname, ptr in self.params)
        call = ", ".join(p[1] for p in self.params)
        launcher = (f'\nextern "C" void {name}__launch(COLORPLUG_EMU_GRID, {args}) {{\n'
                    f"    COLORPLUG_EMU_LAUNCH({name}({call}))\n}}\n")
        self._dll = build(code + launcher, name)
        self._fn = getattr(self._dll, name + "__launch")
        self._fn.restype = None
        self._fn.argtypes = ([ctypes.c_uint] * 6 + [ctypes.c_int]
                             + [ctypes.c_void_p if ptr else _C_TYPES[base][1]
                                for base, _, ptr in self.params])

    def __call__(self, grid, block, args: Sequence[Any]) -> None:
        if len(args) != len(self.params):
            raise EmulationError(f"{self.name}: {len(self.params)} arguments expected, "
                                 f"got {len(args)}")
        values = []
        for (base, pname, ptr), arg in zip(self.params, args):
            dtype = _C_TYPES[base][0]
            if ptr:
                if not isinstance(arg, np.ndarray) or not arg.flags.c_contiguous:
                    raise EmulationError(f"{self.name}: {pname} must be a C-contiguous array")
                if arg.dtype != dtype:
                    raise EmulationError(f"{self.name}: {pname} is {base}*, got a {arg.dtype} array")
                values.append(arg.ctypes.data)
            else:
                if not isinstance(arg, np.generic) or arg.dtype != dtype:
                    raise EmulationError(f"{self.name}: {pname} is {base}, got {arg!r} "
                                         f"({type(arg).__name__}); pass numpy.{np.dtype(dtype).name}")
                values.append(arg.item())
        self._fn(*_grid(grid), *_grid(block), int(self.order == "reverse"), *values)


class ElementwiseKernel:
    """`cupy.ElementwiseKernel(in_params, out_params, operation, name)` on the CPU, for
    C-contiguous numpy arrays of one shape (no broadcasting) and scalars."""

    def __init__(self, in_params: str, out_params: str, operation: str, name: str, *,
                 order: str = "forward"):
        self.name, self.operation, self.order = name, operation, order
        self.inputs = [self._parse(p) for p in in_params.split(",") if p.strip()]
        self.outputs = [self._parse(p) for p in out_params.split(",") if p.strip()]
        self._built: dict[tuple, Any] = {}

    @staticmethod
    def _parse(spec: str) -> tuple[str, str, bool]:
        words = spec.split()
        raw = words[0] == "raw"
        dtype, pname = words[-2], words[-1]
        if dtype not in _TYPES:
            raise EmulationError(f"elementwise parameter {spec.strip()!r}: type not supported")
        return dtype, pname, raw

    def _function(self, scalar: tuple[bool, ...]):
        """Build the kernel for this mix of scalar/array inputs, as CuPy specializes it."""
        if scalar in self._built:
            return self._built[scalar]
        params, decls, views, argtypes = [], [], [], []
        for (dtype, pname, raw), is_scalar in zip(self.inputs, scalar):
            ctype = _TYPES[dtype][0]
            if is_scalar:
                params.append(f"const {ctype} {pname}")
                argtypes.append(_TYPES[dtype][2])
                continue
            params += [f"{ctype}* _ptr_{pname}", f"long long _size_{pname}"]
            argtypes += [ctypes.c_void_p, ctypes.c_longlong]
            view = pname if raw else f"_raw_{pname}"
            views.append(f"const CArray<{ctype}> {view} = {{_ptr_{pname}, _size_{pname}, \"{pname}\"}};")
            if not raw:
                decls.append(f"const {ctype} {pname} = _raw_{pname}[i];")
        for dtype, pname, raw in self.outputs:
            ctype = _TYPES[dtype][0]
            params += [f"{ctype}* _ptr_{pname}", f"long long _size_{pname}"]
            argtypes += [ctypes.c_void_p, ctypes.c_longlong]
            view = pname if raw else f"_raw_{pname}"
            views.append(f"const CArray<{ctype}> {view} = {{_ptr_{pname}, _size_{pname}, \"{pname}\"}};")
            if not raw:
                decls.append(f"{ctype} &{pname} = _raw_{pname}[i];")
        label = f"{self.name}_" + "".join("s" if s else "a" for s in scalar)
        source = (f'extern "C" void {label}(COLORPLUG_EMU_GRID, long long _n, '
                  f'{", ".join(params)}) {{\n'
                  f"    {' '.join(views)}\n"
                  f"    COLORPLUG_EMU_LAUNCH(CUPY_FOR(i, _n) {{ {' '.join(decls)}\n"
                  f"{self.operation}\n"
                  f"    ; }})\n}}\n")
        dll = build(source, label)
        fn = getattr(dll, label)
        fn.restype = None
        fn.argtypes = [ctypes.c_uint] * 6 + [ctypes.c_int, ctypes.c_longlong] + argtypes
        self._built[scalar] = fn, dll
        return fn, dll

    def __call__(self, *args: Any):
        nin, nout = len(self.inputs), len(self.outputs)
        if len(args) not in (nin, nin + nout):
            raise EmulationError(f"{self.name}: {nin} inputs (and optionally {nout} outputs) "
                                 f"expected, got {len(args)} arguments")
        ins, outs = args[:nin], list(args[nin:])
        scalar = tuple(not isinstance(a, np.ndarray) for a in ins)
        shape = None
        for (dtype, pname, raw), a, is_scalar in zip(self.inputs, ins, scalar):
            if raw and is_scalar:
                raise EmulationError(f"{self.name}: raw parameter {pname} needs an array")
            if not is_scalar and not raw:
                if shape is not None and a.shape != shape:
                    raise EmulationError(f"{self.name}: {pname} has shape {a.shape}, "
                                         f"other arrays {shape} (no broadcasting here)")
                shape = a.shape
        for (dtype, pname, raw), a in zip(self.outputs, outs):
            if not raw:
                if shape is not None and a.shape != shape:
                    raise EmulationError(f"{self.name}: output {pname} has shape {a.shape}, "
                                         f"inputs {shape}")
                shape = a.shape
        if shape is None:
            raise EmulationError(f"{self.name}: no array argument fixes the size")
        if not outs:
            outs = [np.empty(shape, dtype=_TYPES[dtype][1]) for dtype, _, _ in self.outputs]
        values = []
        for (dtype, pname, raw), a, is_scalar in zip(self.inputs, ins, scalar):
            np_type = _TYPES[dtype][1]
            if is_scalar:
                values.append(np_type(a).item())  # CuPy casts scalars to the declared type
                continue
            if a.dtype != np_type or not a.flags.c_contiguous:
                raise EmulationError(f"{self.name}: {pname} must be a C-contiguous {dtype} "
                                     f"array, got {a.dtype}")
            values += [a.ctypes.data, a.size]
        for (dtype, pname, raw), a in zip(self.outputs, outs):
            if not isinstance(a, np.ndarray) or a.dtype != _TYPES[dtype][1] \
                    or not a.flags.c_contiguous or not a.flags.writeable:
                raise EmulationError(f"{self.name}: output {pname} must be a writable "
                                     f"C-contiguous {dtype} array")
            values += [a.ctypes.data, a.size]
        n = int(np.prod(shape))
        threads = 128
        fn, dll = self._function(scalar)
        fn(max(1, (n + threads - 1) // threads), 1, 1, threads, 1, 1,
           int(self.order == "reverse"), n, *values)
        _check_errors(dll, self.name)
        return outs[0] if len(outs) == 1 else tuple(outs)


@lru_cache(maxsize=None)
def kernels(order: str = "forward") -> dict[str, Any]:
    """The three kernels of `colorplug.nnf_cupy`, from the very same source, on the CPU.
    `order="reverse"` runs every launch's threads last to first (a race check)."""
    from . import nnf_cupy

    if order not in ("forward", "reverse"):
        raise EmulationError(f"order must be 'forward' or 'reverse'; got {order!r}")
    return {"init": ElementwiseKernel(*nnf_cupy.INIT_KERNEL, order=order),
            "cost": ElementwiseKernel(*nnf_cupy.COST_KERNEL, order=order),
            "step": RawKernel(*nnf_cupy.STEP_KERNEL, order=order)}


def patchmatch_emulated(source: Any, target: Any, *, patch_size: int = 3, iterations: int = 5,
                        seed: int = 0, order: str = "forward"):
    """`nearest_neighbor_field(source, target, method="patchmatch", engine="cupy")`, with
    the CuPy engine's kernels and host code running on the CPU.

    `source` [B, C, Hs, Ws], `target` [B, C, Ht, Wt] (torch tensors or numpy arrays).
    Returns torch (indices [B, Hs, Ws, 2] (y, x), similarity [B, Hs, Ws]).
    """
    import torch

    from . import nnf_cupy
    from .nnf import as_tensor, patch_vectors

    s = as_tensor(source, "source").cpu()
    t = as_tensor(target, "target").cpu()
    b, _, hs, ws = s.shape
    ht, wt = t.shape[-2:]
    with torch.no_grad():
        src = patch_vectors(s, patch_size).contiguous().numpy()                 # [B, D, Ns]
        tgt = patch_vectors(t, patch_size).transpose(1, 2).contiguous().numpy()  # [B, Nt, D]
    nnf, best = nnf_cupy.run_patchmatch(kernels(order), np, src, tgt, hs, ws, ht, wt,
                                        iterations=iterations, seed=seed)
    idx = torch.from_numpy(nnf.astype(np.int64)).view(b, hs, ws)
    return torch.stack([idx // wt, idx % wt], -1), torch.from_numpy(best.copy()).view(b, hs, ws)

"""Peak memory of colorizing one huge image in a fresh process (import + model + colorize),
for gray and RGB uint8 inputs, side by side with an older checkout of colorplug.

    python benchmarks/memory.py --sizes 4096 8192 --baseline main=/path/to/old/checkout \
        --json benchmarks/results/memory.json

(``--baseline [LABEL=]PATH`` may be repeated; ``--limit-gb`` runs each child under an
address-space limit, to see what an image that does not fit becomes.)

Each measurement is a new Python process; its peak RSS (ru_maxrss) is reported in MB.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import resource, sys, time
import numpy as np
side, kind, backend, limit_gb = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
if limit_gb > 0:
    resource.setrlimit(resource.RLIMIT_AS, (int(limit_gb * 2**30),) * 2)
import colorplug
rng = np.random.default_rng(0)
shape = (side, side, 3) if kind == "rgb" else (side, side)
image = rng.integers(0, 256, shape, dtype=np.uint8)
t = time.perf_counter()
try:
    out = colorplug.get(backend, device="cpu").colorize(image)
    status = f"ok {out.shape}"
except colorplug.ColorplugError as exc:
    status = f"{type(exc).__name__}: {exc}"
except MemoryError as exc:
    status = f"bare MemoryError {exc}"
print(status[:160], f"{time.perf_counter() - t:.1f}s", flush=True)
"""


def measure(root: Path, side: int, kind: str, backend: str, limit_gb: float) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(side), kind, backend, str(limit_gb)],
                          env=env, capture_output=True, text=True, cwd=root)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"side": side, "kind": kind, "backend": backend, "limit_gb": limit_gb,
            "status": (proc.stdout.strip() or proc.stderr.strip().splitlines()[-1])[:200]}, peak_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192])
    ap.add_argument("--kinds", nargs="+", default=["gray", "rgb"])
    ap.add_argument("--backend", default="fusion")
    ap.add_argument("--baseline", action="append", default=[],
                    help="[LABEL=]PATH of an older checkout to compare with; repeatable")
    ap.add_argument("--limit-gb", type=float, default=0, help="RLIMIT_AS for the child")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    roots = {"current": Path(__file__).resolve().parents[1]}
    for spec in args.baseline:
        label, _, path = spec.rpartition("=")
        roots[label or "baseline"] = Path(path).resolve()
    rows = []
    for side in args.sizes:
        for kind in args.kinds:
            for label, root in roots.items():
                # ru_maxrss of children is a running maximum: measure each in a fresh
                # grandchild so the numbers do not carry over
                code = ("import resource, runpy, sys; sys.argv = sys.argv[1:]; "
                        "sys.path.insert(0, sys.argv[0]); "
                        "from benchmarks.memory import measure; from pathlib import Path; "
                        f"row, peak = measure(Path({str(root)!r}), {side}, {kind!r}, "
                        f"{args.backend!r}, {args.limit_gb}); "
                        "import json; row['peak_rss_mb'] = round(peak); print(json.dumps(row))")
                out = subprocess.run([sys.executable, "-c", code, str(roots["current"])],
                                     capture_output=True, text=True,
                                     cwd=roots["current"]).stdout.strip().splitlines()
                row = json.loads(out[-1]) if out else {"side": side, "kind": kind,
                                                       "status": "benchmark failed"}
                row["code"] = label
                rows.append(row)
                print(f"{label:<16} {kind:<5} {side:>6}²  peak {row.get('peak_rss_mb', '?'):>6} MB"
                      f"  {row['status']}", flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"backend": args.backend, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()

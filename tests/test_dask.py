"""colorplug.dask and ``colorplug colorize --scheduler``: lazy arrays, per-file tasks, zarr
stacks, the output policy, and a worker killed mid-run on a real LocalCluster."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import colorplug
from colorplug.cli import main
from colorplug.image import read_image

da = pytest.importorskip("dask.array", reason="the dask extra is not installed")


def _gray(rng, shape, dtype=np.uint8):
    hi = 255 if dtype == np.uint8 else 65535
    return (rng.random(shape) * hi).astype(dtype)


def _reference_planes(stack: np.ndarray, backend: str = "autoencoder") -> np.ndarray:
    """The single-process result: every plane through one colorizer's colorize_batch."""
    colorizer = colorplug.get(backend, device="cpu")
    planes = stack.reshape((-1,) + stack.shape[-2:])
    return np.stack(colorizer.colorize_batch(list(planes))).reshape(stack.shape + (3,))


def test_import_colorplug_does_not_import_dask():
    code = "import sys, colorplug, colorplug.cli; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("shape", [(40, 50), (3, 40, 50), (2, 2, 36, 44)])
def test_colorize_array_one_task_per_plane_matches_single_process(shape):
    from colorplug.dask import colorize_array

    stack = _gray(np.random.default_rng(len(shape)), shape)
    chunks = tuple(max(1, s // 2) for s in shape)  # planes split in Y and X on purpose
    lazy = colorize_array(da.from_array(stack, chunks=chunks), "autoencoder")
    assert isinstance(lazy, da.Array)
    assert lazy.shape == shape + (3,) and lazy.dtype == np.uint8
    assert lazy.numblocks == shape[:-2] + (1, 1, 1)  # one chunk (task) per whole plane
    result = lazy.compute(scheduler="threads")
    expected = _reference_planes(stack)
    assert np.abs(result.astype(int) - expected.astype(int)).max() <= 1
    assert result.std(axis=-1).mean() > 0.5  # real colour, not gray


def test_colorize_array_keeps_full_resolution_lightness():
    from skimage.color import rgb2lab

    from colorplug.dask import colorize_array

    stack = _gray(np.random.default_rng(5), (2, 64, 48))
    rgb = colorize_array(stack, "autoencoder").compute(scheduler="sync")
    lightness = rgb2lab(rgb[1])[..., 0]
    gray_l = rgb2lab(np.repeat(stack[1][..., None], 3, -1))[..., 0]
    assert np.corrcoef(lightness.ravel(), gray_l.ravel())[0, 1] > 0.99


def test_colorize_array_passes_the_reference():
    from colorplug.dask import colorize_array

    reference = colorplug.sample("astronaut_color")[::8, ::8]
    stack = _gray(np.random.default_rng(3), (2, 40, 50))
    rgb = colorize_array(stack, "exemplar", reference=reference).compute(scheduler="threads")
    expected = colorplug.get("exemplar", device="cpu").colorize_batch(list(stack),
                                                                       reference=reference)
    assert np.abs(rgb.astype(int) - np.stack(expected).astype(int)).max() <= 1


def test_colorize_array_refuses_bad_input_up_front():
    from colorplug.dask import colorize_array

    with pytest.raises(colorplug.InputError, match=r"2D \(Y, X\), 3D .* got shape \(2, 2, 2, 4, 4\)"):
        colorize_array(da.zeros((2, 2, 2, 4, 4), dtype=np.uint8), "gray")
    with pytest.raises(colorplug.UnknownBackendError):
        colorize_array(da.zeros((4, 4), dtype=np.uint8), "no-such-backend")


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def archive(tmp_path):
    """A folder of tiny PNGs, a uint16 TIFF stack and a chunked zarr volume."""
    import tifffile

    zarr = pytest.importorskip("zarr", reason="zarr (the dask extra) is not installed")
    rng = np.random.default_rng(7)
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(_gray(rng, (24, 30))).save(src / ("sub" if i % 2 else ".") / f"im{i}.png")
    tiff = np.asarray(_gray(rng, (3, 24, 30), np.uint16))
    tifffile.imwrite(tmp_path / "stack.tif", tiff, photometric="minisblack")
    vol = _gray(rng, (2, 3, 20, 26))
    z = zarr.create_array(str(tmp_path / "vol.zarr"), shape=vol.shape, chunks=(1, 1, 10, 13),
                          dtype="uint8")
    z[:] = vol
    return {"folder": src, "tiff": tmp_path / "stack.tif", "zarr": tmp_path / "vol.zarr",
            "tiff_data": tiff, "zarr_data": vol}


def _cli(*args: str) -> int:
    return main(["colorize", *map(str, args), "-b", "autoencoder"])


def test_scheduler_threads_folder_and_stacks_match_plain_run(archive, tmp_path, capsys):
    zarr = pytest.importorskip("zarr")

    plain, dask_out = tmp_path / "plain", tmp_path / "dask"
    assert _cli(archive["folder"], "-o", plain, "-q") == 0
    assert _cli(archive["folder"], archive["tiff"], archive["zarr"], "-o", dask_out,
                "--scheduler", "threads") == 0
    out = capsys.readouterr()
    assert "6 colorized, 0 failed" in out.out
    assert "100% Completed" in out.out + out.err  # dask's progress bar
    for png in sorted(plain.rglob("*.png")):
        twin = dask_out / png.relative_to(plain)
        assert np.abs(read_image(twin).astype(int) - read_image(png).astype(int)).max() <= 1
    stack = zarr.open_array(str(dask_out / "stack.zarr"), mode="r")
    assert stack.shape == (3, 24, 30, 3) and stack.dtype == np.uint8
    assert np.abs(stack[:].astype(int) - _reference_planes(archive["tiff_data"])).max() <= 1
    vol = zarr.open_array(str(dask_out / "vol.zarr"), mode="r")
    assert np.abs(vol[:].astype(int) - _reference_planes(archive["zarr_data"])).max() <= 1
    assert not [p for p in dask_out.iterdir() if p.name.endswith(".part")]


def test_scheduler_follows_output_policy_and_ignores_partial_stacks(archive, tmp_path, capsys):
    dst = tmp_path / "out"
    args = (archive["folder"], archive["zarr"], "-o", dst, "--scheduler", "threads", "-q")
    assert _cli(*args) == 0
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _cli(*args) == 1  # default policy: existing outputs reported, left alone
    err = capsys.readouterr().err
    assert f"exists, left alone: {dst / 'vol.zarr'}" in err and "im0.png" in err
    # a run killed while writing left a partial stack folder and a partial file: never
    # counted; the file is cleaned (provably ours), the folder left alone (cleanup never
    # removes folders), and the missing outputs are written on the resumed run
    code = ("import sys; from colorplug.files import temporary_beside, temporary_folder_beside;"
            "temporary_beside(sys.argv[1] + '/im0.png').write_bytes(b'half');"
            "print(temporary_folder_beside(sys.argv[1] + '/vol.zarr'))")
    partial = Path(subprocess.run([sys.executable, "-c", code, str(dst)], check=True,
                                  capture_output=True, text=True).stdout.strip())
    (partial / "c").mkdir(parents=True)
    (dst / "im0.png").unlink()
    assert _cli(*args[:-1], "--skip-existing") == 0
    assert "1 colorized, 4 skipped, 0 failed" in capsys.readouterr().out
    assert partial.exists()
    assert not [p for p in dst.iterdir() if p.is_file() and p.name.endswith(".part")]
    after = {p: p.stat().st_mtime_ns for p in dst.rglob("*")
             if p.is_file() and partial not in p.parents}
    assert {p for p in after if after[p] != before.get(p)} == {dst / "im0.png"}


def test_scheduler_processes_and_each_file_fails_alone(archive, tmp_path, capsys):
    (archive["folder"] / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dst = tmp_path / "out"
    code = main(["colorize", str(archive["folder"]), "-o", str(dst), "-b", "gray",
                 "--scheduler", "processes"])
    assert code == 1
    out = capsys.readouterr()
    assert "colorplug: failed:" in out.err and "broken.png" in out.err
    assert "4 colorized, 1 failed" in out.out
    assert read_image(dst / "sub" / "im1.png").shape == (24, 30, 3)


def test_bad_scheduler_is_a_flag_error(archive, tmp_path, capsys):
    assert _cli(archive["folder"], "-o", tmp_path / "o", "--scheduler", "gpu") == 2
    assert "--scheduler must be threads, processes or a dask scheduler address" in \
        capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- faults
@pytest.mark.slow  # a real cluster with worker processes
def test_worker_killed_mid_run_every_output_exactly_once(tmp_path, capsys):
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed")

    rng = np.random.default_rng(11)
    src = tmp_path / "in"
    src.mkdir()
    names = [f"im{i:02d}" for i in range(60)]
    for name in names:
        Image.fromarray(_gray(rng, (160, 160))).save(src / f"{name}.png")
    single, dst = tmp_path / "single", tmp_path / "cluster"
    assert _cli(src, "-o", single, "-q") == 0

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        client.run(lambda: os.environ.update(OMP_NUM_THREADS="1"))
        pids = list(client.run(os.getpid).values())
        result: dict[str, int] = {}
        run = threading.Thread(target=lambda: result.update(
            rc=_cli(src, "-o", dst, "--scheduler", cluster.scheduler_address)))
        run.start()
        deadline = time.monotonic() + 60
        while not list(dst.glob("*.png")) and time.monotonic() < deadline:
            time.sleep(0.01)
        written_at_kill = len(list(dst.glob("*.png")))
        os.kill(pids[0], signal.SIGKILL)  # the nanny restarts it; its tasks are rerun
        run.join(90)
        assert not run.is_alive()
        assert 0 < written_at_kill < len(names), "the kill must land mid-run"
        summary = capsys.readouterr().out
        new_pids = list(client.run(os.getpid).values())
        assert pids[0] not in new_pids and len(new_pids) == 2  # restarted by the nanny
        # an OME-Zarr image (TCZYX, one T and C) on the same cluster, to NAME.zarr
        import zarr

        volume = _gray(rng, (1, 1, 3, 20, 26))
        ome = zarr.open_group(str(tmp_path / "cells.ome.zarr"), mode="w")
        ome.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0"}],
                                     "axes": ["t", "c", "z", "y", "x"]}]
        ome.create_array("0", shape=volume.shape, chunks=(1, 1, 1, 10, 13),
                         dtype="uint8")[:] = volume
        stacks = tmp_path / "stacks"
        assert _cli(tmp_path / "cells.ome.zarr", "-o", stacks, "--scheduler",
                    cluster.scheduler_address, "-q") == 0
        rgb = zarr.open_array(str(stacks / "cells.zarr"), mode="r")[:]
        assert np.abs(rgb.astype(int) - _reference_planes(volume[0, 0])).max() <= 1
        assert _cli(tmp_path / "cells.ome.zarr", "-o", stacks / "cells.zarr", "--scheduler",
                    cluster.scheduler_address, "--skip-existing") == 0
        assert "0 colorized, 1 skipped" in capsys.readouterr().out

    assert result["rc"] == 0
    assert "60 colorized, 0 failed" in summary
    outputs = sorted(p.name for p in dst.iterdir() if not p.name.startswith("."))
    assert outputs == sorted(f"{n}.png" for n in names)  # every output, exactly once
    for name in names:
        ours, theirs = read_image(dst / f"{name}.png"), read_image(single / f"{name}.png")
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
    # a write cut off by the kill leaves at most a hidden temporary, removed next run
    assert _cli(src, "-o", dst, "--scheduler", "threads", "--skip-existing", "-q") == 0
    assert not [p for p in dst.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("address, problem", [
    ("tcp://h:notaport", "port is not a number"), ("foo://bar", "foo:// is not an address"),
    ("tcp://", "names no host"), ("inproc://x", "inproc:// is not an address")])
def test_bad_scheduler_addresses_are_flag_errors(archive, tmp_path, capsys, address, problem):
    """Issue 27 item 7: each of these gave a raw traceback."""
    assert _cli(archive["folder"], "-o", tmp_path / "o", "--scheduler", address) == 2
    err = capsys.readouterr().err
    assert f"--scheduler must be threads" in err and problem in err
    assert "Traceback" not in err and not (tmp_path / "o").exists()


@pytest.mark.slow  # a real cluster with worker processes
def test_a_cluster_whose_workers_all_die_stops_with_an_error(tmp_path, capsys):
    """Issue 27 item 6: the CLI waited forever (still waiting at 150 s) once every worker
    had died. Workers without a nanny are not restarted: the cluster is left with none."""
    distributed = pytest.importorskip("distributed", reason="dask.distributed not installed")

    rng = np.random.default_rng(5)
    src = tmp_path / "in"
    src.mkdir()
    for i in range(40):
        Image.fromarray(_gray(rng, (128, 128))).save(src / f"im{i:02d}.png")
    dst = tmp_path / "out"
    with distributed.LocalCluster(n_workers=0, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        worker = subprocess.Popen(  # one worker process of its own, without a nanny
            [sys.executable, "-m", "distributed.cli.dask_worker", cluster.scheduler_address,
             "--no-nanny", "--nthreads", "1", "--no-dashboard"],
            env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(1, timeout=60)
            result: dict[str, int] = {}
            run = threading.Thread(target=lambda: result.update(rc=_cli(
                src, "-o", dst, "--scheduler", cluster.scheduler_address,
                "--scheduler-wait", "3")))
            run.start()
            deadline = time.monotonic() + 120
            while not list(dst.glob("*.png")) and time.monotonic() < deadline:
                time.sleep(0.01)
            worker.kill()
            started = time.monotonic()
            run.join(120)
            assert not run.is_alive(), "still waiting for a cluster without workers"
            waited = time.monotonic() - started
        finally:
            worker.kill()
            worker.wait()
    # a hang bound, not a speed claim: --scheduler-wait 3 plus the 2-s polls and the
    # client's close; the old code never returned (still waiting at 150 s in the issue)
    assert result["rc"] == 2 and waited < 60
    err = capsys.readouterr().err
    assert "has had no workers for 3 s" in err and "--skip-existing" in err

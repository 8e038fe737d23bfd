"""A pooch downloader with an overall deadline, a size cap and an on-the-fly SHA-256.

pooch's own `HTTPDownloader` only has requests' per-socket timeout: a server that sends a
byte every 20 s keeps it alive forever, and a 3 GB answer is streamed in full before any
check. `GuardedDownloader` follows pooch's documented downloader interface
(``downloader(url, output_file, pooch, check_only=False)``) and adds what a weights cache
needs: every blocking read waits at most for what is left of the deadline, the stream stops
at the first byte over the cap, and the SHA-256 is checked before pooch moves the file into
place (pooch deletes its temporary when we raise), so a bad download is never kept.
"""
from __future__ import annotations

import hashlib
import socket
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .errors import WeightsError

#: Without a byte for this long a download is stalled (each read also ends at the deadline).
STALL_SECONDS = 60.0
CHUNK = 1 << 16


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


class GuardedDownloader:
    """Download `url` to `output_file` within `deadline` seconds and `max_bytes` bytes,
    checking the SHA-256 (64 hex digits, or a prefix) before returning.

    `exact_size`: the size the file must have, when known. `progress`: a tqdm bar on
    stderr (None: only when stderr is a terminal). http(s) and file URLs.
    """

    def __init__(self, *, deadline: float, max_bytes: int, sha256: str | None,
                 exact_size: int | None = None, progress: bool | None = None,
                 label: str = "") -> None:
        self.deadline = float(deadline)
        self.max_bytes = int(max_bytes)
        self.sha256 = sha256
        self.exact_size = exact_size
        self.progress = progress
        self.label = label

    # pooch's interface ---------------------------------------------------------------
    def __call__(self, url: str, output_file: Any, pooch: Any = None,
                 check_only: bool = False) -> bool | None:
        end = time.monotonic() + self.deadline
        scheme = urllib.parse.urlparse(url).scheme
        if check_only:
            return self._available(url, end)
        if scheme == "file":
            self._from_file(url, output_file, end)
        else:
            self._from_http(url, output_file, end)
        return None

    # ---------------------------------------------------------------------------------
    def _left(self, url: str, end: float) -> float:
        left = end - time.monotonic()
        if left <= 0:
            raise WeightsError(
                f"download of {url} did not finish within {self.deadline:g} s (the download "
                "deadline); nothing was kept. Set COLORPLUG_DOWNLOAD_TIMEOUT=SECONDS for a slow "
                "link, or download the file elsewhere and use `colorplug weights import`")
        return left

    def _available(self, url: str, end: float) -> bool:
        if urllib.parse.urlparse(url).scheme == "file":
            return Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path)).is_file()
        import requests

        try:
            with requests.head(url, allow_redirects=True,
                               timeout=min(STALL_SECONDS, self._left(url, end))) as resp:
                return bool(resp.ok)
        except requests.RequestException:
            return False

    def _copy(self, url: str, chunks, output_file: Any, end: float, total: int | None) -> None:
        """Write `chunks` to `output_file` while checking deadline, cap and hash."""
        from tqdm.auto import tqdm

        limit = self.exact_size if self.exact_size is not None else self.max_bytes
        if total is not None and total > limit:
            raise WeightsError(self._too_big(url, total))
        digest = hashlib.sha256()
        done = 0
        bar = tqdm(total=total or self.exact_size, unit="B", unit_scale=True,
                   unit_divisor=1024, desc=self.label or Path(urllib.parse.urlparse(url).path).name,
                   disable=(None if self.progress is None else not self.progress), leave=False)
        try:
            with (open(output_file, "wb") if isinstance(output_file, (str, Path))
                  else _NoClose(output_file)) as fh:
                for chunk in chunks:
                    self._left(url, end)
                    if not chunk:
                        continue
                    done += len(chunk)
                    if done > limit:
                        raise WeightsError(self._too_big(url, done, streamed=True))
                    digest.update(chunk)
                    fh.write(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
        if self.exact_size is not None and done != self.exact_size:
            raise WeightsError(f"download of {url} ended after {done} bytes; the file has "
                               f"{self.exact_size} bytes (connection cut?); nothing was kept")
        got = digest.hexdigest()
        if self.sha256 and not _matches(got, self.sha256):
            raise WeightsError(f"weights downloaded from {url} have sha256 {got}, expected "
                               f"{self.sha256}; not used, nothing was kept")

    def _too_big(self, url: str, size: int, *, streamed: bool = False) -> str:
        what = ("its expected size" if self.exact_size is not None
                else f"the download cap of {_mb(self.max_bytes)}")
        seen = f"more than {_mb(size - 1)} arrived" if streamed else f"it announces {_mb(size)}"
        return (f"download of {url} stopped: {seen}, over {what}; nothing was kept (a wrong "
                "URL or mirror?)")

    def _from_file(self, url: str, output_file: Any, end: float) -> None:
        path = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        try:
            fh = open(path, "rb")
        except OSError as exc:
            raise WeightsError(f"cannot download weights from {url}: "
                               f"{exc.strerror or exc}") from None
        with fh:
            size = path.stat().st_size
            self._copy(url, iter(lambda: fh.read(CHUNK), b""), output_file, end, size)

    def _from_http(self, url: str, output_file: Any, end: float) -> None:
        resp = self._open(url, end)
        with resp:
            if resp.status_code != 200:
                raise WeightsError(f"cannot download weights from {url}: the server answered "
                                   f"HTTP {resp.status_code} {resp.reason or ''}".rstrip())
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if resp.headers.get("Content-Encoding", "identity") not in ("identity", ""):
                total = None  # the announced length is the compressed one
            self._copy(url, self._chunks(resp, url, end), output_file, end, total)

    def _open(self, url: str, end: float) -> Any:
        """The response, headers read, within the deadline: the request runs in a helper
        thread so that a server dripping its headers cannot outlast the deadline either."""
        import requests

        box: dict[str, Any] = {}
        done, abandoned = threading.Event(), threading.Event()

        def request() -> None:
            try:
                left = self._left(url, end)
                box["resp"] = requests.get(url, stream=True, allow_redirects=True,
                                           headers={"Accept-Encoding": "identity"},
                                           timeout=(min(30.0, left), min(STALL_SECONDS, left)))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                box["exc"] = exc
            finally:
                done.set()
                if abandoned.is_set() and "resp" in box:
                    box["resp"].close()

        threading.Thread(target=request, daemon=True, name="colorplug-download").start()
        try:
            finished = done.wait(max(0.0, end - time.monotonic()))
        finally:
            if not done.is_set():
                abandoned.set()
        if not finished:
            if "resp" in box:
                box["resp"].close()
            self._left(url, end)  # raises: the deadline has passed
        exc = box.get("exc")
        if isinstance(exc, WeightsError):
            raise exc
        if isinstance(exc, requests.Timeout):
            self._left(url, end)
            raise WeightsError(f"cannot download weights from {url}: the server did not "
                               "answer in time") from None
        if isinstance(exc, requests.RequestException):
            raise WeightsError(f"cannot download weights from {url}: cannot reach the "
                               f"server ({_reason(exc)})") from None
        if exc is not None:
            raise exc
        return box["resp"]

    def _chunks(self, resp: Any, url: str, end: float):
        """Read the body; before each read the socket waits at most for what is left."""
        import requests

        sock = _socket_of(resp)
        # read1 returns what has arrived (read() would wait for a full chunk, byte by byte)
        read = getattr(resp.raw, "read1", None) or resp.raw.read
        while True:
            left = self._left(url, end)
            if sock is not None:
                try:
                    sock.settimeout(min(STALL_SECONDS, left))
                except OSError:
                    sock = None
            try:
                chunk = read(CHUNK, decode_content=True)
            except (requests.RequestException, OSError, socket.timeout) as exc:
                self._left(url, end)
                raise WeightsError(f"download of {url} broke off: {_reason(exc)}; nothing "
                                   "was kept") from None
            except Exception as exc:  # noqa: BLE001 - urllib3's read/protocol errors
                self._left(url, end)
                raise WeightsError(f"download of {url} broke off: {_reason(exc)}; nothing "
                                   "was kept") from None
            if not chunk:
                return
            yield chunk


class _NoClose:
    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def __enter__(self) -> Any:
        return self.fh

    def __exit__(self, *exc: Any) -> None:
        return None


def _socket_of(resp: Any) -> socket.socket | None:
    """The response's socket (urllib3's public `connection` -> http.client's `sock`)."""
    conn = getattr(resp.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "Temporary failure in name resolution", "No route to host"):
        if marker in text:
            return marker
    return text.splitlines()[0][:200]


def _matches(digest: str, expected: str) -> bool:
    expected = expected.lower()
    return digest.startswith(expected) if len(expected) < 64 else digest == expected

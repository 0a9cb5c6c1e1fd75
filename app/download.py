"""Downloading a known model with huggingface_hub: resumable, checked, cancellable.

huggingface_hub resolves each file (URL, exact size, ETag) on the Hub or the endpoint given.
Bytes are streamed into `<name>.part` beside the final file, so a cut connection, Cancel or a
restart of the app resumes with an HTTP Range request where it stopped. Free disk space is
checked before starting; each finished file is verified against the Hub's checksum (SHA-256
for LFS files, the git blob SHA-1 for small ones) before it takes its final name.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from models.registry import KnownModel

CHUNK = 1024 * 1024
DISK_MARGIN = 200 * 10**6       # keep some room so the Mac isn't left with a full disk
MANIFEST = ".download.json"
NO_NETWORK = "Can't reach Hugging Face: no network? Check the connection, then press Download again."
log = logging.getLogger(__name__)


class DownloadError(Exception):
    """The download can't go on; str() is one sentence with a way forward."""


class DownloadCancelled(Exception):
    """The user pressed Cancel; the .part files stay for a later resume."""


@dataclass
class RemoteFile:
    name: str
    url: str
    size: int
    checksum: str | None         # 64 hex: SHA-256 (LFS); 40 hex: git blob SHA-1; None: size only


@dataclass
class Progress:
    done: int                    # bytes on disk (including earlier sessions)
    total: int
    speed: float                 # bytes per second, smoothed
    eta_s: float | None
    file: str
    stage: str = "downloading"   # "downloading" | "verifying"


@contextlib.contextmanager
def network_allowed():
    """The download is the app's only network use: lift offline mode just for it."""
    import huggingface_hub.constants as c
    saved = c.HF_HUB_OFFLINE
    c.HF_HUB_OFFLINE = False
    try:
        yield
    finally:
        c.HF_HUB_OFFLINE = saved


def _unreachable(e: BaseException | None) -> bool:
    """The server could not be reached at all (no network, DNS, refused, connect timeout)."""
    names = {"ConnectError", "ConnectTimeout", "ConnectionError", "gaierror", "ConnectionRefusedError",
             "NameResolutionError", "OfflineModeIsEnabled", "NewConnectionError"}
    seen = 0
    while e is not None and seen < 8:
        if type(e).__name__ in names:
            return True
        e, seen = e.__cause__ or e.__context__, seen + 1
    return False


def _cut(e: Exception) -> DownloadError:
    # The user gets a sentence, the log gets the exception.
    log.warning("download stopped: %s: %s", type(e).__name__, e)
    if _unreachable(e):
        return DownloadError(NO_NETWORK)
    return DownloadError("The download was interrupted; check the connection and press Download again: it "
                         "resumes where it stopped.")


def _write_error(e: OSError, dest: Path, name: str) -> DownloadError:
    """A local write failure, told apart from a network cut (the connection is not to blame)."""
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DownloadError(f"The download stopped because the disk holding {dest} is full; free some space, then "
                             "press Download again: it resumes where it stopped.")
    if e.errno == errno.EFBIG:
        return DownloadError(f"The download stopped because {name} is larger than the disk holding {dest} allows "
                             "for one file (drives formatted as FAT hold at most 4 GB per file); choose a folder on "
                             "another disk.")
    return DownloadError(f"The download can't be written to {dest} ({e.strerror or e}); choose another folder or "
                         "check the disk, then press Download again.")


def resolve_files(model: KnownModel, endpoint: str | None = None) -> list[RemoteFile]:
    """Ask the Hub (or `endpoint`) for each file's URL, exact size and checksum."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError
    out = []
    with network_allowed():
        for f in model.files:
            url = hf_hub_url(model.repo_id, f.name, revision=model.revision, endpoint=endpoint)
            try:
                meta = get_hf_file_metadata(url, endpoint=endpoint, timeout=20)
            except EntryNotFoundError:
                if f.required:
                    raise DownloadError(f"{model.repo_id} no longer has {f.name}; update the app.") from None
                continue
            except HfHubHTTPError as e:
                status = getattr(getattr(e, "response", None), "status_code", None)
                if status == 404 and not f.required:
                    continue
                raise _cut(e) from e
            except Exception as e:  # connection refused, DNS, timeouts...
                raise _cut(e) from e
            size = meta.size if meta.size is not None else f.approx_bytes
            etag = (meta.etag or "").strip('"').lower()
            checksum = etag if re.fullmatch(r"[0-9a-f]{64}|[0-9a-f]{40}", etag) else None
            out.append(RemoteFile(f.name, meta.location or url, size, checksum))
    return out


def bytes_on_disk(dest: Path, f: RemoteFile) -> int:
    final, part = dest / f.name, dest / (f.name + ".part")
    if final.is_file() and final.stat().st_size == f.size:
        return f.size
    return part.stat().st_size if part.is_file() else 0


def disk_space_problem(dest: Path, files: list[RemoteFile]) -> str | None:
    """None if the rest of the download fits on the disk holding `dest`; else one sentence."""
    need = sum(f.size - bytes_on_disk(dest, f) for f in files)
    probe = dest
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if need + DISK_MARGIN > free:
        return (f"The download needs {need / 1e9:.1f} GB of free space in {dest} but only {free / 1e9:.1f} GB is "
                "free; free some space or choose another folder.")
    return None


def file_checksum(path: Path, checksum: str, cancel: threading.Event | None = None) -> str:
    """SHA-256 of the file, or the git blob SHA-1 when `checksum` is 40 hex digits long."""
    if len(checksum) == 40:
        h = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    else:
        h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(8 * CHUNK):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled()
            h.update(chunk)
    return h.hexdigest()


class _Meter:
    """Smoothed speed and time left, reported at most every `every` seconds."""

    def __init__(self, total: int, done: int, report: Callable[[Progress], None], every: float = 0.2):
        self.total, self.done, self.report, self.every = total, done, report, every
        self.speed, self._t, self._since, self._last_report = 0.0, time.monotonic(), 0, 0.0

    def add(self, n: int, name: str, force: bool = False) -> None:
        self.done += n
        self._since += n
        now = time.monotonic()
        if now - self._t >= 0.5:
            rate = self._since / (now - self._t)
            self.speed = rate if self.speed == 0 else 0.7 * self.speed + 0.3 * rate
            self._t, self._since = now, 0
        if force or now - self._last_report >= self.every:
            self._last_report = now
            eta = (self.total - self.done) / self.speed if self.speed > 0 else None
            self.report(Progress(self.done, self.total, self.speed, eta, name))


def _fetch(f: RemoteFile, dest: Path, meter: _Meter, cancel: threading.Event, headers: dict) -> None:
    """Stream one file into <name>.part, resuming from what is already there."""
    from huggingface_hub.utils import get_session, hf_raise_for_status
    part = dest / (f.name + ".part")
    for attempt in range(4):
        have = part.stat().st_size if part.exists() else 0
        if have > f.size:  # the remote file changed under us: start it again
            part.unlink()
            have = 0
        if have == f.size:
            return
        h = dict(headers, **({"Range": f"bytes={have}-"} if have else {}))
        try:
            with get_session().stream("GET", f.url, headers=h, follow_redirects=True, timeout=30) as r:
                hf_raise_for_status(r)
                if have and r.status_code == 200:  # server ignored Range: rewrite from the start
                    meter.add(-have, f.name)
                    have = 0
                try:
                    out = part.open("ab" if have else "wb")
                except OSError as e:
                    raise _write_error(e, dest, f.name) from e
                try:
                    for chunk in r.iter_bytes():  # as it arrives: a cut loses nothing already received
                        if cancel.is_set():
                            raise DownloadCancelled()
                        try:
                            out.write(chunk)
                            out.flush()  # a full disk shows up here, not at close
                        except OSError as e:
                            raise _write_error(e, dest, f.name) from e
                        meter.add(len(chunk), f.name)
                finally:
                    with contextlib.suppress(OSError):  # everything was flushed: a failing close is moot
                        out.close()
            if part.stat().st_size >= f.size:
                return
        except (DownloadCancelled, DownloadError):
            raise
        except Exception as e:
            if attempt == 3 or cancel.is_set():
                raise _cut(e) from e
            time.sleep(0.2 + attempt * 1.5)
    raise DownloadError(f"{f.name} kept arriving short; press Download again to resume.")


def download_model(model: KnownModel, dest: str | Path, progress: Callable[[Progress], None] = lambda p: None,
                   cancel: threading.Event | None = None, endpoint: str | None = None) -> Path:
    """Download every file of `model` into `dest` (resuming .part files); returns `dest` when verified."""
    from huggingface_hub.utils import build_hf_headers
    dest = Path(dest).expanduser()
    cancel = cancel or threading.Event()
    files = resolve_files(model, endpoint)
    dest.mkdir(parents=True, exist_ok=True)
    problem = disk_space_problem(dest, files)
    if problem:
        raise DownloadError(problem)
    (dest / MANIFEST).write_text(json.dumps({"repo_id": model.repo_id, "revision": model.revision,
                                             "files": {f.name: {"size": f.size, "checksum": f.checksum} for f in files}},
                                            indent=1))
    total = sum(f.size for f in files)
    meter = _Meter(total, sum(bytes_on_disk(dest, f) for f in files), progress)
    headers = build_hf_headers()
    with network_allowed():
        for f in files:
            final, part = dest / f.name, dest / (f.name + ".part")
            if final.is_file() and final.stat().st_size == f.size and not part.exists():
                continue
            _fetch(f, dest, meter, cancel, headers)
            if part.stat().st_size != f.size:
                raise DownloadError(f"{f.name} arrived with the wrong size; press Download again to fetch it anew.")
            if f.checksum:
                progress(Progress(meter.done, total, meter.speed, None, f.name, stage="verifying"))
                if file_checksum(part, f.checksum, cancel) != f.checksum:
                    part.unlink()
                    meter.add(-f.size, f.name)
                    raise DownloadError(f"{f.name} arrived damaged (checksum mismatch); press Download again to "
                                        "fetch it anew.")
            part.replace(final)
    meter.add(0, "", force=True)
    return dest


def bytes_downloaded(dest: str | Path) -> int:
    """Bytes of the model already in `dest` (finished files and .part files): 0 means a Download
    button, anything else a Resume."""
    dest = Path(dest).expanduser()
    if not dest.is_dir():
        return 0
    return sum(p.stat().st_size for p in dest.iterdir() if p.is_file() and p.name != MANIFEST)


def free_bytes(dest: str | Path) -> int:
    """Free space on the disk that holds (or will hold) `dest`."""
    probe = Path(dest).expanduser()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free

"""Downloading dataset files: resumable, checksummed, atomic, and with a clear word when offline.

A download streams into ``DEST.part``; an interrupted one resumes from where it stopped with an HTTP Range
request. Only a file whose SHA-256 matches is renamed to ``DEST``, so ``DEST`` is either absent or right.
For a file whose authors publish no checksum, ``download_recorded`` trusts the first complete download and
records its SHA-256 beside it (``DEST.sha256``); every later use is checked against that record.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional, Sequence, Union

from ganforge.errors import UserError
from ganforge.version import __version__

log = logging.getLogger("ganforge")

_CHUNK = 1 << 20
_TIMEOUT_S = 30


def cache_dir() -> Path:
    """Where downloads are kept: $GANFORGE_CACHE, else ~/.cache/ganforge."""
    configured = os.environ.get("GANFORGE_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "ganforge"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: Union[str, Sequence[str]], sha256: Optional[str], dest: Path, *, progress: bool = True) -> Path:
    """Fetch ``url`` to ``dest`` unless a file with this SHA-256 is already there; returns ``dest``.

    ``url`` may be a list of mirrors, tried in order until one gives the right file. ``sha256=None`` checks
    nothing (for files whose hash is not published): an existing ``dest`` is kept, being complete by construction.
    """
    dest = Path(dest)
    sha256 = sha256.lower() if sha256 else None
    if dest.is_file() and (sha256 is None or sha256_of(dest) == sha256):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the download folder {dest.parent}: {e.strerror or e}") from None
    urls = [url] if isinstance(url, str) else list(url)
    if not urls:
        raise ValueError("download needs at least one URL")
    errors = []
    for candidate in urls:
        try:
            _fetch(candidate, sha256, dest, progress)
            return dest
        except UserError as e:
            errors.append(e)
    if len(errors) == 1:
        raise errors[0]
    raise UserError(f"{len(errors)} mirrors failed for {dest.name}; the last: {errors[-1]}")


def download_recorded(url: Union[str, Sequence[str]], dest: Path, *, progress: bool = True) -> Path:
    """``download`` for a file with no published checksum: trust on first use.

    The first complete download's SHA-256 is written to ``DEST.sha256``; from then on ``dest`` is checked
    against it (and fetched again when it does not match), as if that checksum had been pinned.
    """
    dest = Path(dest)
    record = dest.with_name(dest.name + ".sha256")
    try:
        recorded = record.read_text().split()[0] if record.is_file() else None
    except (OSError, UnicodeDecodeError, IndexError):
        recorded = None  # an unreadable or empty record is no record: the download decides afresh
    if recorded:
        return download(url, recorded, dest, progress=progress)
    download(url, None, dest, progress=progress)
    digest = sha256_of(dest)
    try:
        record.write_text(f"{digest}  {dest.name}\n")
    except OSError as e:
        raise UserError(f"cannot write {record}: {e.strerror or e}") from None
    log.info("downloaded %s; no published checksum, so its SHA-256 is recorded in %s and checked from now on", dest.name, record)
    return dest


def _fetch(url: str, sha256: Optional[str], dest: Path, progress: bool) -> None:
    part = dest.with_suffix(dest.suffix + ".part")
    _stream(url, part, dest, progress)
    actual = sha256_of(part) if sha256 else None
    if actual != sha256:
        part.unlink()
        raise UserError(
            f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}; the download was deleted, try again"
        )
    os.replace(part, dest)
    _fsync_folder(dest.parent)


def _stream(url: str, part: Path, dest: Path, progress: bool) -> None:
    """Append the rest of ``url`` to ``part`` (all of it when ``part`` is absent or the server ignores Range)."""
    have = part.stat().st_size if part.is_file() else 0
    response = _request(url, have, dest)
    if response is None:
        return
    with response:
        resuming = bool(have) and response.status == 206 and response.headers.get("Content-Range", "").startswith(f"bytes {have}-")
        if not resuming:
            have = 0  # a 200 answer carries the whole file: start over
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        bar = _progress_bar(progress, None if expected is None else have + expected, have, dest.name)
        try:
            try:
                stream = open(part, "ab" if resuming else "wb")
            except OSError as e:
                raise UserError(f"cannot write {part}: {e.strerror or e}") from None
            with stream:
                received = _copy(response, stream, url, bar)
                stream.flush()
                os.fsync(stream.fileno())
        finally:
            if bar is not None:
                bar.close()
    # http.client ends a body early without complaint when the connection closes: count the bytes.
    if expected is not None and received < expected:
        raise UserError(
            f"the download of {url} broke off after {have + received:,} of {have + expected:,} bytes; run again to resume it"
        )


def _request(url: str, have: int, dest: Path):
    """The open response, asking for the bytes after ``have``; None when the part already holds them all."""
    headers = {"User-Agent": f"ganforge/{__version__}"}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            return None  # Range not satisfiable: the part is already whole (or too long); the checksum decides
        raise UserError(f"cannot download {url} (the server answered {e.code} {e.reason}); put the file at {dest} yourself") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise UserError(f"cannot download {url} ({reason}); you appear to be offline: put the file at {dest} yourself") from None


def _copy(response, stream, url: str, bar) -> int:
    """Copy the response body to ``stream``; returns the number of bytes copied."""
    received = 0
    while True:
        try:
            block = response.read(_CHUNK)
        except (OSError, http.client.HTTPException) as e:
            raise UserError(f"the download of {url} broke off ({e or type(e).__name__}); run again to resume it") from None
        if not block:
            return received
        try:
            stream.write(block)
        except OSError as e:
            raise UserError(f"cannot write {stream.name}: {e.strerror or e}") from None
        received += len(block)
        if bar is not None:
            bar.update(len(block))


def _progress_bar(enabled: bool, total: Optional[int], initial: int, label: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=label, leave=False)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); folders cannot be opened this way on Windows."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)

"""Finding inputs and taking them apart: paths, dirs, globs, stdin; gzip/zstd; JSON, JSON Lines, proto.

``expand_inputs`` turns command-line arguments into a list of ``Input``. ``iter_units`` reads one input
and yields its documents one by one — ``(line, offset, document)`` — or ``Unreadable`` markers for the
parts that cannot be decoded, so that a bad line or frame costs only itself.

Format detection looks at bytes, not names: gzip and zstd by magic number; JSON by its first
non-blank byte; otherwise the collector file exporter's 4-byte big-endian length-prefixed stream
(each message optionally zstd-compressed), else a single protobuf message.

Must not import duckdb, typer, rich or textual.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import os
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from aiobs.errors import BadInputError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
UTF8_BOM = b"\xef\xbb\xbf"
# Largest single message accepted from a length-prefixed stream (the collector's default max is
# far below this); a bigger prefix means the bytes are not that framing.
MAX_FRAME = 512 * 1024 * 1024
# Files in a directory that are not telemetry, by suffix, and what they are (said when skipped).
SKIP_SUFFIXES = {
    ".md": "text, not telemetry",
    ".txt": "text, not telemetry",
    ".py": "source code, not telemetry",
    ".toml": "configuration, not telemetry",
    ".yaml": "configuration, not telemetry",
    ".yml": "configuration, not telemetry",
    ".lock": "a lock file",
    ".duckdb": "a DuckDB database (an aiobs store?), not telemetry",
    ".wal": "a database's write-ahead log",
}
# Not telemetry, though JSON: the ground truth `aiobs demo --out DIR` writes beside its files, so
# `aiobs ingest DIR` works. Named explicitly, it is still read (and refused).
SKIP_NAMES = {"manifest.json": "the ground truth aiobs demo writes beside its telemetry"}
HIDDEN = "hidden"


@dataclass(frozen=True)
class Skipped:
    """A file in a directory that ingest passed over, and why."""

    path: str
    reason: str


@dataclass
class Detected:
    """What ``iter_units`` found an input to be: its compression and its encoding."""

    compression: str = ""  # "gzip", "zstd" or ""
    encoding: str = ""  # "json", "json-lines", "protobuf", "protobuf-frames"

    def describe(self, forms: list[str]) -> str:
        """The input's format as aiobs_ingests records it: ``otlp-json-lines (gzip)``, ``otlp-
        protobuf``, ``langfuse export (zstd)`` (a converted form names itself: always JSON)."""
        if forms and forms != ["otlp"]:
            name = ", ".join(forms)
        elif not self.encoding:
            name = "unrecognised"  # not JSON, not OTLP protobuf, or empty
        elif not forms:
            name = self.encoding  # JSON, but no OTLP (or other known) document in it
        else:
            name = f"otlp-{self.encoding}"
        return f"{name} ({self.compression})" if self.compression else name


@dataclass(frozen=True)
class Input:
    name: str  # as shown to the user and recorded in aiobs_ingests
    path: Path | None  # None for stdin


@dataclass(frozen=True)
class Unreadable:
    line: int | None
    offset: int | None
    reason: str
    excerpt: str = ""


def expand_inputs(args: list[str]) -> tuple[list[Input], list[str], list[Skipped]]:
    """Resolve paths, directories (recursively) and globs. Returns (inputs, problems, what a
    directory held that is not telemetry: hidden files and folders, docs, a demo's manifest)."""
    inputs: list[Input] = []
    problems: list[str] = []
    skipped: list[Skipped] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = str(path.resolve())
        if key not in seen:
            seen.add(key)
            inputs.append(Input(str(path), path))

    for arg in args:
        if arg == "-":
            inputs.append(Input("<stdin>", None))
            continue
        path = Path(arg).expanduser()
        if path.is_dir():
            files = _telemetry_files(path, skipped)
            if not files:
                problems.append(f"{arg}: directory has no files")
            for p in files:
                add(p)
        elif path.exists():
            add(path)
        elif glob.has_magic(arg):
            matches = sorted(glob.glob(os.path.expanduser(arg), recursive=True))
            files = [Path(m) for m in matches if Path(m).is_file()]
            if not files:
                problems.append(f"{arg}: no files match")
            for p in files:
                add(p)
        else:
            problems.append(f"{arg}: no such file or directory")
    return inputs, problems, skipped


def _telemetry_files(folder: Path, skipped: list[Skipped]) -> list[Path]:
    """The files under ``folder`` to read, sorted; the others go to ``skipped`` (a hidden folder
    as one entry, not each file in it)."""
    files: list[Path] = []
    hidden: set[Path] = set()
    for p in sorted(folder.rglob("*")):
        if not p.is_file():
            continue
        parts = p.relative_to(folder).parts
        first_hidden = next((i for i, part in enumerate(parts) if part.startswith(".")), None)
        if first_hidden is not None:
            top = folder.joinpath(*parts[: first_hidden + 1])
            if top not in hidden:
                hidden.add(top)
                shown = f"{top}/" if first_hidden < len(parts) - 1 else str(top)
                skipped.append(Skipped(shown, HIDDEN))
            continue
        reason = SKIP_NAMES.get(p.name) or SKIP_SUFFIXES.get(p.suffix.lower())
        if reason is not None:
            skipped.append(Skipped(str(p), reason))
            continue
        files.append(p)
    return files


class CountingReader(io.RawIOBase):
    """Wraps a binary stream; counts bytes and hashes them as they are read (one pass)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.bytes_read = 0
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.bytes_read += n
        self.sha256.update(data)
        return n


def open_input(inp: Input) -> tuple[CountingReader, int | None]:
    """Open an input for reading; returns the counting reader and the size if known."""
    if inp.path is None:
        return CountingReader(sys.stdin.buffer), None
    try:
        fh = inp.path.open("rb")
    except OSError as exc:
        raise BadInputError(f"{inp.name}: cannot read ({exc.strerror or exc})") from exc
    try:
        size: int | None = inp.path.stat().st_size
    except OSError:
        size = None
    return CountingReader(fh), size


Unit = tuple[int | None, int | None, Any] | Unreadable


def iter_units(stream: Any, detected: Detected | None = None) -> Iterator[Unit]:
    """Yield ``(line, offset, document)`` for each document in the stream, detecting its format.

    ``stream`` is any readable binary file object (file, stdin buffer, gzip or zstd reader);
    ``detected``, when given, is told what the stream turned out to be.
    """
    found = detected if detected is not None else Detected()
    buffered: Any = (
        stream if isinstance(stream, io.BufferedReader) else io.BufferedReader(stream, 1 << 20)
    )
    head = buffered.peek(64)[:64]
    if not head:
        yield Unreadable(None, 0, "empty input")
        return
    if head.startswith(GZIP_MAGIC):
        found.compression = found.compression or "gzip"
        tolerant = _TolerantReader(gzip.GzipFile(fileobj=buffered))
        yield from iter_units(tolerant, found)
        if tolerant.error is not None:
            yield Unreadable(None, None, f"truncated or corrupt gzip stream: {tolerant.error}")
        return
    if head.startswith(ZSTD_MAGIC):
        found.compression = found.compression or "zstd"
        frames = _ZstdFrames(buffered)
        yield from iter_units(io.BufferedReader(frames, 1 << 20), found)
        if frames.error is not None:
            yield Unreadable(None, None, f"truncated or corrupt zstd stream: {frames.error}")
        return
    if head.startswith(UTF8_BOM):
        buffered.read(len(UTF8_BOM))
        head = buffered.peek(64)[:64]
    first = head.lstrip()[:1]
    sample = buffered.peek(1 << 16)
    if first in (b"{", b"[") or not head.lstrip() or (b"\x00" not in sample and b"\n{" in sample):
        # JSON, or text whose first line is damaged but later lines are JSON objects (a file cut
        # mid-record, a stray header line). _iter_json still tries protobuf if no JSON is found.
        yield from _iter_json(buffered, found)
        return
    yield from _iter_binary(buffered, found)


class _ZstdFrames(io.RawIOBase):
    """Decompresses a sequence of zstd frames (whole-file zstd, or a rotated exporter file whose
    writes are each a frame) and notices a frame cut short, which zstandard's stream reader
    passes over in silence. Data before the cut is read as usual; ``error`` says what broke."""

    def __init__(self, raw: Any) -> None:
        import zstandard

        self.raw = raw
        self.dctx = zstandard.ZstdDecompressor()
        self.dobj = self.dctx.decompressobj()
        self.in_frame = False
        self.pending = b""
        self.error: str | None = None
        self.done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        import zstandard

        while not self.pending and not self.done:
            chunk = self.raw.read(1 << 20)
            if not chunk:
                self.done = True
                if self.in_frame:
                    self.error = "the last frame is cut short"
                break
            try:
                out = []
                while chunk:
                    out.append(self.dobj.decompress(chunk))
                    self.in_frame = True
                    if self.dobj.eof:
                        chunk = self.dobj.unused_data
                        self.dobj = self.dctx.decompressobj()
                        self.in_frame = False
                    else:
                        chunk = b""
                self.pending = b"".join(out)
            except zstandard.ZstdError as exc:
                self.error = str(exc)
                self.done = True
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


class _TolerantReader(io.RawIOBase):
    """A decompressing stream that ends cleanly at a truncation, remembering the error.

    Everything decoded before the cut is still read (and ingested); the caller reports the cut.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.error: Exception | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.error is not None:
            return 0
        try:
            # read1, not read: read() loops to fill the buffer and drops what it decoded when the
            # stream breaks; read1 returns each decoded piece, and the next call meets the error.
            data = self.inner.read1(len(buffer))
        except (EOFError, OSError, zlib.error) as exc:  # zlib.error: a corrupt deflate stream
            self.error = exc
            return 0
        n = len(data)
        buffer[:n] = data
        return n


def _iter_json(
    stream: io.BufferedReader, found: Detected
) -> Iterator[tuple[int | None, int | None, Any] | Unreadable]:
    first = stream.readline()
    line_no = 1
    offset = 0
    skipped = b""
    while first and not first.strip():
        offset += len(first)
        skipped += first
        first = stream.readline()
        line_no += 1
    try:
        doc = orjson.loads(first)
    except orjson.JSONDecodeError:
        doc = _NOT_JSON
    if doc is not _NOT_JSON:
        # JSON Lines (the collector file exporter): one document per line, signals mixed.
        found.encoding = "json"  # until a second line comes
        yield (line_no, offset, doc)
        offset += len(first)
        for raw in stream:
            line_no += 1
            if raw.strip():
                found.encoding = "json-lines"
                try:
                    yield (line_no, offset, orjson.loads(raw))
                except orjson.JSONDecodeError as exc:
                    yield Unreadable(line_no, offset, f"invalid JSON: {exc}", _excerpt(raw))
            offset += len(raw)
        return
    # A pretty-printed whole document (or JSON Lines whose first line is broken).
    rest = stream.read()
    whole = first + rest
    try:
        document = orjson.loads(whole)
    except orjson.JSONDecodeError as exc:
        whole_error = exc
    else:
        found.encoding = "json"
        yield (1, 0, document)
        return
    lines = whole.split(b"\n")
    parsed = []
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            parsed.append((i + line_no, orjson.loads(raw)))
        except orjson.JSONDecodeError:
            parsed.append((i + line_no, _NOT_JSON))
    good = [p for p in parsed if p[1] is not _NOT_JSON]
    if not good:
        # No JSON anywhere. Protobuf can look like JSON to the sniffing above (0x0a, a field tag,
        # is also a newline, and a length byte may be '{' or '['): try it before giving up.
        binary = Detected()
        units = list(_iter_binary(io.BufferedReader(io.BytesIO(skipped + whole)), binary))
        if units and not any(isinstance(u, Unreadable) for u in units):
            found.encoding = binary.encoding
            yield from units
            return
        yield Unreadable(line_no, offset, f"invalid JSON: {whole_error}", _excerpt(whole))
        return
    found.encoding = "json-lines"
    pos = offset
    offsets = []
    for raw in lines:
        offsets.append(pos)
        pos += len(raw) + 1
    for number, doc in parsed:
        at = offsets[number - line_no]
        if doc is _NOT_JSON:
            yield Unreadable(number, at, "invalid JSON line", _excerpt(lines[number - line_no]))
        else:
            yield (number, at, doc)


_NOT_JSON: Any = object()


def _excerpt(raw: bytes, limit: int = 300) -> str:
    return raw[:limit].decode("utf-8", "replace")


def _iter_binary(stream: Any, found: Detected) -> Iterator[Unit]:
    from aiobs.ingest.proto import decode_message

    head = stream.peek(8)[:8]
    framed = False
    if len(head) >= 5:
        (length,) = struct.unpack(">I", head[:4])
        framed = 0 < length <= MAX_FRAME and (head[4:5] == b"\x0a" or head[4:8] == ZSTD_MAGIC)
        # A bare protobuf message starts with a field tag (0x0a), not a 4-byte length.
        framed = framed and head[:1] != b"\x0a"
    if not framed:
        data = stream.read()
        try:
            message = decode_message(data)
        except ValueError as exc:
            yield Unreadable(None, 0, f"not OTLP JSON or protobuf: {exc}", _excerpt(data, 80))
        else:
            found.encoding = "protobuf"
            yield (None, 0, message)
        return
    found.encoding = "protobuf-frames"
    offset = 0
    index = 0
    while True:
        prefix = stream.read(4)
        if not prefix:
            return
        index += 1
        if len(prefix) < 4:
            yield Unreadable(index, offset, "truncated length prefix at end of stream")
            return
        (length,) = struct.unpack(">I", prefix)
        if length > MAX_FRAME:
            yield Unreadable(
                index, offset, f"frame length {length} is implausible; stream is corrupt"
            )
            return
        payload = stream.read(length)
        if len(payload) < length:
            yield Unreadable(index, offset, f"truncated frame: {len(payload)} of {length} bytes")
            return
        if payload.startswith(ZSTD_MAGIC):
            import zstandard

            try:
                payload = zstandard.ZstdDecompressor().decompressobj().decompress(payload)
            except zstandard.ZstdError as exc:
                yield Unreadable(index, offset, f"corrupt zstd frame: {exc}")
                offset += 4 + length
                continue
        yield _decode_frame(payload, index, offset)
        offset += 4 + length


def _decode_frame(payload: bytes, index: int, offset: int) -> Unit:
    """One frame: JSON (``format: json``) or protobuf. A protobuf message can look like JSON after
    its first byte (0x0a, a field tag, is also a newline), so a failed JSON read tries protobuf."""
    from aiobs.ingest.proto import decode_message

    if payload.lstrip()[:1] in (b"{", b"["):
        try:
            return (index, offset, orjson.loads(payload))
        except orjson.JSONDecodeError as exc:
            json_error: Exception = exc
    else:
        json_error = ValueError("not JSON")
    try:
        return (index, offset, decode_message(payload))
    except ValueError as exc:
        error = json_error if payload.lstrip()[:1] in (b"{", b"[") else exc
        return Unreadable(index, offset, f"undecodable frame: {error}", _excerpt(payload, 80))

"""The stage contract: every stage writes one folder with a `breakgan.json` record, atomically.

The record holds the stage name, the package version, the options used and the inputs with their
content hashes, so the next stage can find what it needs and `breakgan run` can skip a stage whose
inputs and options are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from breakgan import __version__
from breakgan.errors import BreakganError

RECORD_NAME = "breakgan.json"
MAX_RECORD_BYTES = 16 << 20  # records are small; a bigger file is not one of ours


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file's content, as 'sha256:<hex>'."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return "sha256:" + h.hexdigest()


def path_hash(path: str | os.PathLike) -> str:
    """Content hash of a file, or of a folder (its files' relative names and hashes, sorted)."""
    p = Path(path)
    if p.is_file():
        return file_hash(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(str(f.relative_to(p)).encode())
        h.update(file_hash(f).encode())
    return "sha256:" + h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    return value


def make_record(stage: str, options: dict, inputs: dict[str, str | os.PathLike], **extra) -> dict:
    """Build the breakgan.json content; `inputs` maps a role to a path, hashed here."""
    return {
        "stage": stage,
        "version": __version__,
        "options": _jsonable(options),
        "inputs": {
            role: {"path": os.fspath(p), "hash": path_hash(p)} for role, p in inputs.items()
        },
        **_jsonable(extra),
    }


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temp path beside `path` to write; it is renamed onto `path` only if the block completes.

    On any error (or Ctrl-C) the temp file is removed and `path` keeps its previous content, so a
    reader never sees half a file. `fsync` makes the data durable before the rename (checkpoints).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file ordinary permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, fsync: bool = False) -> None:
    with atomic_file(path, fsync=fsync) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON through a temp file + rename: readers never see half a file."""
    write_bytes_atomic(path, (json.dumps(_jsonable(data), indent=2) + "\n").encode())


def write_record(folder: str | os.PathLike, record: dict) -> Path:
    path = Path(folder) / RECORD_NAME
    write_json_atomic(path, record)
    return path


def read_record(folder: str | os.PathLike) -> dict | None:
    path = Path(folder) / RECORD_NAME
    if not path.is_file():
        return None
    from breakgan.jsonfile import read_json

    record = read_json(path, "a breakgan stage record", max_bytes=MAX_RECORD_BYTES)
    if not isinstance(record, dict) or not isinstance(record.get("stage", ""), str):
        raise BreakganError(f"{path}: not a breakgan stage record (expected a JSON object with a 'stage')")
    return record


# ---- the one output-folder rule ---------------------------------------------------------------------
#
# `--out` may be missing, an empty folder, or a folder holding a breakgan.json of the same stage (an
# earlier output of this command, replaced only once the new one is complete). A file, a link, a
# folder with anything else in it, or a folder that is or contains one of the command's inputs is
# refused with one line and left untouched. An earlier output lists everything its command wrote
# (`.breakgan-written`), so one the user has since added files to is refused too: replacing it would
# delete them. While a command writes OUT it holds a lock beside it
# (`.OUT.lock`), so a second command aimed at the same OUT gets one line naming the first one's pid.
# The new output is built as `.OUT.<pid>.<random>.partial` beside OUT; partial folders left by a killed
# run are removed by the next run of the same OUT (under the lock, so never one still being written).

_PARTIAL = "partial"
_OLD = "old"
WRITTEN_NAME = ".breakgan-written"  # JSON list of the paths (folders end in "/") the command wrote
# What a file browser leaves in a folder just by showing it: not the user's work, and a rerun must not
# be refused because Finder or Explorer looked at the output.
_BROWSER_DROPPINGS = {".DS_Store", "Thumbs.db", "desktop.ini", "Icon\r", ".localized"}
MAX_WRITTEN_BYTES = 64 << 20


def _tree(root: Path) -> list[str]:
    """Every path under `root`, relative, POSIX, folders ending in "/", without the listing itself."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        prefix = "" if rel == Path(".") else rel.as_posix() + "/"
        found += [prefix + d + "/" for d in dirnames]
        found += [prefix + f for f in filenames if prefix or f != WRITTEN_NAME]
    return sorted(found)


def _write_listing(folder: Path) -> None:
    (folder / WRITTEN_NAME).write_text(json.dumps(_tree(folder), indent=0) + "\n")


def foreign_files(folder: str | os.PathLike) -> list[str]:
    """Paths in an earlier output that its command did not write (added since by someone else); [] for an
    output written before the listing existed (nothing to tell them by)."""
    folder = Path(folder)
    listing = folder / WRITTEN_NAME
    if not listing.is_file():
        return []
    try:
        if listing.stat().st_size > MAX_WRITTEN_BYTES:
            raise ValueError
        written = json.loads(listing.read_bytes())
        if not isinstance(written, list):
            raise ValueError
        written = {w for w in written if isinstance(w, str)}
    except (OSError, ValueError, RecursionError):
        written = set()  # unreadable: nothing can be told apart, so nothing is taken for ours
    def dropped_by_browser(p: str) -> bool:
        name = p.rstrip("/").rsplit("/", 1)[-1]
        return name in _BROWSER_DROPPINGS or name.startswith("._")  # ._x: macOS metadata beside x

    return [p for p in _tree(folder) if p not in written and not dropped_by_browser(p)]


def check_out(out: str | os.PathLike, stage: str, *, inputs: Iterable[str | os.PathLike] = (),
              option: str = "--out") -> Path:
    """Refuse an `out` the rule above does not allow (BreakganError, nothing touched); returns it as a Path."""
    out = Path(out)
    where = f"{option} {out}"
    if out.is_symlink():
        raise BreakganError(f"{where}: is a symbolic link; give a real folder (a new one, or an earlier "
                            f"{stage} output)")
    if out.exists() and not out.is_dir():
        raise BreakganError(f"{where}: is a file; {option} names a folder (a new one, or an earlier {stage} output)")
    resolved = out.resolve()
    for item in inputs:
        if item is None:
            continue
        p = Path(item).resolve()
        if p == resolved or resolved in p.parents:
            what = "is" if p == resolved else "contains"
            raise BreakganError(f"{where}: {what} this command's input {item}; choose another {option}")
    if not out.is_dir():
        return out
    entries = _entries(out, where)
    if not entries:
        return out
    if RECORD_NAME not in entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise BreakganError(f"{where}: folder holds files breakgan did not write ({shown}); give a new or "
                            f"empty folder, or an earlier {stage} output")
    record = read_record(out)
    found = record.get("stage") if isinstance(record, dict) else None
    if found != stage:
        raise BreakganError(f"{where}: holds a {found!r} output, not a {stage!r} one; give a new or empty "
                            f"folder, or an earlier {stage} output")
    added = foreign_files(out)
    if added:
        shown = ", ".join(added[:3]) + (", ..." if len(added) > 3 else "")
        raise BreakganError(f"{where}: an earlier {stage} output, but it also holds files breakgan did not write "
                            f"({shown}), which replacing it would delete; move them out or choose another {option}")
    return out


def _entries(out: Path, where: str) -> list[str]:
    """The names in `out`. Another run of the same stage may swap its new output in while we read: the
    folder we were listing is then the previous output being emptied (its record may already be gone), so
    a listing during which `out` changed is taken again."""
    import time

    for attempt in range(20):
        try:
            before = os.stat(out)
            with os.scandir(out) as it:
                entries = sorted(e.name for e in it)
            after = os.stat(out)
        except FileNotFoundError:  # between the two renames of a swap where the system cannot exchange
            time.sleep(0.01)
            continue
        except OSError as e:
            raise BreakganError(f"{where}: cannot read the folder ({e.strerror})") from None
        if (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino):
            return entries
    raise BreakganError(f"{where}: the folder keeps changing while it is read (another command writing it?)")


def check_out_file(path: str | os.PathLike, stage: str, *, option: str) -> Path:
    """The rule for a single output file: new, or an earlier file of this stage (JSON with its "stage")."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BreakganError(f"{option} {path}: is not a plain file; give a new file name")
    if path.exists():
        try:
            if path.stat().st_size > (1 << 20):
                raise ValueError
            found = json.loads(path.read_bytes()).get("stage")
        except (OSError, ValueError, AttributeError, RecursionError):
            found = None
        if found != stage:
            raise BreakganError(f"{option} {path}: exists and was not written by breakgan {stage}; give a new "
                                f"file name")
    return path


def check_out_weights(path: str | os.PathLike, formats: Iterable[str], *, option: str,
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """The rule for an exported weights file: new, or an earlier export (a .safetensors of one of `formats`)
    that is not the file being exported."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise BreakganError(f"{option} {path}: is not a plain file; give a new file name")
    for item in inputs:
        if path.exists() and Path(item).is_file() and Path(item).resolve() == path.resolve():
            raise BreakganError(f"{option} {path}: is the file being exported; give a new file name")
    if path.exists():
        try:
            from safetensors import safe_open

            with safe_open(str(path), "np") as f:
                found = (f.metadata() or {}).get("format")
        except Exception:  # noqa: BLE001 - any unreadable file is simply not ours
            found = None
        if found not in set(formats):
            raise BreakganError(f"{option} {path}: exists and is not a file breakgan exported; give a new file name")
    return path


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _siblings(out: Path, kind: str) -> list[tuple[Path, int]]:
    """`.OUT.<pid>.<random>.<kind>` folders beside `out`, with the pid that made them."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(\d+)\.[A-Za-z0-9_]+\.{kind}$")
    found = []
    try:
        with os.scandir(out.parent) as it:
            for entry in it:
                m = pattern.match(entry.name)
                if m and entry.is_dir(follow_symlinks=False):
                    found.append((Path(entry.path), int(m.group(1))))
    except OSError:
        pass
    return found


def _clean_leftovers(out: Path) -> None:
    """Remove what a killed run of this OUT left behind; bring back a previous output it had moved aside."""
    for path, pid in _siblings(out, _PARTIAL):
        if not _pid_alive(pid) or pid == os.getpid():
            shutil.rmtree(path, ignore_errors=True)
    for path, pid in _siblings(out, _OLD):
        if _pid_alive(pid) and pid != os.getpid():
            continue
        if not out.exists():  # killed between moving the old output aside and moving the new one in
            os.replace(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _out_lock(out: Path, option: str) -> Iterator[None]:
    """Hold `.OUT.lock` beside `out` for the block; refuse at once when another process holds it."""
    import fcntl

    lock = out.with_name(f".{out.name}.lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise BreakganError(f"{option} {out}: cannot create a lock beside it ({e.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise BreakganError(f"{option} {out}: in use by pid {holder} (another breakgan command is writing "
                                f"it); wait for it or choose another {option}") from None
        # the holder before us may have unlinked the file between our open and our lock: retry on a live one
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    if sys.platform != "linux":
        return False
    import ctypes
    import errno

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(tmp: Path, final: Path) -> None:
    """Put the complete folder `tmp` at `final`; a previous `final` is removed only once replaced."""
    if not final.exists():
        os.replace(tmp, final)
        return
    if _exchange(tmp, final):  # tmp now holds the previous output
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=f".{_OLD}", dir=final.parent))
    os.rmdir(old)
    os.replace(final, old)
    try:
        os.replace(tmp, final)
    except BaseException:
        os.replace(old, final)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def claim_out(out: str | os.PathLike, stage: str, *, inputs: Iterable[str | os.PathLike] = (),
              option: str = "--out") -> Iterator[Path]:
    """Check `out` against the rule and hold its lock for the block (for stages that write in place)."""
    out = check_out(out, stage, inputs=inputs, option=option)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BreakganError(f"{option} {out}: cannot create its parent folder ({e.strerror})") from None
    with _out_lock(out, option):
        _clean_leftovers(out)
        yield check_out(out, stage, inputs=inputs, option=option)  # again: it may have changed before the lock


@contextlib.contextmanager
def output_dir(out: str | os.PathLike, stage: str, *, inputs: Iterable[str | os.PathLike] = (),
               option: str = "--out") -> Iterator[Path]:
    """Build a stage's output folder under a temporary name; it replaces `out` only when complete.

    `out` must pass the rule above (checked before anything is written). On any error (or Ctrl-C) the
    temporary folder is removed and `out` keeps its previous state; a `kill -9` leaves a partial folder
    that the next run of the same `out` removes.
    """
    inputs = list(inputs)
    with claim_out(out, stage, inputs=inputs, option=option) as final:
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=f".{_PARTIAL}",
                                        dir=final.parent))
        except OSError as e:
            raise BreakganError(f"{option} {final}: cannot write beside it ({e.strerror})") from None
        try:
            tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; an output folder is meant to be shared
            yield tmp
            _write_listing(tmp)
            _swap_in(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike, *, replace: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name beside `final`, rename it into place on success.

    A lower-level tool than `output_dir` (no checks of what `final` holds): for folders a command
    itself owns. On any error (or Ctrl-C) the temporary folder is removed and `final` keeps its
    previous state. With replace=True an existing `final` is swapped out only once the new one is complete.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=f".{_PARTIAL}",
                                    dir=final.parent))
    except OSError as e:
        raise BreakganError(f"{final}: cannot write output folder ({e.strerror})") from None
    try:
        yield tmp
        if final.exists() and not replace:
            raise BreakganError(f"{final}: already exists")
        _swap_in(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

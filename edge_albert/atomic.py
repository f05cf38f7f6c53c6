"""The one way edge-albert replaces an output directory (bundle, checkpoint, Android assets).

A writer fills a hidden staging directory beside the target and then swaps it in. On Linux the
swap is one renameat2(RENAME_EXCHANGE) call, so the target path holds the old or the new complete
directory at every instant, even if the process is killed between any two system calls; the old
directory, now under the staging name, is deleted afterwards. File systems that refuse the
exchange get two renames (target to a backup name, staging to target); a process killed between
them leaves the old directory under the backup name, and the next writer, or a reader, finds it.

Leftovers are recognisable by name, `.NAME.edgealbert.staging-<pid>-<random>` and
`.NAME.edgealbert.backup-<pid>-<random>` (a long NAME is replaced by a hash), and every writer
first cleans the ones its dead predecessors left for the same target. A staging directory is
owned by the process that holds an flock on it, so a live writer's one is never deleted, whatever
happened to its pid. Writers to one parent directory take an flock on that directory while they
clean up, create their staging directory and swap, so concurrent writers never see each other's
half-done rename pairs: the last one to swap wins, and nobody raises a raw OSError.

Permissions follow the umask (0755 directories and 0644 files under the usual 022): mkdtemp's
private 0700 made bundles unreadable to the service user that runs them.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Type, Union

try:
    import fcntl
except ImportError:  # not on Windows: no locks there, the renames still happen in order
    fcntl = None  # type: ignore[assignment]

from .errors import EdgeAlbertError, OutputError, output_error_type

MARK = ".edgealbert."
STAGING = "staging"
BACKUP = "backup"
_SUFFIX_BYTES = len(f"{MARK}{STAGING}-4194304-") + 12  # pid up to 2**22, 12 hex random characters
_LEGACY = (r"\.{name}\.old-(\d+)", r"\.{name}\.[a-z0-9_]{{8}}\.tmp")  # names edge-albert used before 0.2
# Errors that mean "this output cannot be written", wherever in the writing they happen.
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.ENAMETOOLONG}

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

PathLike = Union[str, os.PathLike]
# Fault injection for tests: called with the name of each step of a replacement (see _reached).
fault_hook: Optional[Callable[[str], None]] = None


def check_writable_output(
    path: PathLike,
    overwrite: bool = False,
    needed_bytes: int = 0,
    replaceable: Optional[Callable[[Path], Optional[str]]] = None,
    error: Type[EdgeAlbertError] = OutputError,
) -> None:
    """Refuse, with one clear message, an output directory that cannot be written.

    Call it before expensive work: it checks the name length, that every existing parent is a
    directory, that the target is not a file (and does not exist unless `overwrite`; `replaceable`
    may give a reason not to replace the existing directory), and writes a probe into the nearest
    existing parent to find a read-only or full file system. It first cleans up after killed
    writers (clean_leftovers), so a backup one of them left is back in place.
    """
    error = output_error_type(error)
    target = Path(os.path.abspath(path))
    existing = _check_target(target, path, overwrite, replaceable, error)
    try:
        with _parent_lock(existing):  # so that no writer's clean-up takes the probe for a leftover
            probe = existing / staging_name(target, "probe")
            os.mkdir(probe)
            try:
                with open(probe / "probe", "wb") as handle:
                    handle.write(b"\0" * 4096)
                    handle.flush()
                    os.fsync(handle.fileno())
            finally:
                shutil.rmtree(probe, ignore_errors=True)
    except OSError as exc:
        raise _output_error(path, exc, error) from None
    if needed_bytes:
        stats = os.statvfs(existing)
        free = stats.f_bavail * stats.f_frsize
        if free < needed_bytes:
            raise error(f"cannot write {path}: it needs about {_mib(needed_bytes)} and {existing} has "
                        f"{_mib(free)} free")


def _check_target(target: Path, shown: PathLike, overwrite: bool,
                  replaceable: Optional[Callable[[Path], Optional[str]]], error: Type[EdgeAlbertError]) -> Path:
    """check_writable_output without the probe; returns the nearest existing ancestor of `target`."""
    if not target.name:
        raise error(f"{shown} names no directory to write")
    existing = _check_name(target, shown, error)
    restored = None
    if existing == target.parent:
        try:
            with _parent_lock(existing):
                restored = clean_leftovers(target)
        except OSError as exc:
            raise _output_error(shown, exc, error) from None
    if os.path.lexists(target):
        if not os.path.isdir(target):
            raise error(f"{shown} exists and is not a directory; remove it or choose another path")
        if not overwrite:
            how = f" (put back from {restored.name}, which an interrupted write had left)" if restored else ""
            raise error(f"{shown} already exists{how}; pass {{overwrite}} to replace it", options=("overwrite",))
        reason = replaceable(target) if replaceable else None
        if reason:
            raise error(f"refusing to replace {shown}: {reason}")
    return existing


def refuse_overlap(output: PathLike, sources: "dict[str, Optional[PathLike]]",
                   error: Type[EdgeAlbertError] = OutputError) -> None:
    """Refuse an output that is, or lies inside, or holds one of the run's inputs (`sources`: what -> path).

    Writing the output replaces it as a whole: `-o TEACHER --overwrite` would replace the teacher by
    its own student, and an output holding the training file would delete the data it trains on.
    """
    error = output_error_type(error)
    out = Path(os.path.realpath(output))
    for what, source in sources.items():
        if source is None:
            continue
        source_path = Path(os.path.realpath(source))
        if out == source_path or out in source_path.parents or source_path in out.parents:
            relation = ("is" if out == source_path else "holds" if out in source_path.parents else "lies inside")
            raise error(f"cannot write {output}: it {relation} {what} ({source}); choose another output path")


def check_writable_file(path: PathLike, overwrite: bool = True, error: Type[EdgeAlbertError] = OutputError) -> None:
    """check_writable_output for one file (a JSON report, a key): the same one-line refusals, before any work.

    A parent that is a file, a name or path over the system's limits, a directory at the path, an existing
    file without `overwrite` or without write permission, and a read-only or unwritable parent (a probe
    file is created and removed there).
    """
    error = output_error_type(error)
    target = Path(os.path.abspath(path))
    if not target.name:
        raise error(f"{path} names no file to write")
    existing = _check_name(target, path, error)
    if os.path.isdir(target):
        raise error(f"cannot write {path}: it is a directory; name a file")
    if os.path.lexists(target):
        if not overwrite:
            raise error(f"{path} already exists; pass {{overwrite}} to replace it", options=("overwrite",))
        if not os.access(target, os.W_OK):
            raise error(f"cannot write {path}: permission denied")
    probe = existing / staging_name(target, "probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise _output_error(path, exc, error) from None


def _check_name(target: Path, shown: PathLike, error: Type[EdgeAlbertError]) -> Path:
    """Every existing parent is a directory; the name and the whole path fit the file system's limits.
    Returns the nearest existing ancestor."""
    existing = _nearest_existing_ancestor(target.parent, shown, error)
    name_max = _name_max(existing)
    if len(os.fsencode(target.name)) > name_max:
        raise error(f"cannot write {shown}: its name is {len(os.fsencode(target.name))} bytes long and the file "
                    f"system allows at most {name_max}; choose a shorter name")
    path_max = _path_max(existing)
    if len(os.fsencode(str(target))) >= path_max:
        raise error(f"cannot write {shown}: its path is {len(os.fsencode(str(target)))} bytes long and the system "
                    f"allows less than {path_max}; choose a shorter path")
    return existing


@contextmanager
def replacing_directory(
    target: PathLike,
    overwrite: bool = False,
    replaceable: Optional[Callable[[Path], Optional[str]]] = None,
    error: Type[EdgeAlbertError] = OutputError,
) -> Iterator[Path]:
    """Yield an empty staging directory beside `target`; when the block ends, swap it in.

    With `overwrite` an existing `target` directory is replaced (`replaceable`, given the old
    directory, may return a reason to refuse instead); without it the write fails if `target`
    exists, even when another process creates it meanwhile. If the block raises, the staging
    directory is removed and `target` is untouched.
    """
    error = output_error_type(error)
    target = _resolve(Path(target))
    _check_target(target, target, overwrite, replaceable, error)  # creating the staging directory is the probe
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _output_error(target, exc, error) from None
    with _parent_lock(target.parent):
        try:
            clean_leftovers(target)  # again: a writer may have died since the check
        except OSError as exc:
            raise _output_error(target, exc, error) from None
        staging, owner_fd = _make_staging(target, error)
    try:
        try:
            _reached("staged")
            yield staging
            _reached("written")
            _fsync_tree(staging)
        except OSError as exc:
            if exc.errno in _OUTPUT_ERRNOS:
                raise _output_error(target, exc, error) from None
            raise
        old = _swap_in(staging, target, overwrite, replaceable, error)
    except BaseException:
        _remove(staging)
        raise
    finally:
        os.close(owner_fd)
    _reached("swapped")
    if old is not None:
        _remove(old)
    _reached("done")


def clean_leftovers(target: PathLike) -> Optional[Path]:
    """Remove what dead writers left beside `target`; restore a backup if `target` is missing.

    Returns the backup it put back at `target`, if any. Staging directories of live writers
    (they hold an flock on them) are left alone.
    """
    target = Path(target)
    restored = None
    staging, backups = _leftovers(target)
    if backups and not os.path.lexists(target):
        restored = max(backups, key=lambda p: p.lstat().st_ctime_ns)  # a rename updates ctime
        os.rename(restored, target)
        _fsync_dir(target.parent)
        backups.remove(restored)
    for path in backups + [path for path in staging if _unowned(path)]:
        _remove(path)
    return restored


def readable_backup(target: PathLike) -> Optional[Path]:
    """The backup a reader may load while `target` is missing (a writer between its two renames)."""
    _, backups = _leftovers(Path(target))
    return max(backups, key=lambda p: p.lstat().st_ctime_ns) if backups else None


def staging_name(target: Path, kind: str) -> str:
    """`.NAME.edgealbert.KIND-<pid>-<random>`, with NAME hashed when the result would be too long."""
    return f".{_key(target)}{MARK}{kind}-{os.getpid()}-{secrets.token_hex(6)}"


def _key(target: Path) -> str:
    name = target.name
    if len(os.fsencode(name)) + 1 + _SUFFIX_BYTES <= 255:
        return name
    return "h" + hashlib.sha256(os.fsencode(name)).hexdigest()[:32]


def _leftovers(target: Path):
    """(staging-like directories, backups) beside `target`, by their recognisable names."""
    key = re.escape(_key(target))
    ours = re.compile(rf"\.{key}{re.escape(MARK)}({STAGING}|{BACKUP}|probe)-\d+-[0-9a-f]+")
    legacy_backup = re.compile(_LEGACY[0].format(name=re.escape(target.name)))
    legacy_staging = re.compile(_LEGACY[1].format(name=re.escape(target.name)))
    staging: List[Path] = []
    backups: List[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return staging, backups
    for name in names:
        path = target.parent / name
        match = ours.fullmatch(name)
        if match and match.group(1) == BACKUP or legacy_backup.fullmatch(name):
            backups.append(path)
        elif match or legacy_staging.fullmatch(name):
            staging.append(path)
    return staging, backups


def _make_staging(target: Path, error: Type[EdgeAlbertError]):
    """Create the staging directory (mode from the umask) and take the flock that marks it as ours."""
    staging = target.parent / staging_name(target, STAGING)
    try:
        os.mkdir(staging)  # 0o777 minus the umask; mkdtemp's 0o700 hid bundles from other users
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise _output_error(target, exc, error) from None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass  # no flock on this file system: _unowned falls back to the pid in the name
    return staging, fd


def _unowned(path: Path) -> bool:
    """True when no live process owns the staging directory `path`."""
    if fcntl is not None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return True  # gone already, or not a directory: nothing can own it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError:
            pass  # flock unsupported here: judge by the pid
        finally:
            os.close(fd)
    pid = re.search(r"-(\d+)-[0-9a-f]+$", path.name)
    if pid is None:
        return True  # a legacy name: its writer predates owner marks
    try:
        os.kill(int(pid.group(1)), 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # alive, owned by another user
    return False


def _swap_in(staging: Path, target: Path, overwrite: bool,
             replaceable: Optional[Callable[[Path], Optional[str]]], error: Type[EdgeAlbertError]) -> Optional[Path]:
    """Put `staging` at `target`; return where the old directory now is (to delete), if any."""
    with _parent_lock(target.parent):
        try:
            if _rename(staging, target, RENAME_NOREPLACE):
                _fsync_dir(target.parent)
                return None
        except FileExistsError:
            if not overwrite:
                raise error(f"{target} already exists (another process wrote it meanwhile); pass {{overwrite}} to "
                            "replace it", options=("overwrite",)) from None
        except OSError as exc:
            raise _output_error(target, exc, error) from None
        if not os.path.isdir(target) or os.path.islink(target):
            raise error(f"{target} exists and is not a directory; remove it or choose another path")
        reason = replaceable(target) if replaceable else None
        if reason:
            raise error(f"refusing to replace {target}: {reason}")
        _reached("exchanging")
        try:
            if _rename(staging, target, RENAME_EXCHANGE):
                _fsync_dir(target.parent)
                return staging  # the old directory now sits under the staging name
            backup = target.parent / staging_name(target, BACKUP)
            os.rename(target, backup)
            _reached("between-renames")
            try:
                os.rename(staging, target)
            except BaseException:
                os.rename(backup, target)
                raise
            _fsync_dir(target.parent)
            return backup
        except OSError as exc:
            raise _output_error(target, exc, error) from None


def _rename(source: Path, destination: Path, flags: int) -> bool:
    """renameat2 with `flags`; False when this system or file system does not offer it.

    Without RENAME_NOREPLACE a plain rename is used instead: it cannot replace a non-empty
    directory, and the caller treats an existing empty one like any existing target.
    """
    function = _renameat2()
    if function is not None:
        if function(-100, os.fsencode(source), -100, os.fsencode(destination), flags) == 0:  # -100: AT_FDCWD
            return True
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(destination))
    if flags == RENAME_NOREPLACE:
        if os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination))
        try:
            os.rename(source, destination)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(destination)) from None
            raise
        return True
    return False


_RENAMEAT2: list = []


def _renameat2():
    if not _RENAMEAT2:
        function = None
        try:
            function = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
        except OSError:
            pass
        if function is not None:
            function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            function.restype = ctypes.c_int
        _RENAMEAT2.append(function)
    return _RENAMEAT2[0]


@contextmanager
def _parent_lock(parent: Path) -> Iterator[None]:
    """Serialise clean-up, staging and swap among edge-albert writers in one directory."""
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            pass  # no flock here (some network file systems): the renames alone still keep the target whole
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


@contextmanager
def exclusive_run(target: PathLike, error: Type[EdgeAlbertError] = OutputError) -> Iterator[None]:
    """Hold `target` for one long run (training into TARGET.partial/): a second run refuses in one line.

    Two runs resuming the same staging directory would interleave their checkpoints. The lock is
    an flock on a hidden file beside the target, so it goes with the process even on SIGKILL; the
    file is removed on release, and a holder that finds the file replaced under it tries again.
    """
    target = _resolve(Path(target))
    lock_path = target.with_name(f".{target.name}.lock")
    if fcntl is None:
        yield
        return
    while True:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)  # as the write itself will: -o new/dir/out works
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _output_error(target, exc, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "another process"
            os.close(fd)
            raise error(f"{target} is being written by another run (pid {holder}); wait for it or "
                        "choose another output") from None
        except OSError:
            os.close(fd)  # no flock here (some network file systems): run unguarded, as before
            yield
            return
        try:
            same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the previous holder removed the file between our open and our flock
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        try:
            os.unlink(lock_path)
        except OSError:
            pass
        os.close(fd)


def _resolve(target: Path) -> Path:
    """Absolute path; a symlinked target is written where it points (the link stays a link)."""
    target = Path(os.path.abspath(target))
    return Path(os.path.realpath(target)) if target.is_symlink() else target


def _nearest_existing_ancestor(directory: Path, shown: PathLike, error: Type[EdgeAlbertError]) -> Path:
    for candidate in [directory, *directory.parents]:
        try:
            if candidate.exists():
                if not candidate.is_dir():
                    raise error(f"cannot write {shown}: {candidate} is a file, not a directory")
                return candidate
        except OSError as exc:
            raise _output_error(shown, exc, error) from None
    return Path("/")


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def _path_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_PATH_MAX"))
    except (OSError, ValueError):
        return 4096


def _output_error(path: PathLike, exc: OSError, error: Type[EdgeAlbertError]) -> EdgeAlbertError:
    reasons = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "the disk quota is exhausted",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENAMETOOLONG: "the path is too long",
        errno.ENOTDIR: "a parent is not a directory",
        errno.EFBIG: "a file is larger than the file system allows",
    }
    reason = reasons.get(exc.errno, exc.strerror or str(exc))
    return error(f"cannot write {path}: {reason}")


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under `root`, so a power cut after the swap loses nothing."""
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        _fsync_dir(Path(directory))


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the data files were flushed
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if os.path.islink(path) or os.path.isfile(path):
        try:
            os.unlink(path)
        except OSError:
            pass
    else:
        shutil.rmtree(path, ignore_errors=True)


def _reached(step: str) -> None:
    if fault_hook is not None:
        fault_hook(step)


def _mib(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB"

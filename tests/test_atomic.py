"""Crash safety of replacing an output directory (edge_albert.atomic): bundles, checkpoints, assets.

Child processes (tests/crash_writer.py) SIGKILL themselves at each step of a write, so every
instant of a replacement is covered without timing; a second set kills writers at random times,
and asserts only what must hold whatever the timing (a whole bundle, old or new, at the path).
"""

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import edge_albert.atomic as atomic
import edge_albert.bundle as bundle_module
from edge_albert.atomic import check_writable_output, clean_leftovers
from edge_albert.bundle import check_bundle_output, load_bundle, write_bundle
from edge_albert.errors import BundleError, OutputError

CHILD = Path(__file__).resolve().parent / "crash_writer.py"
SIZE = 64 << 10
from tests.crash_writer import files_for  # noqa: E402


def run_child(*args, timeout=60):
    return subprocess.run([sys.executable, str(CHILD), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def leftovers(directory: Path):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def whole_bundle_tag(path: Path) -> str:
    """The tag of the complete, verified bundle at `path`; fails on a mix or a half-written one."""
    bundle = load_bundle(path)  # verifies every file against the manifest's sha256
    tag = bundle.manifest["task"]
    for name, data in files_for(tag, SIZE).items():  # and the manifest is the one written with the files
        assert bundle.manifest["files"][name]["sha256"] == hashlib.sha256(data).hexdigest(), name
    return tag


def write(out, tag, overwrite=True):
    return write_bundle(out, files_for(tag, SIZE), {"task": tag, "max_seq_len": 8}, overwrite=overwrite)


# Steps of one replacement, in order, and which bundle the path holds after a SIGKILL there.
STEPS = [("file-1", "old"), ("file-2", "old"), ("staged", "old"), ("written", "old"), ("exchanging", "old"),
         ("swapped", "new"), ("removing-old", "new"), ("done", "new")]


@pytest.mark.parametrize("kill_at, expected, fallback", [
    *[(step, expected, False) for step, expected in STEPS],
    *[(step, expected, True) for step, expected in STEPS + [("between-renames", "old")]],
])
def test_sigkill_at_every_step_of_overwrite_leaves_a_whole_bundle(tmp_path, kill_at, expected, fallback):
    out = tmp_path / "b.edgealbert"
    write(out, "old")
    result = run_child("bundle", out, "new", SIZE, kill_at, *(["fallback"] if fallback else []))
    assert result.returncode == -signal.SIGKILL, result.stderr
    if not (fallback and kill_at == "between-renames"):
        assert out.is_dir()  # with the exchange, the path holds a whole bundle at every instant
    # A reader gets a whole bundle; between the two renames of the fallback that is the backup.
    assert whole_bundle_tag(out) == expected
    # The next writer cleans up what the killed one left (and first restores a backup).
    if fallback and kill_at == "between-renames":
        assert not out.exists() and [name for name in leftovers(tmp_path) if ".edgealbert.backup-" in name]
        with pytest.raises(BundleError, match="already exists"):
            write(out, "third", overwrite=False)  # the restored old bundle is not overwritten without asking
        assert whole_bundle_tag(out) == "old"
    write(out, "third")
    assert whole_bundle_tag(out) == "third"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("kill_at", ["file-1", "staged", "written", "done"])
def test_sigkill_while_creating_leaves_nothing_or_a_whole_bundle(tmp_path, kill_at):
    out = tmp_path / "b.edgealbert"
    result = run_child("bundle", out, "new", SIZE, kill_at)
    assert result.returncode == -signal.SIGKILL, result.stderr
    if kill_at == "done":
        assert whole_bundle_tag(out) == "new"
    else:
        assert not out.exists()
        with pytest.raises(BundleError, match="not a bundle directory"):
            load_bundle(out)
    clean_leftovers(out)
    assert leftovers(tmp_path) == []


def test_sigkill_at_random_times_always_leaves_a_whole_bundle(tmp_path):
    """Writers killed at random moments of a stream of overwrites: the path always holds one whole bundle."""
    out = tmp_path / "b.edgealbert"
    write(out, "first")
    rng = random.Random(9)
    tags = {"first", "alpha", "beta", "gamma"}
    for run in range(12):
        fallback = ["fallback"] if run % 3 == 2 else []
        child = subprocess.Popen([sys.executable, str(CHILD), "loop", str(out), "alpha,beta,gamma", str(SIZE), "1000",
                                  *fallback], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout.readline() == b"ready\n"  # imports done: the kill lands among the writes
        time.sleep(rng.uniform(0.0, 0.2))  # when to kill varies; nothing asserted depends on it
        child.send_signal(signal.SIGKILL)
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, stderr.decode()
        assert whole_bundle_tag(out) in tags
    write(out, "last")
    assert whole_bundle_tag(out) == "last" and leftovers(tmp_path) == []


def test_concurrent_writers_raise_no_oserror_and_leave_no_orphans(tmp_path):
    """Overwriting writers: the last swap wins; writers without --overwrite are refused, or win the creation."""
    out = tmp_path / "b.edgealbert"
    tags = [f"w{index}" for index in range(5)]
    children = [subprocess.Popen([sys.executable, str(CHILD), "loop", str(out), tag, str(SIZE), "8"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in tags]
    creators = [subprocess.Popen([sys.executable, str(CHILD), "create", str(out), f"c{index}", str(SIZE)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for index in range(3)]
    outcomes = []
    for child in children + creators:
        stdout, stderr = child.communicate(timeout=120)
        assert child.returncode == 0 and "Traceback" not in stderr, stderr
        outcomes.append(stdout)
    assert all(stdout.startswith("ready\n") for stdout in outcomes[:len(children)])
    for stdout in outcomes[len(children):]:
        assert stdout.startswith("refused: ") and "already exists" in stdout or stdout == "finished\n", stdout
    assert whole_bundle_tag(out) in set(tags) | {f"c{index}" for index in range(3)}
    assert leftovers(tmp_path) == []


def test_reader_during_replace_gets_old_or_new_never_a_mix(tmp_path, monkeypatch):
    """A writer replaces the bundle after the reader read the old manifest: the reader reads again."""
    out = tmp_path / "b.edgealbert"
    write(out, "old")
    real_sha = bundle_module.sha256_of_file
    replaced = []

    def replace_then_hash(path, *args, **kwargs):
        if not replaced and Path(path).name == "model.tflite" and Path(path).parent == out:
            replaced.append(True)
            write(out, "new")  # swaps the directory under the reader, and deletes the old one
        return real_sha(path, *args, **kwargs)

    monkeypatch.setattr(bundle_module, "sha256_of_file", replace_then_hash)
    bundle = load_bundle(out)
    assert replaced and bundle.manifest["task"] == "new"
    monkeypatch.setattr(bundle_module, "sha256_of_file", real_sha)
    assert whole_bundle_tag(out) == "new"


@pytest.mark.parametrize("fallback", [False, True], ids=["exchange", "two-renames"])
def test_reader_at_every_step_of_a_replace_gets_a_whole_bundle(tmp_path, monkeypatch, fallback):
    out = tmp_path / "b.edgealbert"
    write(out, "old")
    if fallback:
        monkeypatch.setattr(atomic, "_RENAMEAT2", [None])
    seen = {}
    monkeypatch.setattr(atomic, "fault_hook", lambda step: seen.setdefault(step, whole_bundle_tag(out)))
    write(out, "new")
    expected = {"staged": "old", "written": "old", "exchanging": "old", "swapped": "new", "done": "new"}
    if fallback:
        expected["between-renames"] = "old"  # read from the backup while the path is empty
    assert seen == expected


def test_readers_in_other_processes_while_a_writer_replaces(tmp_path):
    out = tmp_path / "b.edgealbert"
    write(out, "alpha")
    writer = subprocess.Popen([sys.executable, str(CHILD), "loop", str(out), "alpha,beta", str(SIZE), "40"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    loads = 0
    try:
        while writer.poll() is None and loads < 2000:
            assert whole_bundle_tag(out) in ("alpha", "beta")
            loads += 1
    finally:
        _, stderr = writer.communicate(timeout=120)
    assert writer.returncode == 0, stderr
    assert loads > 0 and leftovers(tmp_path) == []


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize("umask, directory_mode, file_mode", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)])
def test_bundle_permissions_follow_the_umask(tmp_path, umask, directory_mode, file_mode):
    previous = os.umask(umask)
    try:
        bundle = write(tmp_path / "b.edgealbert", "x")
    finally:
        os.umask(previous)
    assert bundle.path.stat().st_mode & 0o777 == directory_mode
    assert {p.name: p.stat().st_mode & 0o777 for p in bundle.path.iterdir()} == {
        "model.tflite": file_mode, "tokenizer.json": file_mode, "manifest.json": file_mode}


# --------------------------------------------------------------------------- outputs that cannot be written


def test_parent_that_is_a_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"file is a file, not a directory"):
        check_writable_output(tmp_path / "file" / "sub" / "b.edgealbert")
    with pytest.raises(BundleError, match=r"file is a file, not a directory"):
        write(tmp_path / "file" / "b.edgealbert", "x")
    with pytest.raises(OutputError, match="exists and is not a directory"):
        check_writable_output(tmp_path / "file", overwrite=True)


def test_name_too_long_is_refused_and_a_long_valid_name_works(tmp_path):
    with pytest.raises(OutputError, match="its name is 300 bytes long and the file system allows at most 255"):
        check_writable_output(tmp_path / ("n" * 300))
    long_name = tmp_path / ("n" * 250)  # fits, but .NAME.edgealbert.staging-... would not: NAME is hashed
    write(long_name, "old")
    write(long_name, "new")
    assert whole_bundle_tag(long_name) == "new" and leftovers(tmp_path) == []


def test_existing_output_without_overwrite_is_refused(tmp_path):
    write(tmp_path / "b.edgealbert", "old")
    with pytest.raises(OutputError, match="already exists; pass overwrite"):
        check_writable_output(tmp_path / "b.edgealbert")
    check_writable_output(tmp_path / "b.edgealbert", overwrite=True)
    check_writable_output(tmp_path / "missing" / "parents" / "b.edgealbert")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.edgealbert"]  # the probe left nothing


def test_overwrite_refuses_a_directory_that_is_not_a_bundle(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work")
    with pytest.raises(BundleError, match="not an edge-albert bundle"):
        write(home, "x")
    assert (home / "thesis.tex").read_text() == "years of work" and leftovers(tmp_path) == []


def test_needed_bytes_beyond_the_free_space_is_refused(tmp_path):
    with pytest.raises(OutputError, match="free"):
        check_writable_output(tmp_path / "b.edgealbert", needed_bytes=1 << 60)


@pytest.mark.parametrize("code, message", [(errno.EROFS, "the file system is read-only"), (errno.ENOSPC, "no space left on the device")])
def test_simulated_read_only_or_full_file_system(tmp_path, monkeypatch, code, message):
    """The same errors as the mounts below, injected where the mounts are not permitted (CI without root)."""
    write(tmp_path / "b.edgealbert", "old")
    real_write_bytes = Path.write_bytes

    def failing_write_bytes(self, data):
        if self.name == "model.tflite":
            raise OSError(code, os.strerror(code), str(self))
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", failing_write_bytes)
    with pytest.raises(BundleError, match=rf"cannot write .*b\.edgealbert: {message}"):
        write(tmp_path / "b.edgealbert", "new")
    monkeypatch.setattr(Path, "write_bytes", real_write_bytes)
    assert whole_bundle_tag(tmp_path / "b.edgealbert") == "old" and leftovers(tmp_path) == []
    monkeypatch.setattr(atomic.os, "mkdir", lambda *a, **k: (_ for _ in ()).throw(OSError(code, os.strerror(code))))
    with pytest.raises(OutputError, match=message):
        check_writable_output(tmp_path / "other.edgealbert")


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a tmpfs (root only); yields a function that mounts one with the given options."""
    mounted = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True)
        # Not a skip: `make test` runs as root, as CI does; without mount rights this test is red, not hidden.
        assert result.returncode == 0, (f"mounting a tmpfs failed ({result.stderr.decode().strip()}); these "
                                        "tests need root with mount rights, as `make test` has")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


def test_read_only_file_system_is_refused_before_any_work(tmpfs):
    point = tmpfs("ro,size=1m")
    with pytest.raises(OutputError, match="cannot write .*: the file system is read-only"):
        check_writable_output(point / "b.edgealbert")
    with pytest.raises(BundleError, match="the file system is read-only"):
        write(point / "b.edgealbert", "x")


def test_full_disk_fails_with_one_error_and_keeps_the_old_bundle(tmpfs):
    point = tmpfs("size=256k")
    write(point / "b.edgealbert", "old")
    big = {"model.tflite": b"\1" * (400 << 10), "tokenizer.json": b"{}"}
    with pytest.raises(BundleError, match="cannot write .*b.edgealbert: no space left on the device"):
        write_bundle(point / "b.edgealbert", big, {"task": "big", "max_seq_len": 8}, overwrite=True)
    assert whole_bundle_tag(point / "b.edgealbert") == "old"
    assert leftovers(point) == []
    with pytest.raises(OSError, match="No space left"):
        with open(point / "filler", "wb") as filler:
            for _ in range(1024):
                filler.write(b"\0" * 4096)
                filler.flush()
    with pytest.raises(OutputError, match="no space left on the device"):
        check_writable_output(point / "c.edgealbert")


# --------------------------------------------------------------------------- Android assets


def asset_set(assets: Path) -> str:
    """The tag of the whole asset set in `assets`; fails on a mix of two exports."""
    manifest = json.loads((assets / "manifest.json").read_text())
    tag = manifest["android"]["tag"]
    assert manifest["task"] == tag
    assert (assets / "vocab.json").read_text() == f"vocab {tag}"
    assert (assets / "examples.json").read_text() == f"examples {tag}"
    assert (assets / "model.tflite").read_bytes() == files_for(tag, SIZE)["model.tflite"]
    return tag


@pytest.mark.parametrize("kill_at, expected", [("file-1", "old"), ("staged", "old"), ("written", "old"),
                                               ("exchanging", "old"), ("swapped", "new"), ("removing-old", "new")])
def test_sigkill_during_android_export_leaves_the_old_or_the_new_set(tmp_path, kill_at, expected):
    old_bundle, new_bundle = write(tmp_path / "old.edgealbert", "old"), write(tmp_path / "new.edgealbert", "new")
    assets = tmp_path / "app" / "assets"
    assert run_child("assets", assets, old_bundle.path, "old", "never").returncode == 0
    (assets / "fonts").mkdir()
    (assets / "fonts" / "app.ttf").write_bytes(b"the app's own asset")
    result = run_child("assets", assets, new_bundle.path, "new", kill_at)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert asset_set(assets) == expected
    assert (assets / "fonts" / "app.ttf").read_bytes() == b"the app's own asset"
    assert run_child("assets", assets, new_bundle.path, "new", "never").returncode == 0
    assert asset_set(assets) == "new" and leftovers(assets.parent) == []
    assert sorted(p.name for p in assets.iterdir()) == ["examples.json", "fonts", "manifest.json", "model.tflite",
                                                      "vocab.json"]


def test_leftovers_of_earlier_versions_are_recognised(tmp_path):
    """Before edge_albert.atomic: `.NAME.old-PID` (the only copy when killed between renames) and mkdtemp staging."""
    out = tmp_path / "b.edgealbert"
    write(out, "old")
    os.rename(out, tmp_path / ".b.edgealbert.old-4242")
    (tmp_path / ".b.edgealbert.k3j_9x2a.tmp").mkdir()
    (tmp_path / ".b.edgealbert.k3j_9x2a.tmp" / "model.tflite").write_bytes(b"half")
    (tmp_path / ".unrelated").mkdir()
    assert whole_bundle_tag(out) == "old"  # a reader finds the backup
    with pytest.raises(OutputError, match=r"already exists \(put back from .b.edgealbert.old-4242, which an "
                                          r"interrupted write had left\); pass overwrite"):
        check_writable_output(out)
    with pytest.raises(BundleError, match="already exists; pass overwrite"):
        write(out, "new", overwrite=False)
    assert whole_bundle_tag(out) == "old" and leftovers(tmp_path) == [".unrelated"]


def test_a_live_writers_staging_directory_is_not_cleaned(tmp_path):
    out = tmp_path / "b.edgealbert"
    with atomic.replacing_directory(out) as staging:
        (staging / "half").write_text("being written")
        other = tmp_path / "c"
        assert clean_leftovers(out) is None and staging.is_dir()  # we hold its flock
        write(other, "x")
    assert not staging.exists() and (out / "half").read_text() == "being written"


def test_check_bundle_output_refuses_what_write_bundle_would_refuse(tmp_path):
    from edge_albert.errors import ConversionError

    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "thesis.tex").write_text("years of work")
    with pytest.raises(ConversionError, match="not an edge-albert bundle"):
        check_bundle_output(tmp_path / "home", overwrite=True, error=ConversionError)
    write(tmp_path / "b.edgealbert", "old")
    check_bundle_output(tmp_path / "b.edgealbert", overwrite=True)
    with pytest.raises(BundleError, match="already exists"):
        check_bundle_output(tmp_path / "b.edgealbert")


# --------------------------------------------------------------------------- the real command


KILLING_CLI = (
    "import os, signal, sys\n"
    "import edge_albert.atomic as atomic\n"
    "step = sys.argv.pop(1)\n"
    "atomic.fault_hook = lambda reached: os.kill(os.getpid(), signal.SIGKILL) if reached == step else None\n"
    "from edge_albert.cli import main\n"
    "main()\n"
)


@pytest.mark.slow
def test_convert_overwrite_killed_at_the_swap_keeps_a_whole_bundle(tiny_classifier_checkpoint, tmp_path):
    """`edge-albert convert --overwrite`, SIGKILLed just before and just after the swap (the steps above, end to end)."""
    out = tmp_path / "c.edgealbert"
    convert = ["convert", str(tiny_classifier_checkpoint), "-o", str(out), "--quantize", "fp32", "--overwrite"]
    env = {**os.environ, "PYTHONPATH": str(CHILD.parents[1])}
    first = subprocess.run([sys.executable, "-c", KILLING_CLI, "never", *convert], env=env, capture_output=True,
                           text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    directory = os.stat(out).st_ino  # conversion is deterministic: the directory tells old from new
    for step, survivor in (("exchanging", "old"), ("swapped", "new")):
        killed = subprocess.run([sys.executable, "-c", KILLING_CLI, step, *convert], env=env, capture_output=True,
                                text=True, timeout=600)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        load_bundle(out)  # a whole, verified bundle
        assert (os.stat(out).st_ino == directory) == (survivor == "old"), step
        directory = os.stat(out).st_ino
    assert leftovers(tmp_path)  # the old bundle, killed before it was deleted
    check_bundle_output(out, overwrite=True)  # the check convert should run first also cleans up
    assert leftovers(tmp_path) == []


def test_exclusive_run_refuses_a_second_run_and_frees_on_exit_or_kill(tmp_path):
    import signal

    from edge_albert.atomic import exclusive_run
    from tests.holder import hold_in_child

    target = tmp_path / "student"
    child = hold_in_child(target, 60)
    try:
        with pytest.raises(OutputError, match=rf"being written by another run \(pid {child.pid}\)"):
            with exclusive_run(target):
                pass
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with exclusive_run(target):  # a killed holder's lock went with it
        assert (tmp_path / ".student.lock").exists()
    assert list(tmp_path.iterdir()) == []  # released: nothing left beside the target
    with exclusive_run(target):
        pass


def test_exclusive_run_creates_missing_parents_as_the_write_will(tmp_path):
    from edge_albert.atomic import exclusive_run

    with exclusive_run(tmp_path / "new" / "dir" / "student"):
        assert (tmp_path / "new" / "dir" / ".student.lock").is_file()
    assert list((tmp_path / "new" / "dir").iterdir()) == []

"""A child process for tests/test_atomic.py: writes bundles or assets and can SIGKILL itself at a chosen step.

python tests/crash_writer.py bundle OUT TAG SIZE KILL_AT [fallback]   one write, killed at KILL_AT
python tests/crash_writer.py loop OUT TAGS SIZE COUNT [fallback]      COUNT overwrites, cycling through TAGS
python tests/crash_writer.py create OUT TAG SIZE                      one write without --overwrite
python tests/crash_writer.py assets ASSETS BUNDLE TAG KILL_AT         export the fake bundle's assets

KILL_AT is a step of edge_albert.atomic (staged, written, exchanging, between-renames, swapped,
done), file-N (after the N-th bundle file is written), removing-old (half way through deleting
the replaced directory) or never. `fallback` makes renameat2 unavailable, as on a file system
that refuses it. A bundle written with TAG has manifest task TAG and a model made of TAG's bytes,
so a reader can tell a mix from a whole bundle.
"""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import edge_albert.atomic as atomic  # noqa: E402
import edge_albert.bundle as bundle_module  # noqa: E402
from edge_albert.errors import BundleError  # noqa: E402


def files_for(tag: str, size: int) -> dict:
    return {"model.tflite": (tag.encode() * (size // len(tag) + 1))[:size], "tokenizer.json": f'{{"tag": "{tag}"}}'.encode()}


def write(out: str, tag: str, size: int, overwrite: bool = True):
    return bundle_module.write_bundle(out, files_for(tag, size), {"task": tag, "max_seq_len": 8}, overwrite=overwrite)


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def arm(kill_at: str) -> None:
    """Make this process SIGKILL itself when the write reaches `kill_at`."""
    if kill_at.startswith("file-"):
        count = int(kill_at.split("-")[1])
        real_sha = bundle_module.sha256_of_file
        calls = []

        def sha_then_die(path, *args, **kwargs):
            calls.append(path)
            if len(calls) == count:
                die()
            return real_sha(path, *args, **kwargs)

        bundle_module.sha256_of_file = sha_then_die
        if "edge_albert.android_export" in sys.modules:
            sys.modules["edge_albert.android_export"].sha256_of_file = sha_then_die
    elif kill_at == "removing-old":
        def remove_part_then_die(path):
            victims = sorted(Path(path).iterdir())
            if victims:
                os.unlink(victims[0])
            die()

        atomic._remove = remove_part_then_die
    elif kill_at != "never":
        atomic.fault_hook = lambda step: die() if step == kill_at else None


def main(argv) -> int:
    mode = argv[0]
    if "fallback" in argv:
        atomic._RENAMEAT2[:] = [None]
    if mode == "bundle":
        out, tag, size, kill_at = argv[1], argv[2], int(argv[3]), argv[4]
        arm(kill_at)
        write(out, tag, size)
    elif mode == "loop":
        out, tags, size, count = argv[1], argv[2].split(","), int(argv[3]), int(argv[4])
        print("ready", flush=True)
        for index in range(count):
            write(out, tags[index % len(tags)], size)
    elif mode == "create":
        out, tag, size = argv[1], argv[2], int(argv[3])
        try:
            write(out, tag, size, overwrite=False)
        except BundleError as exc:
            print(f"refused: {exc}")
            return 0
    elif mode == "assets":
        from edge_albert.android_export import _write_assets

        assets, bundle_path, tag, kill_at = argv[1], argv[2], argv[3], argv[4]
        bundle = bundle_module.load_bundle(bundle_path)
        arm(kill_at)
        _write_assets(bundle, Path(assets), {"vocab.json": f"vocab {tag}".encode(),
                                             "examples.json": f"examples {tag}".encode()}, {"tag": tag})
    print("finished")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Load and run edited copies of a bundle's model, one after another, in this process.

argv: BASE_BUNDLE SCRATCH_DIR EDITS_JSON. Each edit is [index, [[offset, hex bytes], ...]]. The
worker prints `START <index>` (flushed) before an edit and `DONE <index> ok|error|unexpected <detail>`
after it, so that when the process dies by a signal the parent knows which edit killed it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import sys
from pathlib import Path


HANG_SECONDS = 30  # loading and running the tiny model takes well under a second


def main() -> None:
    from edge_albert import load_model
    from edge_albert.errors import EdgeAlbertError

    base, scratch, edits_file = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    original = (base / "model.tflite").read_bytes()
    manifest = json.loads((base / "manifest.json").read_text())
    scratch.mkdir(parents=True, exist_ok=True)
    for name in manifest["files"]:
        if name != "model.tflite" and not (scratch / name).exists():
            shutil.copyfile(base / name, scratch / name)
    for index, patches in json.loads(edits_file.read_text()):
        data = bytearray(original)
        for offset, hex_bytes in patches:
            patch = bytes.fromhex(hex_bytes)
            data[offset:offset + len(patch)] = patch
        (scratch / "model.tflite").write_bytes(bytes(data))
        manifest["files"]["model.tflite"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        (scratch / "manifest.json").write_text(json.dumps(manifest))
        print(f"START {index}", flush=True)
        # A model can loop forever without breaking its structure (a WHILE counter's constant step set to
        # -1): SIGALRM's default action ends the process, and the parent records a hang for this edit.
        signal.alarm(HANG_SECONDS)
        try:
            model = load_model(scratch, num_threads=1)
            model.predict(["a short text", "", "another text that is a little longer than the first one"])
            outcome = "ok"
        except EdgeAlbertError as exc:
            message = str(exc)
            outcome = "error " + message if "\n" not in message else "unexpected multi-line error " + message
        except Exception as exc:  # the test fails on these: every bad model must be a one-line EdgeAlbertError
            outcome = f"unexpected {type(exc).__name__}: {exc}".replace("\n", " ")
        signal.alarm(0)
        print(f"DONE {index} {outcome}", flush=True)


if __name__ == "__main__":
    main()

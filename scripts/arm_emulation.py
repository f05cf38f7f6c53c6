#!/usr/bin/env python3
"""Run edge-albert's on-device Python runtime as it runs on a Raspberry Pi, without one.

A Raspberry Pi 4/5 runs Raspberry Pi OS bookworm (Debian 12, aarch64, Python 3.11). This
module recreates that userland on an x86_64 Debian machine and runs Python code in it under
qemu user-mode emulation, so that the project's own runtime (``edge_albert/`` from this
repository) can be checked against the real aarch64 builds of ai-edge-litert,
tflite-runtime, numpy and tokenizers:

* qemu-user >= 8 from bookworm-backports (Debian 12's qemu 7.2 crashes inside
  ai-edge-litert >= 2.2), installed by ``scripts/ci_system_deps.sh``;
* a Debian 12 arm64 python3.11 sysroot, unpacked with a private apt configuration and
  ``dpkg-deb -x`` (no VM, no chroot, no root needed);
* one ``pip install --target`` directory of aarch64 wheels per runtime set (ai-edge-litert
  needs numpy 2; tflite-runtime 2.14 fails with numpy 2, so it gets numpy<2).

Everything is cached outside the repository (``~/.cache/edge-albert/arm``, or
``$EDGE_ALBERT_ARM_CACHE``); a warm ``run`` does no network access and no set-up work.
Emulation is 140-340x slower than native: use it for correctness on tiny models only.
Without binfmt_misc the emulated process cannot start other aarch64 processes.

CLI::

    python scripts/arm_emulation.py setup [--wheels all|litert|tflite-runtime] [--refresh]
    python scripts/arm_emulation.py run [--wheels litert] [--cpu pi4|pi5] -- script.py ARGS
    python scripts/arm_emulation.py run -- -c "import platform; print(platform.machine())"
    python scripts/arm_emulation.py info
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
SYSTEM_DEPS_SCRIPT = REPO_ROOT / "scripts" / "ci_system_deps.sh"

CACHE_ENV = "EDGE_ALBERT_ARM_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "edge-albert" / "arm"
MIRROR_ENV = "EDGE_ALBERT_DEBIAN_MIRROR"
SECURITY_MIRROR_ENV = "EDGE_ALBERT_DEBIAN_SECURITY_MIRROR"

QEMU_MIN_MAJOR = 8
# Pi 4 = Cortex-A72, Pi 5 = Cortex-A76. `-cpu max` enables every emulated extension (SVE,
# pointer authentication...) and is far slower.
CPU_ALIASES = {"pi4": "cortex-a72", "pi5": "cortex-a76"}
DEFAULT_CPU = "cortex-a72"

DEBIAN_SUITES = ("bookworm", "bookworm-updates")
DEBIAN_SECURITY_SUITE = "bookworm-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Roots of the sysroot; apt resolves their Depends/Pre-Depends (no Recommends).
# libstdc++6/libgcc-s1 are what the LiteRT/TFLite and tokenizers wheels link against.
SYSROOT_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libstdc++6",
    "libgcc-s1",
)
GUEST_PYTHON = "usr/bin/python3.11"
# Modules whose import proves the sysroot has the shared libraries CPython needs.
SYSROOT_SMOKE = (
    "import platform, ssl, hashlib, sqlite3, ctypes, lzma, bz2, zlib, json, decimal, uuid, readline;"
    "print(platform.machine(), platform.python_version(), platform.libc_ver()[1])"
)

# The base runtime dependencies of edge-albert (pyproject `dependencies`) for each
# interpreter backend. Versions are pinned so that a cached set is reproducible and so that
# tokenization matches the x86 environment (requirements/constraints.txt).
WHEEL_SETS: dict[str, tuple[str, ...]] = {
    "litert": ("ai-edge-litert==2.3.0", "numpy>=2,<3", "tokenizers==0.23.3", "click>=8.1"),
    "tflite-runtime": ("tflite-runtime==2.14.0", "numpy>=1.23,<2", "tokenizers==0.23.3", "click>=8.1"),
}
# Raspberry Pi OS bookworm has glibc 2.36: accept manylinux wheels up to 2.36.
WHEEL_PLATFORMS = tuple(f"manylinux_2_{n}_aarch64" for n in range(36, 16, -1)) + ("manylinux2014_aarch64",)

STAMP = ".edge-albert-stamp.json"


class ArmEmulationError(RuntimeError):
    """Something needed for ARM emulation is missing or broken; the message says what."""


def log(message: str) -> None:
    """Progress for the slow set-up steps goes to stderr so that `run` stdout stays clean."""
    print(f"[arm-emulation] {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """The cache root: $EDGE_ALBERT_ARM_CACHE or ~/.cache/edge-albert/arm."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser().resolve() if value else DEFAULT_CACHE


def resolve_cpu(cpu: str) -> str:
    """Map pi4/pi5 to their Cortex model names; pass other qemu CPU names through."""
    return CPU_ALIASES.get(cpu, cpu)


def _digest(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _read_stamp(directory: Path) -> dict:
    try:
        return json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        return {}


def _install_atomically(staging: Path, target: Path) -> None:
    """Replace `target` by the finished `staging` dir so a crash never leaves half a cache."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staging, target)


@contextlib.contextmanager
def _setup_lock(cache: Path) -> Iterator[None]:
    """Serialise set-up between concurrent test sessions that share one cache."""
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".setup.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: Sequence[str], what: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a host command; on failure raise one error naming the step and its stderr tail."""
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise ArmEmulationError(f"{what}: {cmd[0]} is not installed") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ArmEmulationError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd[:6])} ...\n{tail}")
    return proc


# --------------------------------------------------------------------------- qemu


@dataclass(frozen=True)
class Qemu:
    path: Path
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])


def find_qemu() -> Qemu | None:
    """The qemu-aarch64 on PATH and its version, or None."""
    for name in ("qemu-aarch64", "qemu-aarch64-static"):
        path = shutil.which(name)
        if not path:
            continue
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        match = re.search(r"version (\d+\.\d+(?:\.\d+)?)", out)
        if match:
            return Qemu(Path(path), match.group(1))
    return None


def ensure_qemu(install: bool = True) -> Qemu:
    """Return a qemu-aarch64 >= 8, installing it from bookworm-backports when allowed."""
    qemu = find_qemu()
    if qemu and qemu.major >= QEMU_MIN_MAJOR:
        return qemu
    found = f"found qemu-aarch64 {qemu.version}" if qemu else "qemu-aarch64 is not installed"
    if not install:
        raise ArmEmulationError(
            f"{found}; need >= {QEMU_MIN_MAJOR} (Debian 12's qemu 7.2 crashes in ai-edge-litert). "
            f"Run as root: bash {SYSTEM_DEPS_SCRIPT.relative_to(REPO_ROOT)}"
        )
    log(f"{found}; installing qemu-user from bookworm-backports ({SYSTEM_DEPS_SCRIPT.name})")
    _run(["bash", str(SYSTEM_DEPS_SCRIPT)], "installing qemu-user from bookworm-backports")
    qemu = find_qemu()
    if not qemu or qemu.major < QEMU_MIN_MAJOR:
        raise ArmEmulationError(f"after {SYSTEM_DEPS_SCRIPT.name}, qemu-aarch64 is still missing or older than {QEMU_MIN_MAJOR}")
    return qemu


# --------------------------------------------------------------------------- sysroot


def _sources() -> list[str]:
    mirror = os.environ.get(MIRROR_ENV, "http://deb.debian.org/debian")
    security = os.environ.get(SECURITY_MIRROR_ENV, "http://deb.debian.org/debian-security")
    opts = f"[arch=arm64 signed-by={KEYRING}]"
    lines = [f"deb {opts} {mirror} {suite} main" for suite in DEBIAN_SUITES]
    lines.append(f"deb {opts} {security} {DEBIAN_SECURITY_SUITE} main")
    return lines


def _apt_options(apt_dir: Path) -> list[str]:
    """A private arm64 apt: own sources, lists, cache and an empty dpkg status.

    The host's apt.conf (proxies) still applies; its sources, pins and installed packages
    do not. As root, apt would drop to the _apt user, which cannot enter ~root/.cache.
    """
    options = {
        "APT::Architecture": "arm64",
        "APT::Architectures": "arm64",
        "Dir::State::Lists": apt_dir / "lists",
        "Dir::Cache": apt_dir / "cache",
        "Dir::State::status": apt_dir / "status",
        "Dir::Etc::SourceList": apt_dir / "sources.list",
        "Dir::Etc::SourceParts": apt_dir / "sources.list.d",
        "Dir::Etc::Preferences": apt_dir / "preferences",
        "Dir::Etc::PreferencesParts": apt_dir / "preferences.d",
        "APT::Get::AllowUnauthenticated": "false",
    }
    if os.geteuid() == 0:
        options["APT::Sandbox::User"] = "root"
    args: list[str] = []
    for key, value in options.items():
        args += ["-o", f"{key}={value}"]
    return args


def _prepare_apt_dir(apt_dir: Path) -> None:
    for sub in ("lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "status").write_text("")
    (apt_dir / "sources.list").write_text("\n".join(_sources()) + "\n")


def resolve_sysroot_packages(apt_dir: Path) -> list[tuple[str, str]]:
    """(name, version) of every package the sysroot needs, as apt's own resolver sees it."""
    proc = _run(
        ["apt-get", *_apt_options(apt_dir), "--simulate", "--no-install-recommends", "install", *SYSROOT_PACKAGES],
        "resolving the arm64 python3.11 packages",
        env={**os.environ, "LC_ALL": "C"},
    )
    packages = re.findall(r"^Inst (\S+) \((\S+)", proc.stdout, flags=re.M)
    if not packages:
        raise ArmEmulationError(f"apt resolved no packages for {SYSROOT_PACKAGES}:\n{proc.stdout[-2000:]}")
    return [(name.split(":")[0], version) for name, version in packages]


def sysroot_recipe() -> dict:
    return {"packages": list(SYSROOT_PACKAGES), "sources": _sources(), "layout": 1}


def ensure_sysroot(cache: Path, refresh: bool = False) -> Path:
    """Unpack a Debian 12 arm64 python3.11 userland into CACHE/sysroot (once)."""
    sysroot = cache / "sysroot"
    recipe = _digest(sysroot_recipe())
    if not refresh and _read_stamp(sysroot).get("recipe") == recipe and (sysroot / GUEST_PYTHON).exists():
        return sysroot
    for tool in ("apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            raise ArmEmulationError(f"building the arm64 sysroot needs {tool} (a Debian/Ubuntu host)")
    if not Path(KEYRING).is_file():
        raise ArmEmulationError(f"{KEYRING} is missing: install debian-archive-keyring")
    started = time.monotonic()
    apt_dir = cache / "apt"
    _prepare_apt_dir(apt_dir)
    log("fetching Debian 12 (bookworm) arm64 package lists")
    _run(["apt-get", *_apt_options(apt_dir), "-qq", "update"], "apt-get update (arm64 lists)")
    packages = resolve_sysroot_packages(apt_dir)
    log(f"downloading {len(packages)} arm64 packages: {' '.join(name for name, _ in packages)}")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".debs-", dir=cache) as debs:
        _run(
            ["apt-get", *_apt_options(apt_dir), "-qq", "download", *(f"{n}={v}" for n, v in packages)],
            "apt-get download (arm64 packages)",
            cwd=debs,
        )
        staging = Path(tempfile.mkdtemp(prefix=".sysroot-", dir=cache))
        try:
            deb_files = sorted(Path(debs).glob("*.deb"))
            if len(deb_files) != len(packages):
                raise ArmEmulationError(f"expected {len(packages)} .deb files, apt-get download gave {len(deb_files)}")
            log(f"unpacking {len(deb_files)} packages with dpkg-deb -x")
            for deb in deb_files:
                _run(["dpkg-deb", "-x", str(deb), str(staging)], f"dpkg-deb -x {deb.name}")
            if not (staging / GUEST_PYTHON).exists():
                raise ArmEmulationError(f"the unpacked sysroot has no {GUEST_PYTHON}")
            stamp = {"recipe": recipe, "packages": [f"{n}={v}" for n, v in packages], "created": time.time()}
            (staging / STAMP).write_text(json.dumps(stamp, indent=1) + "\n")
            _install_atomically(staging, sysroot)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    shutil.rmtree(apt_dir, ignore_errors=True)  # lists + pkgcache: 20 MB, only needed to build
    log(f"sysroot ready in {time.monotonic() - started:.1f}s: {sysroot}")
    return sysroot


# --------------------------------------------------------------------------- wheels


def wheel_recipe(name: str) -> dict:
    return {"requirements": list(WHEEL_SETS[name]), "platforms": list(WHEEL_PLATFORMS), "python": "cp311"}


def ensure_wheels(cache: Path, name: str, refresh: bool = False) -> Path:
    """pip-install the aarch64 wheels of one runtime set into CACHE/wheels/NAME (once)."""
    if name not in WHEEL_SETS:
        raise ArmEmulationError(f"unknown wheel set {name!r}; choose from {', '.join(WHEEL_SETS)}")
    target = cache / "wheels" / name
    recipe = _digest(wheel_recipe(name))
    if not refresh and _read_stamp(target).get("recipe") == recipe:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"installing aarch64 wheels for {name}: {' '.join(WHEEL_SETS[name])}")
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        platforms: list[str] = []
        for platform in WHEEL_PLATFORMS:
            platforms += ["--platform", platform]
        _run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--no-warn-conflicts", "--no-compile", "--target", str(staging),
                "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
                "--abi", "cp311", "--abi", "abi3", "--abi", "none", *platforms, *WHEEL_SETS[name],
            ],
            f"pip install of the aarch64 wheels for {name} (is PyPI reachable?)",
        )
        versions = sorted(p.name[: -len(".dist-info")] for p in staging.glob("*.dist-info"))
        (staging / STAMP).write_text(json.dumps({"recipe": recipe, "installed": versions}, indent=1) + "\n")
        _install_atomically(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"wheels for {name} ready in {time.monotonic() - started:.1f}s: {target}")
    return target


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class Emulator:
    """One ready emulated Raspberry Pi Python: qemu + sysroot + one wheel set + this repo."""

    qemu: Qemu
    sysroot: Path
    wheels: Path
    cpu: str = DEFAULT_CPU
    repo_root: Path = REPO_ROOT
    pycache: Path = field(default_factory=lambda: cache_dir() / "pycache")

    def command(self, python_args: Sequence[str]) -> list[str]:
        """The host command line that runs `python3.11 PYTHON_ARGS` as aarch64."""
        return [str(self.qemu.path), "-cpu", self.cpu, "-L", str(self.sysroot),
                str(self.sysroot / GUEST_PYTHON), *python_args]

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """A clean environment: wheels + repo root on sys.path, nothing from the host Python.

        Bytecode goes to a cache outside the repository (the Debian stdlib ships no .pyc,
        so without it every run would recompile the stdlib under emulation). One BLAS thread:
        extra emulated threads only compete for the host's cores.
        """
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": os.environ.get("HOME", "/tmp"),
            "TMPDIR": os.environ.get("TMPDIR", tempfile.gettempdir()),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "PYTHONPATH": os.pathsep.join([str(self.wheels), str(self.repo_root)]),
            "PYTHONNOUSERSITE": "1",
            "PYTHONPYCACHEPREFIX": str(self.pycache),
            "PYTHONHASHSEED": "0",
            "PYTHONUNBUFFERED": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
        }
        env.update(extra or {})
        return env

    def run(
        self,
        python_args: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 900,
        check: bool = True,
    ) -> subprocess.CompletedProcess:
        """Run the emulated python3.11; with `check`, a non-zero exit raises with stderr."""
        cmd = self.command(python_args)
        try:
            proc = subprocess.run(cmd, cwd=str(cwd or self.repo_root), env=self.environment(env),
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ArmEmulationError(f"emulated python timed out after {timeout:.0f}s: {' '.join(python_args)}") from None
        if check and proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-30:])
            raise ArmEmulationError(
                f"emulated python ({self.cpu}, {self.wheels.name}) exited with {proc.returncode}: "
                f"{' '.join(python_args)[:200]}\n{tail}"
            )
        return proc

    def python(self, *python_args: str, **kwargs) -> str:
        """Run the emulated python3.11 and return its stdout."""
        return self.run(python_args, **kwargs).stdout


def setup(
    wheel_sets: Sequence[str] = tuple(WHEEL_SETS),
    *,
    cache: Path | None = None,
    install_qemu: bool = True,
    refresh: bool = False,
) -> dict[str, Emulator]:
    """Make everything ready (idempotent) and return one Emulator per wheel set."""
    cache = cache or cache_dir()
    started = time.monotonic()
    qemu = ensure_qemu(install=install_qemu)
    with _setup_lock(cache):
        sysroot = ensure_sysroot(cache, refresh=refresh)
        wheels = {name: ensure_wheels(cache, name, refresh=refresh) for name in wheel_sets}
        smoke_stamp = sysroot / ".smoke-ok"
        emulators = {name: Emulator(qemu, sysroot, path, pycache=cache / "pycache") for name, path in wheels.items()}
        if refresh or not smoke_stamp.exists():
            any_emulator = next(iter(emulators.values()), None) or Emulator(qemu, sysroot, sysroot, pycache=cache / "pycache")
            out = any_emulator.python("-c", SYSROOT_SMOKE, timeout=300).split()
            if not out or out[0] != "aarch64":
                raise ArmEmulationError(f"the emulated python does not report aarch64: {out}")
            smoke_stamp.write_text(" ".join(out) + f" qemu {qemu.version}\n")
            log(f"emulated python works: {' '.join(out)} (qemu {qemu.version})")
    elapsed = time.monotonic() - started
    if elapsed > 5:
        log(f"set-up done in {elapsed:.1f}s (cache {cache})")
    return emulators


def emulator(wheels: str = "litert", cpu: str = DEFAULT_CPU, **kwargs) -> Emulator:
    """A ready Emulator for one wheel set and CPU model (sets up what is missing)."""
    emu = setup([wheels], **kwargs)[wheels]
    return Emulator(emu.qemu, emu.sysroot, emu.wheels, cpu=resolve_cpu(cpu), pycache=emu.pycache)


def _du(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def info(cache: Path | None = None) -> dict:
    """Paths, versions and sizes of what is cached (for reports and debugging)."""
    cache = cache or cache_dir()
    qemu = find_qemu()
    parts = {"sysroot": cache / "sysroot", "apt-lists": cache / "apt", "pycache": cache / "pycache"}
    parts.update({f"wheels/{name}": cache / "wheels" / name for name in WHEEL_SETS})
    return {
        "cache": str(cache),
        "qemu": f"{qemu.path} {qemu.version}" if qemu else None,
        "sizes_mb": {k: round(_du(p) / 1e6, 1) for k, p in parts.items() if p.exists()},
        "total_mb": round(_du(cache) / 1e6, 1) if cache.exists() else 0,
        "sysroot_packages": _read_stamp(cache / "sysroot").get("packages"),
        "wheels": {name: _read_stamp(cache / "wheels" / name).get("installed") for name in WHEEL_SETS},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_setup = sub.add_parser("setup", help="install qemu, build the sysroot and wheel dirs (idempotent)")
    p_setup.add_argument("--wheels", default="all", help="all, or a comma list of: " + ", ".join(WHEEL_SETS))
    p_setup.add_argument("--no-system", action="store_true", help="never run apt-get install for qemu")
    p_setup.add_argument("--refresh", action="store_true", help="rebuild the sysroot and wheel dirs")
    p_run = sub.add_parser("run", help="run python3.11 ARGS as aarch64 (put ARGS after --)")
    p_run.add_argument("--wheels", default="litert", choices=sorted(WHEEL_SETS))
    p_run.add_argument("--cpu", default=DEFAULT_CPU, help="pi4 (cortex-a72, default), pi5 (cortex-a76) or a qemu CPU name")
    p_run.add_argument("--timeout", type=float, default=1800)
    p_run.add_argument("python_args", nargs=argparse.REMAINDER)
    sub.add_parser("info", help="show the cache, qemu version and sizes")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            names = list(WHEEL_SETS) if args.wheels == "all" else [w.strip() for w in args.wheels.split(",") if w.strip()]
            started = time.monotonic()
            setup(names, install_qemu=not args.no_system, refresh=args.refresh)
            log(f"ready ({time.monotonic() - started:.1f}s); cache: {cache_dir()}")
        elif args.command == "run":
            python_args = args.python_args[1:] if args.python_args[:1] == ["--"] else args.python_args
            if not python_args:
                parser.error("run needs python arguments, e.g. run -- script.py or run -- -c 'print(1)'")
            emu = emulator(args.wheels, args.cpu)
            proc = emu.run(python_args, cwd=Path.cwd(), timeout=args.timeout, check=False)
            sys.stdout.write(proc.stdout)
            sys.stderr.write(proc.stderr)
            return proc.returncode
        else:
            print(json.dumps(info(), indent=1))
    except ArmEmulationError as exc:
        print(f"arm_emulation: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

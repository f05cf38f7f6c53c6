"""The machine a measurement ran on (CPU, SIMD flags, cores, OS, versions) and the process's memory.

psutil is used when present, /proc otherwise, so this runs on a Raspberry Pi with the light install.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from typing import Dict, Optional

import numpy as np

from ..version import __version__

MB = 1e6


# -- memory ----------------------------------------------------------------------------------
def _proc_status() -> Dict[str, int]:
    """Byte values of /proc/self/status (Linux, Android, Raspberry Pi OS); {} elsewhere."""
    values = {}
    try:
        with open("/proc/self/status", "r", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if len(parts) == 2 and parts[1] == "kB":
                    values[key] = int(parts[0]) * 1024
    except OSError:
        pass
    return values


def current_rss_bytes() -> Optional[int]:
    """Resident set size now: psutil when installed, /proc otherwise."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return _proc_status().get("VmRSS")


def peak_rss_bytes() -> Optional[int]:
    """Peak resident set size of this process so far (VmHWM; getrusage where /proc is missing)."""
    peak = _proc_status().get("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource  # lazy: Unix only (None where it is missing)

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(maxrss if sys.platform == "darwin" else maxrss * 1024)  # bytes on macOS, KiB on Linux
    except (ImportError, OSError):
        return None


def _mb(value: Optional[int]) -> Optional[float]:
    return None if value is None else value / MB


# -- machine ---------------------------------------------------------------------------------
def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as handle:
            return handle.read().replace("\x00", "").strip()
    except OSError:
        return None


def _cpuinfo() -> Dict[str, str]:
    info: Dict[str, str] = {}
    text = _read_text("/proc/cpuinfo") or ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key and key not in info:
            info[key] = value.strip()
    return info


def is_android() -> bool:
    return sys.platform == "android" or "ANDROID_ROOT" in os.environ or os.path.exists("/system/build.prop")


def device_model() -> Optional[str]:
    """'Raspberry Pi 4 Model B Rev 1.4' from the device tree, the phone model on Android, else None."""
    model = _read_text("/proc/device-tree/model") or _read_text("/sys/firmware/devicetree/base/model")
    if model:
        return model
    if is_android():
        try:
            found = subprocess.run(["getprop", "ro.product.model"], capture_output=True, text=True, timeout=5)
            return found.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    return None


SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp", "i8mm", "sve", "fphp")


def machine_info() -> dict:
    """What a result needs to be reproduced and compared: CPU, cores, architecture, OS, Python."""
    cpuinfo = _cpuinfo()
    flags = set((cpuinfo.get("flags") or cpuinfo.get("Features") or "").split())
    os_release = _read_text("/etc/os-release") or ""
    pretty = next((line.split("=", 1)[1].strip('"') for line in os_release.splitlines()
                   if line.startswith("PRETTY_NAME=")), None)
    cpu_model = cpuinfo.get("model name") or cpuinfo.get("Model") or cpuinfo.get("Hardware") or platform.processor() or None
    mhz = cpuinfo.get("cpu MHz")
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        load = None
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model,
        "cpu_mhz": float(mhz) if mhz else None,
        "device_model": device_model(),
        "cores": os.cpu_count(),
        "architecture": platform.machine(),
        "simd": sorted(flags & set(SIMD_FLAGS)),
        "memory_mb": _mb(_meminfo_total()),
        "os": pretty or platform.platform(),
        "kernel": platform.release(),
        "android": is_android(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "edge_albert": __version__,
        "load_average": load,
    }


def _meminfo_total() -> Optional[int]:
    for line in (_read_text("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None

"""Load test of `edge-albert serve` with locust: throughput and latency with and without micro-batching,
the overload case (503s, no crash, no memory growth), and the server's own overhead per request.

    python benchmarks/serve_load.py out/serve-bench/sst2.edgealbert \
        --out benchmarks/results/2026-11-29-serve-load

Everything runs on 127.0.0.1: one server process per configuration, locust headless in another
(closed loop: each client sends its next request when the last is answered), every run bounded
by --seconds and --max-requests. Writes OUT.json and OUT.md (atomically) with the command, the
machine (CPU, SIMD flags, cores, load average before and after each run) and every number.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from edge_albert.bench import machine_info  # noqa: E402
from edge_albert.tasks import load_model  # noqa: E402

LOCUSTFILE = Path(__file__).with_name("serve_locustfile.py")
ADDRESS = re.compile(r"serving on (http://127\.0\.0\.1:\d+)/")
CONFIGS = {
    "greedy micro-batching (--max-wait-ms 0: what waited during the last call)": ["--max-wait-ms", "0"],
    "micro-batching, 2 ms wait": ["--max-wait-ms", "2"],
    "micro-batching, 2 ms wait, one padded model call per batch": ["--max-wait-ms", "2", "--model-batch-size", "32"],
    "no batching (--max-batch-size 1)": ["--max-batch-size", "1"],
}
OVERLOAD_CONFIG = "greedy micro-batching (--max-wait-ms 0: what waited during the last call)"


def load_average() -> List[float]:
    return [round(x, 2) for x in os.getloadavg()]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS")


class Server:
    """`edge-albert serve BUNDLE --port 0 OPTIONS` in its own process."""

    def __init__(self, bundle: Path, options: List[str]):
        self.command = [sys.executable, "-c", "from edge_albert.cli import main; main()", "serve", str(bundle),
                        "--host", "127.0.0.1", "--port", "0", *options]
        env = dict(os.environ, PYTHONPATH=str(REPO))
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines: "queue.Queue[str]" = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in self.process.stdout], daemon=True).start()
        deadline = time.monotonic() + 120
        self.base_url = None
        while self.base_url is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the server did not start")
            try:
                match = ADDRESS.search(lines.get(timeout=1))
            except queue.Empty:
                continue
            self.base_url = match.group(1) if match else None

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)


def run_locust(base_url: str, users: int, seconds: int, max_requests: int, texts: Path, work: Path,
               model: str) -> dict:
    prefix = work / f"locust-{users}-{time.monotonic_ns()}"
    env = dict(os.environ, EDGE_ALBERT_MODEL=model, EDGE_ALBERT_TEXTS=str(texts),
               EDGE_ALBERT_MAX_REQUESTS=str(max_requests))
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
               "-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--stop-timeout", "10",
               "--host", base_url, "--csv", str(prefix), "--loglevel", "WARNING"]
    load_before = load_average()
    subprocess.run(command, env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   timeout=seconds + 120)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    with open(f"{prefix}_failures.csv", newline="") as handle:
        failures = {r["Error"]: int(r["Occurrences"]) for r in csv.DictReader(handle)}
    count = int(row["Request Count"])
    failed = int(row["Failure Count"])
    return {"users": users, "requests": count, "failures": failed, "ok": count - failed,
            "requests_per_s": round(float(row["Requests/s"]), 1),
            "ok_per_s": round(float(row["Requests/s"]) * (count - failed) / count, 1) if count else 0.0,
            "p50_ms": float(row["50%"]), "p99_ms": float(row["99%"]), "failures_by_error": failures,
            "load_average_before": load_before, "load_average_after": load_average()}


def p50_ms(samples: List[float]) -> float:
    return round(statistics.median(samples) * 1000.0, 3)


def overhead(bundle: Path, base_url: str, model: str, text: str, runs: int) -> dict:
    """p50 of one-text requests, one at a time, against TextClassifier.predict on the same text."""
    classifier = load_model(bundle)
    library, served = [], []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for _ in range(20):  # warm-up: interpreter shapes, connection
            classifier.predict(text)
            client.post(f"/v1/models/{model}/predict", json={"text": text})
        for _ in range(runs):
            started = time.perf_counter()
            classifier.predict(text)
            library.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = client.post(f"/v1/models/{model}/predict", json={"text": text})
            served.append(time.perf_counter() - started)
            assert response.status_code == 200
    return {"runs": runs, "library_p50_ms": p50_ms(library), "server_p50_ms": p50_ms(served),
            "overhead_p50_ms": round(p50_ms(served) - p50_ms(library), 3)}


def sst2_texts(work: Path) -> Tuple[Path, str]:
    lines = (REPO / "data/glue-sst2/dev.tsv").read_text(encoding="utf-8").splitlines()[1:]
    texts = [line.split("\t")[0].strip() for line in lines if line.strip()]
    path = work / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path, texts[0]


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def markdown(result: dict) -> str:
    machine = result["machine"]
    out = [f"# `edge-albert serve` under load ({result['bundle']})", "",
           f"Command: `{result['command']}`", "",
           f"Machine: {machine['cpu_model']}, {machine['cores']} cores, SIMD {', '.join(machine['simd'])}; "
           f"{machine['os']}, Python {machine['python']}; shared with other jobs, load average at start "
           f"{machine['load_average']}. Locust (one process) runs on the same cores as the server.", "",
           f"Server: uvicorn {result['uvicorn']} (loop {result['uvicorn_loop']}), interpreter threads "
           f"{result['threads']}; {result['seconds']} s per run, at most {result['max_requests']} requests.", "",
           "## Throughput and latency (closed-loop clients, one SST-2 sentence per request)", "",
           f"Each configuration ran {result['repeats']} times per client count, the configurations taking turns "
           "in alternating order; req/s is the median of those runs (range in brackets), p50/p99 of the run "
           "with the median req/s.", "",
           "| server | clients | req/s | p50 ms | p99 ms | failed |", "|---|---|---|---|---|---|"]
    for name, runs in result["load"].items():
        for count in sorted({run["users"] for run in runs}):
            same = sorted((run for run in runs if run["users"] == count), key=lambda run: run["requests_per_s"])
            middle = same[(len(same) - 1) // 2]
            rates = [run["requests_per_s"] for run in same]
            out.append(f"| {name} | {count} | {statistics.median(rates):.1f} ({min(rates):g}-{max(rates):g}) | "
                       f"{middle['p50_ms']:g} | {middle['p99_ms']:g} | {sum(run['failures'] for run in same)} |")
    out += ["", "Every run: " + "; ".join(
        f"{name.split(' (')[0]} x{run['users']}: {run['requests']} requests, {run['requests_per_s']} req/s, "
        f"load {run['load_average_before'][0]}→{run['load_average_after'][0]}"
        for name, runs in result["load"].items() for run in runs) + "."]
    over = result["overload"]
    out += ["", f"## Overload: {over['users']} clients against --max-queue {over['max_queue']}", "",
            f"Server: {over['server']}.", "",
            "| round | requests | answered 200 | refused 503 | other failures | req/s | RSS after (MB) |",
            "|---|---|---|---|---|---|---|"]
    for number, run in enumerate(over["rounds"], start=1):
        out.append(f"| {number} | {run['requests']} | {run['ok']} | {run['refused_503']} | "
                   f"{run['failures'] - run['refused_503']} | {run['requests_per_s']} | {run['rss_after_mb']:.1f} |")
    out += ["", f"RSS after a 10 s warm-up round at the same load {over['rss_before_mb']:.1f} MB; server alive after "
            f"every round: "
            f"{over['alive_after']}; /healthz after: {over['healthz_after']}.", "",
            "## The server's own overhead (one text, one request at a time)", "",
            "| server | TextClassifier.predict p50 ms | HTTP request p50 ms | overhead ms |", "|---|---|---|---|"]
    for name, row in result["overhead"].items():
        out.append(f"| {name} | {row['library_p50_ms']} | {row['server_p50_ms']} | {row['overhead_p50_ms']} |")
    return "\n".join(out) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="result path without suffix (.json and .md are written)")
    parser.add_argument("--users", default="1,8,64")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2, help="runs per configuration and client count, in alternating order")
    parser.add_argument("--overload-users", type=int, default=256)
    parser.add_argument("--overload-queue", type=int, default=8)
    parser.add_argument("--overload-rounds", type=int, default=3)
    parser.add_argument("--overhead-runs", type=int, default=200)
    return parser


def _result_header(args: argparse.Namespace, argv: Optional[List[str]]) -> Dict[str, object]:
    """The command, machine and server settings recorded before any run; the runs fill "load" and "overhead"."""
    import uvicorn

    result: Dict[str, object] = {
        "command": "python " + " ".join(shlex.quote(a) for a in [str(Path(sys.argv[0]).relative_to(REPO)
                                                                      if Path(sys.argv[0]).is_absolute() else sys.argv[0]),
                                                                 *(argv if argv is not None else sys.argv[1:])]),
        "bundle": str(args.bundle), "machine": machine_info(), "seconds": args.seconds,
        "max_requests": args.max_requests, "repeats": args.repeats, "uvicorn": uvicorn.__version__,
        "threads": "default (min(4, cores))", "load": {}, "overhead": {},
    }
    try:
        import uvloop  # noqa: F401

        result["uvicorn_loop"] = "uvloop + httptools (installed, so uvicorn's auto picks them)"
    except ImportError:
        result["uvicorn_loop"] = "asyncio + h11"
    return result


def _measure_configs(args: argparse.Namespace, users: List[int], result: Dict[str, object], texts: Path,
                     first_text: str, work: Path, model: str) -> None:
    """Throughput per configuration and client count, then each configuration's overhead, into `result`."""
    # Every configuration's server runs at once (idle ones cost nothing) and the configurations
    # take turns at each client count, so a change in the other jobs' load hits them alike.
    servers = {name: Server(args.bundle, options) for name, options in CONFIGS.items()}
    try:
        for count in users:
            for repeat in range(args.repeats):
                order = list(servers.items())
                for name, server in (order if repeat % 2 == 0 else order[::-1]):
                    run = run_locust(server.base_url, count, args.seconds, args.max_requests, texts, work, model)
                    run["repeat"] = repeat
                    result["load"].setdefault(name, []).append(run)
                    print(f"{name}: {run}", file=sys.stderr)
        for name, server in servers.items():
            result["overhead"][name] = overhead(args.bundle, server.base_url, model, first_text, args.overhead_runs)
            print(f"{name} overhead: {result['overhead'][name]}", file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()


def _overload(args: argparse.Namespace, texts: Path, work: Path, model: str) -> dict:
    """Rounds of more clients than --max-queue admits: 503s, RSS after each round, the server still alive."""
    server = Server(args.bundle, [*CONFIGS[OVERLOAD_CONFIG], "--max-queue", str(args.overload_queue)])
    try:
        # Warm-up at the same load: the interpreter meets its batch shapes and the allocator its peak.
        run_locust(server.base_url, args.overload_users, 10, args.max_requests, texts, work, model)
        overload = {"users": args.overload_users, "max_queue": args.overload_queue, "server": OVERLOAD_CONFIG,
                    "rss_before_mb": rss_mb(server.process.pid), "rounds": []}
        for _ in range(args.overload_rounds):
            run = run_locust(server.base_url, args.overload_users, args.seconds, args.max_requests, texts, work, model)
            run["refused_503"] = sum(n for error, n in run["failures_by_error"].items() if "503" in error)
            run["rss_after_mb"] = rss_mb(server.process.pid)
            overload["rounds"].append(run)
            print(f"overload: {run}", file=sys.stderr)
        overload["alive_after"] = server.alive()
        overload["healthz_after"] = httpx.get(server.base_url + "/healthz", timeout=30).status_code
        return overload
    finally:
        server.stop()


def main(argv: Optional[List[str]] = None) -> None:
    args = _parser().parse_args(argv)
    model = args.bundle.name.removesuffix(".edgealbert")
    result = _result_header(args, argv)
    users = [int(u) for u in args.users.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        texts, first_text = sst2_texts(work)
        _measure_configs(args, users, result, texts, first_text, work, model)
        result["overload"] = _overload(args, texts, work, model)
    result["machine"]["load_average_end"] = load_average()
    write_atomic(args.out.with_suffix(".json"), json.dumps(result, indent=2) + "\n")
    write_atomic(args.out.with_suffix(".md"), markdown(result))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}", file=sys.stderr)


if __name__ == "__main__":
    main()

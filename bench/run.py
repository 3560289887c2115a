"""CTMS load benchmark (issue #8, docs/contract.md §16.1): one command seeds a database, starts the API and drives it.

    .venv/bin/python bench/run.py                     # 100k contacts, 20 s per scenario, 32 connections
    .venv/bin/python bench/run.py --workers 1,2       # compare uvicorn worker counts
    .venv/bin/python bench/run.py --smoke             # seconds, tiny data; CI: fails only on errors

Without CTMS_DB_URL it runs its own embedded PostgreSQL in a temporary folder; with it, it creates (and
drops) a throwaway database there. Results go to bench/results/<timestamp>.json. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ctms_bench import database, loadgen, memory, profiling, server
from ctms_bench.loadgen import LABELS, ScenarioResult, Workload

RESULTS_DIR = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024

# docs/contract.md §16.1 / issue #8: minimum throughput as a share of GET /__lbheartbeat__ on the same server.
RATIO_TARGETS = {"get_by_id": 0.50, "get_by_email": 0.40, "post": 0.25, "patch": 0.25}
P99_OVER_P50_MAX = 4.0
RSS_LIMIT_MB = 150.0
FLAT_TOLERANCE_MB = 10.0
SMOKE_ERROR_RATE = 0.01
WORKLOAD_SAMPLE = 200_000  # contacts whose ids and addresses wrk picks from


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=100_000, help="contacts to seed")
    parser.add_argument("--duration", type=float, default=20, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds per scenario")
    parser.add_argument("--concurrency", type=int, default=32, help="connections (closed loop)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--workers", default="1", help="uvicorn worker counts to measure, comma separated"
    )
    parser.add_argument("--repeat", type=int, default=1, help="measure every scenario N times")
    parser.add_argument(
        "--scenarios",
        default=",".join(loadgen.SCENARIOS),
        help="comma separated subset of " + ", ".join(loadgen.SCENARIOS),
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="closed-loop load generator (auto: wrk if installed, else the asyncio client)",
    )
    parser.add_argument(
        "--open-loop-rate",
        type=float,
        default=0,
        help="requests/s of the open-loop GET-by-id run (0: half the closed-loop throughput; "
        "negative: skip)",
    )
    parser.add_argument(
        "--updates-limit", type=int, default=1000, help="page size of the /updates memory check"
    )
    parser.add_argument(
        "--walk-pages",
        type=int,
        default=0,
        help="stop the /updates walk after this many pages (0: walk everything)",
    )
    parser.add_argument(
        "--profile",
        default="",
        help="scenarios to sample with py-spy while they run (comma separated)",
    )
    parser.add_argument("--py-spy", default="", help="py-spy executable (default: on PATH)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny data, ~2 s per scenario; exit 1 only if a scenario errors",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of `ctms serve` (repeatable), e.g. CTMS_DB_POOL_SIZE=20",
    )
    parser.add_argument(
        "--compare-sizes",
        default="",
        metavar="N,N,...",
        help="measure each data size in turn (a fresh database each, e.g. 100000,1000000,5000000) "
        "and print API CPU per request and p99 against the first size; overrides --contacts",
    )
    parser.add_argument("--output", type=Path, default=None, help="results file (JSON)")
    arguments = parser.parse_args(argv)
    if arguments.smoke:
        arguments.contacts = min(arguments.contacts, 200)
        arguments.duration = 2
        arguments.warmup = 0
        arguments.concurrency = 4
        arguments.threads = 1
        arguments.updates_limit = 50
        if arguments.open_loop_rate == 0:
            arguments.open_loop_rate = 20
    return arguments


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(value, 2) for value in load],
    }


def drive(
    arguments: argparse.Namespace,
    scenario: str,
    api: server.ApiServer,
    workload: Workload,
    sampler: memory.RssSampler,
    *,
    seconds: float,
    profile_dir: Path | None = None,
    database_url: str | None = None,
) -> ScenarioResult:
    use_wrk = arguments.generator == "wrk" or (
        arguments.generator == "auto" and loadgen.wrk_available()
    )
    spy = None
    profile_file = None
    if profile_dir is not None:
        profile_file = profile_dir / f"profile-{scenario}-w{api.workers}.txt"
        spy = profiling.start_py_spy(arguments.py_spy, api.pid, seconds, profile_file)
    sampler.reset()
    server_cpu = memory.tree_cpu_seconds(api.pid)
    database_cpu = memory.tree_cpu_seconds(os.getpid(), only="postgres")
    # On CTMS_DB_URL (a local server): the backends of the API's pool, warm after the warm-up.
    backends = database.backend_pids(database_url) if database_url else []
    backends_cpu = memory.processes_cpu_seconds(backends)
    if use_wrk:
        result = loadgen.run_wrk(
            scenario,
            api.base_url,
            workload,
            concurrency=arguments.concurrency,
            seconds=seconds,
            threads=arguments.threads,
        )
    else:
        result = loadgen.run_python(
            scenario,
            api.base_url,
            workload,
            concurrency=arguments.concurrency,
            seconds=seconds,
        )
    sampler.sample()
    result.server_cpu = (memory.tree_cpu_seconds(api.pid) - server_cpu) / result.seconds
    backends_after = memory.processes_cpu_seconds(backends)
    result.database_cpu = (
        memory.tree_cpu_seconds(os.getpid(), only="postgres")
        - database_cpu
        + sum(
            backends_after[pid] - backends_cpu[pid] for pid in backends_cpu if pid in backends_after
        )
    ) / result.seconds
    result.rss_peak_total_mb = sampler.peak_total / MB
    result.rss_peak_largest_mb = sampler.peak_largest / MB
    if spy is not None and profile_file is not None:
        spy.wait(timeout=seconds + 60)
        if profile_file.exists():
            summary = profiling.summarise(profile_file)
            result.detail = {
                **(result.detail or {}),
                "profile": {
                    "file": str(profile_file),
                    "samples": summary.samples,
                    "top_self": summary.top_self,
                    "top_inclusive": summary.top_inclusive,
                },
            }
            print_profile(scenario, summary)
    return result


def print_profile(scenario: str, summary: profiling.Profile) -> None:
    print(f"\npy-spy: {scenario}, {summary.samples} samples ({summary.output})")
    print("  self time:")
    for name, share in summary.top_self[:15]:
        print(f"    {share:6.1%}  {name}")
    print("  inclusive:")
    for name, share in summary.top_inclusive[:30]:
        print(f"    {share:6.1%}  {name}")


def updates_memory_check(
    api: server.ApiServer,
    token: str,
    limit: int,
    sampler: memory.RssSampler,
    max_pages: int = 0,
) -> dict[str, Any]:
    """Page through every contact with GET /updates (following `next`), sampling the server's RSS
    after each page: the series must be flat, not grow with the pages read. Timed, with the API's CPU:
    the cost of exporting everything. `max_pages` (0: no bound) stops early; the walk is then a sample
    of the export's rate (keyset paging costs the same on every page)."""
    url: str | None = f"{api.base_url}/updates?start=2000-01-01T00:00:00%2B00:00&limit={limit}"
    per_page: list[float] = []
    contacts = errors = 0
    started = time.perf_counter()
    server_cpu = memory.tree_cpu_seconds(api.pid)
    sampler.reset()
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        while url is not None and not (max_pages and len(per_page) >= max_pages):
            response = client.get(url)
            if response.status_code != 200:
                errors += 1
                break
            page = response.json()
            contacts += len(page["items"])
            per_page.append(memory.tree_rss(api.pid).largest / MB)
            url = page["next"]
    sampler.sample()
    pages = len(per_page)
    third = max(1, pages // 3)
    growth = max(per_page[-third:], default=0) - max(per_page[:third], default=0)
    seconds = time.perf_counter() - started
    cpu = memory.tree_cpu_seconds(api.pid) - server_cpu
    return {
        "page_size": limit,
        "pages": pages,
        "contacts": contacts,
        "complete": url is None,
        "errors": errors,
        "seconds": round(seconds, 2),
        "contacts_per_second": round(contacts / seconds, 1) if seconds else None,
        "api_cpu_ms_per_1000_contacts": round(1e6 * cpu / contacts, 1) if contacts else None,
        "rss_first_mb": round(per_page[0], 1) if per_page else None,
        "rss_last_mb": round(per_page[-1], 1) if per_page else None,
        "rss_max_mb": round(max(per_page, default=0), 1),
        "rss_peak_mb": round(sampler.peak_largest / MB, 1),  # VmHWM: the exact peak
        "growth_last_third_vs_first_third_mb": round(growth, 1),
        "flat": pages > 0 and growth <= FLAT_TOLERANCE_MB,
        "rss_per_page_mb": [round(value, 1) for value in per_page],
    }


def evaluate(results: dict[str, ScenarioResult], baseline_rps: float) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    for scenario, target in RATIO_TARGETS.items():
        if scenario in results and baseline_rps:
            ratio = results[scenario].rps / baseline_rps
            checks.append(
                {
                    "target": f"{LABELS[scenario]} ≥ {target:.0%} of /__lbheartbeat__",
                    "value": f"{ratio:.1%}",
                    "met": ratio >= target,
                }
            )
    if "get_by_id" in results:
        by_id = results["get_by_id"]
        tail = by_id.p99_ms / by_id.p50_ms if by_id.p50_ms else float("inf")
        checks.append(
            {
                "target": f"GET /ctms/{{email_id}} p99 < {P99_OVER_P50_MAX:g}× p50",
                "value": f"{tail:.2f}×",
                "met": tail < P99_OVER_P50_MAX,
            }
        )
    if results:
        largest = max(result.rss_peak_largest_mb for result in results.values())
        checks.append(
            {
                "target": f"API process RSS < {RSS_LIMIT_MB:g} MB",
                "value": f"{largest:.0f} MB",
                "met": largest < RSS_LIMIT_MB,
            }
        )
    return checks


def print_table(workers: int, results: dict[str, ScenarioResult], baseline_rps: float) -> None:
    print(f"\n== uvicorn workers: {workers} ==")
    header = (
        f"{'scenario':<28}{'req/s':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'vs lbhb':>9}{'RSS MB':>10}{'CPU api/db':>12}{'ms CPU/req':>11}"
        f"{'db ms/req':>10}"
    )
    print(header)
    print("-" * len(header))
    for scenario, result in results.items():
        ratio = f"{result.rps / baseline_rps:.1%}" if baseline_rps else "-"
        rss = f"{result.rss_peak_largest_mb:.0f}/{result.rss_peak_total_mb:.0f}"
        print(
            f"{LABELS.get(scenario, scenario):<28}{result.rps:>9.0f}{result.p50_ms:>9.2f}"
            f"{result.p90_ms:>9.2f}{result.p99_ms:>9.2f}{result.max_ms:>9.1f}"
            f"{result.errors:>8}{ratio:>9}{rss:>10}"
            f"{result.server_cpu:>7.2f}/{result.database_cpu:<4.2f}"
            f"{result.server_cpu_ms_per_request:>11.2f}{result.database_cpu_ms_per_request:>10.2f}"
        )
    print(
        "RSS MB = peak (VmHWM) of the largest process / peak sum over the server's process tree; "
        "CPU = cores busy in the API processes / in PostgreSQL (embedded, or the local CTMS_DB_URL "
        "server's backends of the bench database); ms CPU/req = API CPU time per request (robust to a "
        "busy machine); db ms/req = PostgreSQL's"
    )


def best_of(runs: list[ScenarioResult]) -> ScenarioResult:
    """The median run by throughput (the only run when there is one)."""
    return sorted(runs, key=lambda run: run.rps)[len(runs) // 2]


def measure_server(
    arguments: argparse.Namespace,
    workers: int,
    environment: dict[str, str],
    credentials: server.Credentials,
    workload_files: tuple[Path, Path],
    seeded: database.Seeded,
    work_dir: Path,
    *,
    walk: bool = True,
) -> dict[str, Any]:
    """Every scenario against one `ctms serve`; with `walk`, also the open-loop run and the `/updates`
    walk through the whole data set (timed: the time to export everything)."""
    scenarios = [name.strip() for name in arguments.scenarios.split(",") if name.strip()]
    profiled = {name.strip() for name in arguments.profile.split(",") if name.strip()}
    if profiled and not arguments.py_spy:
        arguments.py_spy = shutil.which("py-spy") or ""
        if not arguments.py_spy:
            raise SystemExit("--profile needs py-spy (pip install py-spy, or --py-spy PATH)")
    log(f"starting ctms serve --workers {workers}")
    with server.ApiServer(environment, workers, work_dir / f"serve-w{workers}.log") as api:
        startup_peak = max(memory.peak_rss_bytes(pid) for pid in memory.process_tree(api.pid))
        log(f"API started: peak RSS (VmHWM) {startup_peak / MB:.1f} MB")
        sampler = memory.RssSampler(api.pid)
        sampler.start()
        try:
            token = api.token(credentials)
            workload = Workload(
                token=token,
                ids_file=workload_files[0],
                emails_file=workload_files[1],
                email_ids=seeded.email_ids,
                primary_emails=seeded.primary_emails,
                newsletters=database.NEWSLETTERS,
            )
            # The baseline is measured first and last; its mean is what the ratios divide by.
            order = ["heartbeat", *[s for s in scenarios if s != "heartbeat"], "heartbeat"]
            external = environment["CTMS_DB_URL"] if os.environ.get("CTMS_DB_URL") else None
            runs: dict[str, list[ScenarioResult]] = {}
            for _ in range(arguments.repeat):
                for scenario in order:
                    if arguments.warmup > 0:
                        drive(
                            arguments,
                            scenario,
                            api,
                            workload,
                            sampler,
                            seconds=arguments.warmup,
                            database_url=external,
                        )
                    log(f"workers={workers} {scenario}: {arguments.duration:g} s")
                    result = drive(
                        arguments,
                        scenario,
                        api,
                        workload,
                        sampler,
                        seconds=arguments.duration,
                        profile_dir=work_dir if scenario in profiled else None,
                        database_url=external,
                    )
                    runs.setdefault(scenario, []).append(result)
                    log(f"  peak RSS (VmHWM) of {scenario}: {result.rss_peak_largest_mb:.1f} MB")
            heartbeat_runs = runs.pop("heartbeat")
            baseline = sum(run.rps for run in heartbeat_runs) / len(heartbeat_runs)
            results = {"heartbeat": best_of(heartbeat_runs)}
            results.update({scenario: best_of(found) for scenario, found in runs.items()})
            print_table(workers, results, baseline)
            print(
                "/__lbheartbeat__ runs (req/s): "
                + ", ".join(f"{run.rps:.0f}" for run in heartbeat_runs)
            )
            open_loop = None
            updates_memory: dict[str, Any] | None = None
            if walk and arguments.open_loop_rate >= 0 and "get_by_id" in results:
                rate = arguments.open_loop_rate or max(10.0, results["get_by_id"].rps / 2)
                log(f"open loop: GET /ctms/{{email_id}} at {rate:.0f} req/s")
                sampler.reset()
                open_loop = loadgen.run_open_loop(
                    "get_by_id", api.base_url, workload, rate=rate, seconds=arguments.duration
                )
                open_loop.rss_peak_largest_mb = sampler.peak_largest / MB
                open_loop.rss_peak_total_mb = sampler.peak_total / MB
                print(
                    f"open loop GET /ctms/{{email_id}} at {rate:.0f} req/s: achieved "
                    f"{open_loop.rps:.0f} req/s, p50 {open_loop.p50_ms:.2f} ms, "
                    f"p90 {open_loop.p90_ms:.2f} ms, p99 {open_loop.p99_ms:.2f} ms, "
                    f"max {open_loop.max_ms:.1f} ms, errors {open_loop.errors}"
                )
            if walk:
                log(f"/updates memory check: pages of {arguments.updates_limit}")
                updates_memory = updates_memory_check(
                    api, token, arguments.updates_limit, sampler, arguments.walk_pages
                )
                print_walk(updates_memory)
        finally:
            sampler.stop()
    checks = evaluate(results, baseline)
    if updates_memory is not None:
        checks.append(
            {
                "target": "/updates memory flat across pages",
                "value": f"{updates_memory['growth_last_third_vs_first_third_mb']} MB growth",
                "met": updates_memory["flat"],
            }
        )
    print("\nSPEC §9 targets:")
    for check in checks:
        print(f"  [{'met ' if check['met'] else 'MISS'}] {check['target']}: {check['value']}")
    return {
        "workers": workers,
        "baseline_rps": baseline,
        "scenarios": {name: result.as_dict() for name, result in results.items()},
        "all_runs": {
            name: [run.as_dict() for run in found]
            for name, found in {**runs, "heartbeat": heartbeat_runs}.items()
        },
        "ratios": {name: result.rps / baseline for name, result in results.items() if baseline},
        "open_loop": open_loop.as_dict() if open_loop else None,
        "updates_memory": updates_memory,
        "targets": checks,
    }


def print_walk(updates_memory: dict[str, Any]) -> None:
    print(
        f"/updates memory: {updates_memory['pages']} pages, {updates_memory['contacts']} "
        f"contacts, RSS first {updates_memory['rss_first_mb']} MB, last "
        f"{updates_memory['rss_last_mb']} MB, peak (VmHWM) {updates_memory['rss_peak_mb']} MB, "
        f"growth {updates_memory['growth_last_third_vs_first_third_mb']} MB → "
        f"{'flat' if updates_memory['flat'] else 'GROWING'}"
    )


@dataclass
class PreparedSize:
    """A seeded database of one size, ready to serve."""

    contacts: int
    environment: dict[str, str]
    credentials: server.Credentials
    seeded: database.Seeded
    workload_files: tuple[Path, Path]
    work_dir: Path
    measured: dict[str, Any]


def prepare_size(
    stack: contextlib.ExitStack, arguments: argparse.Namespace, contacts: int
) -> PreparedSize:
    """A fresh database (dropped when `stack` closes), migrated, with an API client and `contacts`
    seeded contacts; its seeding times and table sizes in `measured`."""
    work_dir = Path(tempfile.mkdtemp(prefix="ctms-bench-"))
    stack.callback(shutil.rmtree, work_dir, ignore_errors=True)
    work_dir.chmod(0o711)  # as root, the embedded server's own user must reach its folder
    db = stack.enter_context(database.provide_database(work_dir, os.environ.get("CTMS_DB_URL")))
    log(f"database: {db.description}")
    environment = server.base_environment(
        db.url, os.urandom(32).hex(), work_dir / "ctms-data", arguments.concurrency
    )
    for assignment in arguments.server_env:
        name, _, value = assignment.partition("=")
        environment[name] = value
    server.upgrade_database(environment)  # a deploy step: `ctms serve` does not migrate
    credentials = server.create_client(environment)
    log(f"seeding {contacts} contacts")
    seeded = asyncio.run(database.seed(db.url, contacts))
    log(
        f"seeded in {seeded.seconds:.1f} s ({seeded.load_seconds:.1f} s COPY, "
        f"{seeded.index_seconds:.1f} s indexes, constraints and ANALYZE)"
    )
    measured: dict[str, Any] = {
        "seed_seconds": round(seeded.seconds, 1),
        "seed_load_seconds": round(seeded.load_seconds, 1),
        "seed_index_seconds": round(seeded.index_seconds, 1),
        "relation_sizes": asyncio.run(database.relation_sizes(db.url)),
        "runs": [],
    }
    ids_file, emails_file = work_dir / "ids.txt", work_dir / "emails.txt"
    # Every wrk thread reads these files before it starts: a uniform sample keeps that short at
    # millions of contacts and still spreads the requests over the whole of every index.
    count = len(seeded.email_ids)
    chosen = sorted(
        random.Random(contacts).sample(range(count), WORKLOAD_SAMPLE)
        if count > WORKLOAD_SAMPLE
        else range(count)
    )
    ids_file.write_text("\n".join(seeded.email_ids[i] for i in chosen) + "\n")
    emails_file.write_text("\n".join(seeded.primary_emails[i] for i in chosen) + "\n")
    return PreparedSize(
        contacts, environment, credentials, seeded, (ids_file, emails_file), work_dir, measured
    )


def measure_prepared(
    arguments: argparse.Namespace,
    size: PreparedSize,
    workers: int,
    started_at: datetime,
    *,
    walk: bool = True,
) -> dict[str, Any]:
    run = measure_server(
        arguments,
        workers,
        size.environment,
        size.credentials,
        size.workload_files,
        size.seeded,
        size.work_dir,
        walk=walk,
    )
    for profile in size.work_dir.glob("profile-*.txt"):
        RESULTS_DIR.mkdir(exist_ok=True)
        shutil.copy(profile, RESULTS_DIR / f"{started_at:%Y%m%dT%H%M%S}-{profile.name}")
    return run


def measure_size(
    arguments: argparse.Namespace, contacts: int, worker_counts: list[int], started_at: datetime
) -> dict[str, Any]:
    """Seed `contacts` into a fresh database, measure every worker count on it; drop the database."""
    with contextlib.ExitStack() as stack:
        size = prepare_size(stack, arguments, contacts)
        for workers in worker_counts:
            size.measured["runs"].append(measure_prepared(arguments, size, workers, started_at))
    return size.measured


def compare_sizes(
    arguments: argparse.Namespace,
    sizes: list[int],
    workers: int,
    started_at: datetime,
    report: dict[str, Any],
    output: Path,
) -> None:
    """Measure every size in turn, `--repeat` rounds: the first round seeds each size (its own
    database, kept until the end) just before measuring it and walks `/updates`; the later rounds
    measure the sizes back to back, so that they see the same machine. Each round is one entry of the
    size's `runs`; the comparison takes the median over the rounds."""
    rounds = arguments.repeat
    arguments.repeat = 1
    with contextlib.ExitStack() as stack:
        prepared: list[PreparedSize] = []
        report["sizes"] = []
        for round_number in range(rounds):
            for index, contacts in enumerate(sizes):
                if round_number == 0:
                    prepared.append(prepare_size(stack, arguments, contacts))
                    report["sizes"].append({"contacts": contacts, **prepared[index].measured})
                size, entry = prepared[index], report["sizes"][index]
                log(f"round {round_number + 1}/{rounds}: {contacts} contacts")
                entry["runs"].append(
                    measure_prepared(arguments, size, workers, started_at, walk=round_number == 0)
                )
                write_report(output, report)  # a long comparison keeps what it measured so far


GROWTH_SCENARIOS = ("get_by_id", "get_by_email", "post", "patch")
GROWTH_LIMIT = 1.25  # issue #19: API CPU per request at 5 M within 1.25x of 100 k


def median_over_rounds(size: dict[str, Any], scenario: str, key: str) -> float | None:
    values = [run["scenarios"].get(scenario, {}).get(key) for run in size["runs"]]
    found = sorted(value for value in values if value is not None)
    return statistics.median(found) if found else None


def labels_line(labels: list[str]) -> str:
    return "".join(f"{label:>14}" for label in labels)


def print_growth(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """The cost of each scenario at every size against the first (smallest) size: API ms CPU per
    request and p99, each the median over the rounds; seeding and export times; the largest tables."""
    base = sizes[0]
    labels = [f"{size['contacts']:,}" for size in sizes]
    rounds = len(base["runs"])
    print(f"\n== cost as the data grows (median of {rounds} rounds; ratios against {labels[0]}) ==")
    print(f"{'scenario':<28}" + "".join(f"{label + ' CPU/req':>22}{'p99':>9}" for label in labels))
    growth: dict[str, Any] = {"scenarios": {}, "targets": []}
    for scenario in base["runs"][0]["scenarios"]:
        cells = ""
        row = []
        first = median_over_rounds(base, scenario, "server_cpu_ms_per_request")
        for size in sizes:
            cpu = median_over_rounds(size, scenario, "server_cpu_ms_per_request")
            p99 = median_over_rounds(size, scenario, "p99_ms")
            if cpu is None or p99 is None:
                cells += f"{'-':>22}{'-':>9}"
                continue
            ratio = cpu / first if first else float("nan")
            cells += f"{cpu:>13.3f} ({ratio:4.2f}x){p99:>9.1f}"
            row.append(
                {
                    "contacts": size["contacts"],
                    "cpu_ms_per_request": cpu,
                    "ratio": ratio,
                    "p99_ms": p99,
                    "database_cpu_ms_per_request": median_over_rounds(
                        size, scenario, "database_cpu_ms_per_request"
                    ),
                    "cpu_ms_per_request_rounds": [
                        run["scenarios"][scenario]["server_cpu_ms_per_request"]
                        for run in size["runs"]
                    ],
                }
            )
        growth["scenarios"][scenario] = row
        print(f"{LABELS.get(scenario, scenario):<28}{cells}")
        if scenario in GROWTH_SCENARIOS and row and len(sizes) > 1:
            largest = row[-1]
            growth["targets"].append(
                {
                    "target": f"{LABELS[scenario]} CPU/req at {labels[-1]} <= "
                    f"{GROWTH_LIMIT}x of {labels[0]}",
                    "value": f"{largest['ratio']:.2f}x",
                    "met": largest["ratio"] <= GROWTH_LIMIT,
                }
            )
    print(
        f"\nPostgreSQL ms CPU/req (0: not measurable, e.g. a remote server): {'':<4}"
        + labels_line(labels)
    )
    for scenario, row in growth["scenarios"].items():
        cells = "".join(f"{entry['database_cpu_ms_per_request'] or 0:>14.3f}" for entry in row)
        print(f"  {LABELS.get(scenario, scenario):<26}{cells}")
    print(
        f"\n{'contacts':>12}{'seed s':>9}{'COPY s':>9}{'index s':>9}{'walked':>11}{'walk s':>9}"
        f"{'contacts/s':>12}{'API ms/1000':>12}{'export s':>10}{'DB MB':>9}"
    )
    growth["sizes"] = []
    for size in sizes:
        walk = size["runs"][0]["updates_memory"]
        total = sum(table["total"] for table in size["relation_sizes"]["tables"].values())
        rate = walk["contacts"] / walk["seconds"] if walk["seconds"] else 0
        # A bounded walk is a sample of the export rate: everything takes `contacts / rate`.
        export = walk["seconds"] if walk["complete"] else size["contacts"] / rate if rate else 0
        growth["sizes"].append(
            {
                "contacts": size["contacts"],
                "export_seconds": round(export, 1),
                "export_measured": walk["complete"],
                "database_bytes": total,
            }
        )
        print(
            f"{size['contacts']:>12,}{size['seed_seconds']:>9.1f}{size['seed_load_seconds']:>9.1f}"
            f"{size['seed_index_seconds']:>9.1f}{walk['contacts']:>11,}{walk['seconds']:>9.1f}"
            f"{rate:>12.0f}{walk['api_cpu_ms_per_1000_contacts'] or 0:>12.1f}"
            f"{export:>9.0f}{'' if walk['complete'] else '*'}{total / MB:>9.0f}"
        )
    print(
        "* the walk was bounded (--walk-pages): the export time is contacts / contacts per second"
    )
    largest_tables = sorted(
        sizes[-1]["relation_sizes"]["tables"].items(), key=lambda item: -item[1]["total"]
    )[:6]
    print("\ntable (heap + TOAST / indexes / total MB) per size:")
    for name, _ in largest_tables:
        cells = "  ".join(
            "{table:.0f}/{indexes:.0f}/{total:.0f}".format(
                **{
                    key: value / MB
                    for key, value in size["relation_sizes"]["tables"][name].items()
                    if key != "rows_estimate"
                }
            )
            for size in sizes
        )
        print(f"  {name:<14}{cells}")
    for check in growth["targets"]:
        print(f"  [{'met ' if check['met'] else 'MISS'}] {check['target']}: {check['value']}")
    return growth


def smoke_failures(report: dict[str, Any]) -> list[str]:
    failures = []
    for run in report["runs"]:
        for name, found in run["all_runs"].items():
            for result in found:
                if result["requests"] == 0 or result["error_rate"] > SMOKE_ERROR_RATE:
                    failures.append(
                        f"workers={run['workers']} {name}: {result['requests']} requests, "
                        f"{result['errors']} errors"
                    )
        open_loop = run["open_loop"]
        if open_loop and (open_loop["requests"] == 0 or open_loop["error_rate"] > SMOKE_ERROR_RATE):
            failures.append(f"workers={run['workers']} open loop: {open_loop['errors']} errors")
        walk = run["updates_memory"]
        if walk is not None and (walk["errors"] or not walk["pages"]):
            failures.append(f"workers={run['workers']} /updates paging failed")
    return failures


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    worker_counts = [int(value) for value in arguments.workers.split(",") if value.strip()]
    generator = (
        "wrk"
        if arguments.generator == "wrk"
        or (arguments.generator == "auto" and loadgen.wrk_available())
        else "python-asyncio"
    )
    if generator != "wrk":
        log("wrk not found (apt-get install wrk): using the slower Python asyncio generator")
    started_at = datetime.now(UTC)
    report: dict[str, Any] = {
        "started_at": started_at.isoformat(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(),
        "settings": {
            key: (str(value) if isinstance(value, Path) else value)
            for key, value in vars(arguments).items()
        },
        "generator": generator,
        "runs": [],
    }
    output = arguments.output or RESULTS_DIR / f"{started_at:%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    sizes = [int(value) for value in arguments.compare_sizes.split(",") if value.strip()]
    if sizes:
        compare_sizes(arguments, sizes, worker_counts[0], started_at, report, output)
        report["runs"] = [run for size in report["sizes"] for run in size["runs"]]
        report["growth"] = print_growth(report["sizes"])
    else:
        report.update(measure_size(arguments, arguments.contacts, worker_counts, started_at))
    report["finished_at"] = datetime.now(UTC).isoformat()
    report["load_average_at_end"] = machine()["load_average"]
    write_report(output, report)
    log(f"results: {output}")
    if arguments.smoke:
        failures = smoke_failures(report)
        for failure in failures:
            print(f"SMOKE FAILURE: {failure}", file=sys.stderr)
        return 1 if failures else 0
    return 0


def write_report(output: Path, report: dict[str, Any]) -> None:
    output.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")


def _json_default(value: object) -> object:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)  # type: ignore[call-overload]
    raise TypeError(f"not JSON serialisable: {type(value)}")


if __name__ == "__main__":
    sys.exit(main())

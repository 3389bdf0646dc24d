"""Run a command in a child process and measure it: wall, CPU, peak RSS, spill, contention."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]  # children run here, so `-m pipeline` imports


@dataclass(frozen=True)
class Measurement:
    """One child process: its time, memory and spill."""

    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    peak_spill_mb: float
    others_cpu_seconds: float  # CPU time other processes used meanwhile: contention


def run_measured(command: list[str], output: Path, spill_root: Path) -> Measurement:
    """Run ``command`` (output to ``output``); exit with its tail if it fails.

    Wall time includes Python start-up. CPU time and peak RSS are the child's own, from
    ``os.wait4``; the spill is the largest size ``spill_root`` reached (polled every 50 ms).
    """
    peak_spill = 0
    with output.open("wb") as sink:
        busy_before = machine_busy_seconds()
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, cwd=PROJECT)
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            peak_spill = max(peak_spill, folder_bytes(spill_root))
            time.sleep(0.05)
        wall = time.perf_counter() - started
        busy = machine_busy_seconds() - busy_before
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if child.returncode:
        tail = output.read_text(encoding="utf-8", errors="replace")[-2000:]
        sys.exit(f"{' '.join(command)} failed (exit {child.returncode}):\n{tail}")
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(
        wall_seconds=wall,
        cpu_seconds=cpu,
        peak_rss_mb=usage.ru_maxrss * 1024 / 1e6,  # ru_maxrss is in KiB on Linux
        peak_spill_mb=peak_spill / 1e6,
        others_cpu_seconds=max(0.0, busy - cpu),
    )


def machine_busy_seconds() -> float:
    """CPU time all processes have used since boot (Linux /proc/stat; NaN elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text(encoding="ascii").split("\n", 1)[0].split()
    except OSError:
        return float("nan")
    ticks = [int(value) for value in fields[1:8]]  # user nice system idle iowait irq softirq
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def folder_bytes(folder: Path) -> int:
    total = 0
    for entry in _files(folder):
        try:
            total += entry.stat().st_size
        except OSError:  # removed while we looked
            continue
    return total


def _files(folder: Path) -> Iterator[os.DirEntry[str]]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                yield from _files(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield entry
        except OSError:  # removed while we looked
            continue


def machine(memory_limit: str | None, threads: int | None) -> str:
    """One line naming the machine and the DuckDB settings the figures were taken with."""
    import duckdb

    cpu = "unknown CPU"
    memory_kib = 0
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    settings = f"memory_limit {memory_limit or 'config default'}"
    settings += f", threads {threads if threads is not None else 'config default'}"
    return (
        f"machine: {cpu}, {cores} cores, {memory_kib / 1024**2:.1f} GiB RAM,"
        f" Python {platform.python_version()}, DuckDB {duckdb.__version__},"
        f" {platform.system()} {platform.release()}; {settings}"
    )

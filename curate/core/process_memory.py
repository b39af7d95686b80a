"""Peak memory of a process and all its descendants (Ray's raylet, GCS and workers, img2dataset's workers),
sampled on a thread: the figure issue 8's memory test and `make bench` report.

RSS summed over processes counts shared pages (Ray's object store, torch libraries) once per process that maps
them, so it overstates; PSS splits each shared page between its users and sums to what the tree really holds.
Both are reported.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil


@dataclass
class TreeMemory:
    """Peaks over the samples taken; bytes."""

    pid: int
    every_s: float = 0.25
    peak_rss: int = 0
    peak_pss: int = 0
    peak_processes: int = 0
    samples: int = 0
    # The processes at the RSS peak, biggest first: (RSS bytes, name), so a bound that fails says which one grew.
    peak_top: list[tuple[int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        rss = pss = 0
        seen: list[tuple[int, psutil.Process]] = []
        for proc in procs:
            try:
                info = proc.memory_full_info()  # smaps_rollup: PSS as well as RSS
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            rss += info.rss
            pss += getattr(info, "pss", info.rss)
            seen.append((info.rss, proc))
        if rss > self.peak_rss:
            self.peak_top = sorted(((r, _label(p)) for r, p in seen), key=lambda x: -x[0])
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.peak_processes = max(self.peak_processes, len(procs))
        self.samples += 1

    def __enter__(self) -> TreeMemory:
        def loop() -> None:
            while not self._stop.wait(self.every_s):
                self.sample()

        self._thread = threading.Thread(target=loop, name="curate-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def breakdown(self) -> str:
        """The processes at the RSS peak, one line each: MiB and name."""
        return "\n".join(f"{r / 2**20:8.0f} MiB  {name}" for r, name in self.peak_top)

    def as_dict(self) -> dict[str, float]:
        gib = 1024**3
        return {
            "peak_rss_gib": round(self.peak_rss / gib, 3),
            "peak_pss_gib": round(self.peak_pss / gib, 3),
            "peak_processes": self.peak_processes,
            "samples": self.samples,
        }


def _label(proc: psutil.Process) -> str:
    """A short name for a process: Ray's worker titles ("ray::MapWorker(...)") or the command line."""
    try:
        return " ".join(proc.cmdline())[:100] or proc.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "(gone)"

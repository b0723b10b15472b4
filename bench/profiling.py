"""Sampling profiles of the services while a benchmark runs (py-spy, attached by pid).

`with PySpy(target.pids(), label, stamp):` records every process of the target for the
duration of the block (only the thread holding the GIL, so the samples are where the CPU
goes, not where threads wait), writes the raw collapsed stacks to bench/results/ and prints the
functions with the most samples: self (the frame on top) and inclusive (anywhere on the
stack). Install py-spy with `.venv/bin/pip install py-spy`; without it this does nothing."""

import collections
import os
import shutil
import signal
import subprocess
import sys

from bench.common import RESULTS_DIR


def _py_spy():
    here = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return here if os.path.exists(here) else shutil.which("py-spy")


def summarize(path, top=15):
    """Top functions of a py-spy raw (collapsed) file: (total samples, self list,
    inclusive list), each list of (function, samples)."""
    own = collections.Counter()
    incl = collections.Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            own[frames[-1]] += n
            for frame in set(frames):
                incl[frame] += n
    return total, own.most_common(top), incl.most_common(top)


class PySpy:
    def __init__(self, pids, label, stamp, rate=100, enabled=True, gil_only=True):
        self.pids = pids
        self.gil_only = gil_only
        self.label = label
        self.stamp = stamp
        self.rate = rate
        self.enabled = enabled and bool(_py_spy())
        self.procs = {}
        self.summaries = {}
        if enabled and not self.enabled:
            print("    (py-spy not installed: no profile)")

    def __enter__(self):
        if not self.enabled:
            return self
        os.makedirs(RESULTS_DIR, exist_ok=True)
        for name, pid in self.pids.items():
            path = os.path.join(RESULTS_DIR, "%s-pyspy-%s-%s.txt" % (self.stamp, self.label,
                                                                    name))
            self.procs[name] = (path, subprocess.Popen(
                [_py_spy(), "record", "--pid", str(pid), "--rate", str(self.rate),
                 "--format", "raw", "--function", "--nonblocking", "-o", path]
                + (["--gil"] if self.gil_only else []),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return self

    def __exit__(self, *exc):
        for name, (path, proc) in self.procs.items():
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if not os.path.exists(path):
                print("    py-spy wrote no profile for %s" % name)
                continue
            total, own, incl = summarize(path)
            self.summaries[name] = {"file": path, "samples": total, "self": own,
                                    "inclusive": incl}
            print("    py-spy %s/%s: %d samples (%s)" % (self.label, name, total, path))
            for title, rows in (("self", own[:10]), ("inclusive", incl[:12])):
                print("      top %s:" % title)
                for frame, n in rows:
                    print("        %5.1f%%  %s" % (100.0 * n / max(total, 1), frame))
        return False

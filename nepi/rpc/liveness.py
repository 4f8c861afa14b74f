"""Is a daemon process still the one we started? pid + process start time (psutil)."""

import os
import signal
import time
from typing import Optional

import psutil


def process_start_time(pid: int) -> Optional[float]:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_alive_pid(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) process."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def is_same_process(pid: Optional[int], start_time: Optional[float]) -> bool:
    """True if ``pid`` runs and was started at ``start_time`` (not a recycled pid)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return start_time is None or abs(created - start_time) < 0.5


def _gone_within(pid, start_time, timeout: float) -> bool:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if not is_same_process(pid, start_time):
            return True
        # most processes told to go are gone within milliseconds: look often at first
        time.sleep(0.005 if time.monotonic() - start < 0.5 else 0.05)
    return False


def kill_process(pid: Optional[int], start_time: Optional[float], timeout: float = 5.0) -> bool:
    """SIGTERM then SIGKILL a process we started (verified by start time). True if gone."""
    if not is_same_process(pid, start_time):
        return True
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        if _gone_within(pid, start_time, timeout):
            return True
    return False


def wait_exit(pid: Optional[int], start_time: Optional[float], timeout: float = 15.0) -> bool:
    """Wait for a daemon told to shut down to be gone; kill it if it lingers."""
    return _gone_within(pid, start_time, timeout) or kill_process(pid, start_time)

"""Copying an experiment's traces into its root dir: nepi.rpc.traces (kept under this name
for its users)."""

from nepi.rpc.traces import TRACES_DIR, TraceCopy, copy_traces, trace_path

__all__ = ["TRACES_DIR", "TraceCopy", "copy_traces", "trace_path"]

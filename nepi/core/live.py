"""Reaching into a live experiment (a mixin of the ExperimentController): find an element
by label or guid, and run commands in a node through the testbed that owns it (``nepid
exec`` / ``nepid shell``; the same calls work on a remote proxy of nepid)."""

import base64
import time
from typing import List, Optional


class LiveAccess:
    """Uses the controller's ``_data``/``_design_data``, ``_guid_testbed``, ``_testbeds``
    and ``_testbed_id``."""

    def find_element(self, name) -> int:
        """The guid of the element labelled ``name`` (or whose guid it is)."""
        data = self._data or self._design_data
        text = str(name)
        for guid in data.box_guids():
            if data.get_attribute_data(guid, "label") == text:
                return guid
        if text.isdigit() and int(text) in data.box_guids():
            return int(text)
        raise ValueError("no element is labelled %r%s" % (
            text, "" if not text.isdigit() else " or has guid %s" % text))

    def _node_testbed(self, name) -> tuple:
        guid = self.find_element(name)
        testbed_guid = self._guid_testbed.get(guid)
        testbed = self._testbeds.get(testbed_guid)
        if testbed is None:
            raise RuntimeError("element %s belongs to testbed %s, which is not running"
                               % (name, testbed_guid))
        return guid, testbed_guid, testbed

    def exec_start(self, node, argv: List[str], pty: bool = False, rows: int = 24,
                   cols: int = 80) -> dict:
        """Run ``argv`` in node ``node`` (label or guid): a handle for the other exec
        calls, ``{"testbed": guid, "session": n, "node": guid}``."""
        guid, testbed_guid, testbed = self._node_testbed(node)
        session = testbed.exec_start(guid, list(argv), pty, rows, cols)
        return {"testbed": testbed_guid, "session": session, "node": guid}

    def _exec_testbed(self, handle: dict):
        testbed = self._testbeds.get(int(handle["testbed"]))
        if testbed is None:
            raise RuntimeError("testbed %s is no longer running" % handle["testbed"])
        return testbed

    def exec_read(self, handle: dict, wait: float = 0.5) -> dict:
        return self._exec_testbed(handle).exec_read(handle["session"], wait)

    def exec_write(self, handle: dict, data: str) -> None:
        self._exec_testbed(handle).exec_write(handle["session"], data)

    def exec_resize(self, handle: dict, rows: int, cols: int) -> None:
        self._exec_testbed(handle).exec_resize(handle["session"], rows, cols)

    def run_in_node(self, node, argv: List[str], stdin: str = "",
                    timeout: float = 60.0) -> dict:
        """Run ``argv`` in ``node`` to its end: ``{"exit", "stdout", "stderr"}`` (text;
        exit None if it was still running after ``timeout`` seconds and was killed)."""
        handle = self.exec_start(node, argv)
        out = {"stdout": b"", "stderr": b""}
        exit_status = None
        try:
            if stdin:
                self.exec_write(handle, base64.b64encode(stdin.encode()).decode("ascii"))
            self.exec_write(handle, "")                 # end of its input
            deadline = time.monotonic() + timeout
            while True:
                chunk = self.exec_read(handle, max(0.0, min(1.0, deadline -
                                                            time.monotonic())))
                for name in out:
                    out[name] += base64.b64decode(chunk.get(name) or "")
                exit_status = chunk.get("exit")
                if exit_status is not None or time.monotonic() >= deadline:
                    break
        finally:
            if exit_status is None:                     # still running: end it
                self.exec_close(handle)
        return {"exit": exit_status, "stdout": out["stdout"].decode(errors="replace"),
                "stderr": out["stderr"].decode(errors="replace")}

    def exec_close(self, handle: dict) -> None:
        testbed: Optional[object] = self._testbeds.get(int(handle["testbed"]))
        if testbed is not None:
            testbed.exec_close(handle["session"])

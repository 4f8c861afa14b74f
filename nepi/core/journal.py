"""The event journal of an experiment root dir: ``ROOT/journal.jsonl``.

One JSON object per line and event, appended as events happen, each line written with a
single ``write`` on an ``O_APPEND`` descriptor and ``fsync``'d before ``append`` returns:
a controller killed -9 keeps every line it wrote, and a reader never sees two events
mixed. The file is 0600 (messages may name hosts, commands, attribute values).

Every line has exactly these keys (the format is fixed: timelines are drawn from it)::

    {"time": <float epoch seconds>, "event": <str>, "state": <str or null>,
     "testbed": <int or null>, "guid": <int or null>, "phase": <str or null>,
     "message": <str>}

``event`` is one of:

experiment   state deploying, started, failed (message: the error), stopping, stopped,
             shutting_down, shutdown, recovered
phase        a deployment phase (phase: create_controller, program, do_setup, ...,
             start, shutdown) of one testbed; state running, done or failed
application  state started or finished (guid: the application, testbed: its testbed)
set          a runtime ``set``: guid, testbed, message "NAME=VALUE" (value cut short)
daemon       state lost, restarted, reconnected or recovered; testbed (null: nepid
             itself), message: why
policy       state Fail, Recover or Restart: a testbed's recovery policy applied;
             message: what was done
"""

import json
import logging
import os
import threading
import time
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from nepi.util.constants import ApplicationStatus as AS
from nepi.util.rootfiles import JOURNAL

EVENTS = ("experiment", "phase", "application", "set", "daemon", "policy")
KEYS = ("time", "event", "state", "testbed", "guid", "phase", "message")
VALUE_CHARS = 80          # a set value is cut to this many characters


def journal_path(root_or_path: str) -> str:
    """The journal of a root dir (a path naming the file itself is kept)."""
    if os.path.isdir(root_or_path):
        return os.path.join(root_or_path, JOURNAL)
    return root_or_path


def _int_or_none(value) -> Optional[int]:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def make_event(event: str, state: Optional[str] = None, testbed=None, guid=None,
               phase: Optional[str] = None, message="", when: Optional[float] = None) -> dict:
    """One journal entry, with exactly the journal's keys and types."""
    return {"time": float(time.time() if when is None else when), "event": str(event),
            "state": None if state is None else str(state),
            "testbed": _int_or_none(testbed), "guid": _int_or_none(guid),
            "phase": None if phase is None else str(phase),
            "message": "" if message is None else str(message)}


def set_message(name: str, value) -> str:
    """``NAME=VALUE`` for a runtime set, the value cut to about VALUE_CHARS."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", "\\n")
    if len(text) > VALUE_CHARS:
        text = text[:VALUE_CHARS - 3] + "..."
    return "%s=%s" % (name, text)


def _line(entry: dict) -> bytes:
    return (json.dumps(entry, ensure_ascii=True, separators=(", ", ": ")) + "\n") \
        .encode("ascii")


class Journal:
    """Appends events to ``ROOT/journal.jsonl`` (thread-safe; durable once appended)."""

    def __init__(self, root_dir: str) -> None:
        self.root_dir = root_dir
        self.path = os.path.join(root_dir, JOURNAL)
        self._lock = threading.Lock()

    def append(self, event: str, state: Optional[str] = None, testbed=None, guid=None,
               phase: Optional[str] = None, message="") -> dict:
        """Append one event; returns the entry written."""
        entry = make_event(event, state, testbed, guid, phase, message)
        self._write([entry])
        return entry

    def append_many(self, entries: Iterable[dict]) -> None:
        """Append several entries (``make_event`` dicts) with one write and one fsync."""
        entries = list(entries)
        if entries:
            self._write(entries)

    def _write(self, entries: List[dict]) -> None:
        data = b"".join(_line(e) for e in entries)
        with self._lock:
            created = not os.path.exists(self.path)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
            try:
                view = memoryview(data)
                while view:                 # one write; a short one is finished off
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:                     # the new directory entry survives a crash too
                _fsync_dir(self.root_dir)

    @staticmethod
    def read(path: str, since_offset: int = 0) -> Tuple[List[dict], int]:
        """See the module's ``read``."""
        return read(path, since_offset)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read(path: str, since_offset: int = 0) -> Tuple[List[dict], int]:
    """The events of the journal ``path`` (a file or a root dir) from byte
    ``since_offset``, and the offset to read from next. A last line not yet complete
    (no newline) is left for the next read; a line that is not a JSON object is skipped.
    A journal that does not exist (yet) has no events."""
    path = journal_path(path)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if since_offset > size:          # the file was replaced: read it again
                since_offset = 0
            f.seek(since_offset)
            data = f.read()
    except FileNotFoundError:
        return [], since_offset
    end = data.rfind(b"\n")
    if end < 0:
        return [], since_offset
    events = []
    for raw in data[:end].split(b"\n"):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw.decode("utf-8", errors="replace"))
        except ValueError:
            continue
        if isinstance(entry, dict) and "event" in entry:
            events.append(entry)
    return events, since_offset + end + 1


# -- the experiment controller's side (a mixin of nepi.core.execute) ----------------------

_logger = logging.getLogger("nepi.core.execute")

# the controller's progress events (``_event``) of the experiment as a whole
_EXPERIMENT_EVENTS = {("deploy", "done"): "started", ("deploy", "failed"): "failed"}
# its "recover" progress events of one testbed's daemon
_DAEMON_EVENTS = {"lost": "lost", "reconnected": "reconnected", "redeployed": "restarted"}


class JournalEvents:
    """What the ExperimentController journals (``_journal``, ``_journal_progress``) and
    its view of the applications: started when their testbed's start phase is done,
    finished when the liveness watcher (``_poll_applications``, each second, at most
    APP_POLL_BATCH status queries per testbed) or a status query notices. Uses the
    controller's ``_root_dir``, ``_data``, ``_testbeds``, ``_failed_testbeds``."""

    APP_POLL_BATCH = 50

    def _journal_init(self) -> None:
        self._journal_file = Journal(self._root_dir)
        self._app_lock = threading.Lock()
        self._apps_of: Optional[tuple] = None          # (data, testbed -> apps)
        self._app_state: Dict[int, str] = {}          # app guid -> started | finished
        self._app_cursor: Dict[int, int] = {}         # testbed guid -> next app to poll

    def _journal(self, event: str, state: Optional[str] = None, testbed=None, guid=None,
                 phase: Optional[str] = None, message="") -> None:
        """Append to the journal; a journal that cannot be written is logged, never
        fatal to the experiment."""
        self._journal_entries([make_event(event, state, testbed, guid, phase, message)])

    def _journal_entries(self, entries: List[dict]) -> None:
        try:
            self._journal_file.append_many(entries)
        except Exception as e:
            _logger.error("cannot write the journal %s: %s", self._journal_file.path, e)

    def _journal_progress(self, event: dict) -> None:
        """The journal line of a progress event (``_event``)."""
        phase, testbed, state = event.get("phase"), event.get("testbed"), event.get("state")
        message = event.get("message") or ""
        if phase == "deploy" and testbed is None:
            if (phase, state) in _EXPERIMENT_EVENTS:
                self._journal("experiment", _EXPERIMENT_EVENTS[(phase, state)],
                              message=message if state == "failed" else "")
        elif phase == "recover":
            if testbed is None:
                self._journal("daemon", "lost" if state == "running" else "recovered",
                              message=message)
            elif state in _DAEMON_EVENTS:
                self._journal("daemon", _DAEMON_EVENTS[state], testbed,
                              message=message or {"reconnected": "nepid reconnected to "
                                                  "its daemon"}.get(state, ""))
        elif phase == "application":
            self._journal("application", state, testbed, event.get("guid"), message=message)
        else:
            self._journal("phase", state, testbed, phase=phase, message=message)
        if phase == "start" and state == "done" and testbed is not None:
            self._applications_started(testbed)

    def _phase_running(self, phase: str, testbed_guids: List[int]) -> None:
        """``phase`` begins on these testbeds: journaled with one write."""
        self._journal_entries([make_event("phase", "running", g, phase=phase)
                               for g in testbed_guids])
        for g in testbed_guids:
            self._event(phase, g, "running", journal=False)

    # -- applications ----------------------------------------------------------------------

    def _applications(self) -> Dict[int, List[int]]:
        """testbed guid -> its application elements: those whose factory reports a
        status (as the testbed's metadata says; no testbed is asked)."""
        data = self._data
        if data is None:
            return {}
        cached = self._apps_of
        if cached is not None and cached[0] is data:
            return cached[1]
        from nepi.core.metadata import Metadata
        apps: Dict[int, List[int]] = {}
        for g in data.testbed_guids():
            try:
                factories = Metadata(data.get_testbed_data(g)[0]).info.factories_info
            except Exception as e:
                _logger.debug("testbed %d: no metadata for its applications: %s", g, e)
                continue
            found = [guid for guid in data.box_guids(g)
                     if (factories.get(data.get_box_data(guid)[1]) or {}).get(
                         "status_function") is not None]
            if found:
                apps[g] = found
        self._apps_of = (data, apps)
        return apps

    def _is_application(self, guid: int) -> bool:
        testbed_guid = self._guid_testbed.get(guid)
        return guid in self._applications().get(testbed_guid, ())

    def _app_event(self, testbed_guid: int, guids: List[int], state: str,
                   message: str = "") -> None:
        """Journal (one write) and report ``state`` for applications ``guids``."""
        if not guids:
            return
        self._journal_entries([make_event("application", state, testbed_guid, guid,
                                          message=message) for guid in guids])
        for guid in guids:
            self._event("application", testbed_guid, state, message, guid=guid,
                        journal=False)

    def _applications_started(self, testbed_guid: int) -> None:
        guids = self._applications().get(testbed_guid, [])
        with self._app_lock:
            for guid in guids:
                self._app_state[guid] = "started"
        self._app_event(testbed_guid, guids, "started")

    def _application_started(self, guid: int) -> None:
        """An application started (again) by an action."""
        if not self._is_application(guid):
            return
        with self._app_lock:
            self._app_state[guid] = "started"
        self._app_event(self._guid_testbed[guid], [guid], "started")

    def _application_status(self, guid: int, status) -> None:
        """A status query answered ``status`` for ``guid``: journal a finish noticed."""
        if status != AS.STATUS_FINISHED or self._app_state.get(guid) != "started":
            return
        self._applications_finished([guid])

    def _applications_finished(self, guids: List[int], message: str = "") -> None:
        by_testbed: Dict[int, List[int]] = {}
        with self._app_lock:
            for guid in guids:
                if self._app_state.get(guid) == "started":
                    self._app_state[guid] = "finished"
                    by_testbed.setdefault(self._guid_testbed.get(guid), []).append(guid)
        for testbed_guid, finished in sorted(by_testbed.items(),
                                             key=lambda item: item[0] or 0):
            self._app_event(testbed_guid, finished, "finished", message)

    def running_applications(self) -> List[int]:
        """Applications started and not yet seen finished."""
        with self._app_lock:
            return sorted(g for g, s in self._app_state.items() if s == "started")

    def _poll_applications(self, stopping: Optional[Callable[[], bool]] = None) -> None:
        """Ask each testbed about its running applications (at most APP_POLL_BATCH each,
        in turn) and journal those that finished. Called by the liveness watcher (each
        second, ``stopping()`` true once it is stopped: nothing more is journaled)."""
        if self._state not in ("started", "stopped"):
            return
        stopping = stopping or (lambda: False)
        finished = []
        for g, apps in sorted(self._applications().items()):
            testbed = self._testbeds.get(g)
            if testbed is None or g in self._failed_testbeds or stopping():
                continue
            with self._app_lock:
                pending = [a for a in apps if self._app_state.get(a) == "started"]
            if not pending:
                continue
            start = self._app_cursor.get(g, 0) % len(pending)
            batch = (pending[start:] + pending[:start])[:self.APP_POLL_BATCH]
            self._app_cursor[g] = start + len(batch)
            for guid in batch:
                try:
                    status = testbed.status(guid)
                except Exception as e:     # its daemon may be dying: the watcher sees it
                    _logger.debug("testbed %d: status of application %d: %s", g, guid, e)
                    break
                if status == AS.STATUS_FINISHED:
                    finished.append(guid)
        if finished and not stopping():
            self._applications_finished(finished)

    def _restore_applications(self) -> None:
        """After a recovery: each application as the journal last saw it (one never
        journaled counts as started: the watcher tells whether it finished)."""
        last: Dict[int, str] = {}
        try:
            events, _ = read(self._journal_file.path)
        except OSError as e:
            _logger.warning("cannot read the journal %s: %s", self._journal_file.path, e)
            events = []
        for event in events:
            if event.get("event") == "application" and isinstance(event.get("guid"), int):
                last[event["guid"]] = event.get("state")
        with self._app_lock:
            self._app_state.clear()
            for g, apps in self._applications().items():
                if g in self._testbeds:
                    for guid in apps:
                        self._app_state[guid] = "finished" if last.get(guid) == "finished" \
                            else "started"

    def _applications_ended(self, message: str) -> None:
        """The experiment stops or shuts down: applications still seen running end."""
        self._applications_finished(self.running_applications(), message)

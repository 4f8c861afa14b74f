"""linux TestbedController: every Node is a Linux host reached over OpenSSH; Applications
and Dependencies follow NEPI 2 PlanetLab (sources copied, built and installed on the
host, Debian packages installed, stdin fed, stdout/stderr/buildlog traces fetched back).

All hosts are driven at once (a thread per host, each SSH call bounded by the
``timeout`` attribute). Everything an experiment makes on a host lies in
``~/nepi-<token>``, and every host is recorded in the testbed root dir before it is
touched, so that shutdown, a failed deployment, ``nepid clean`` and a new controller
(recover) all find it again. A host that stops answering while the experiment runs is
reported by name: status queries on it raise, and the testbed's status becomes FAILED.
"""

import os
import threading
import time
from typing import Dict, List, Optional, Tuple

from nepi.core import exec_sessions, testbed_impl
from nepi.errors import DeploymentError
from nepi.testbeds.linux import remote, transfer
from nepi.testbeds.linux.constants import TESTBED_ID, TESTBED_VERSION
from nepi.testbeds.linux.hosts import (Host, Record, cleanup, each_host, failure_message,
                                       new_token, teardown, valid_token)
from nepi.testbeds.linux.liveness import HostProbe
from nepi.testbeds.linux.metadata import APPLICATION, BUILDERS, NODE
from nepi.testbeds.linux.ssh import (CommandFailed, HostSpec, Ssh, make_control_dir,
                                     usable_control_dir)
from nepi.util.constants import TIME_NOW
from nepi.util.constants import ApplicationStatus as AS
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import TestbedStatus as TS

__all__ = ["TestbedController", "cleanup"]

STATUS_TTL = 0.2        # seconds one STATUS answer serves every application of a host
_STATES = {"running": AS.STATUS_RUNNING, "finished": AS.STATUS_FINISHED,
           "dead": AS.STATUS_FINISHED, "notstarted": AS.STATUS_NOT_STARTED}


class TestbedController(testbed_impl.TestbedController):
    def __init__(self) -> None:
        super().__init__(TESTBED_ID, TESTBED_VERSION)
        self._token: Optional[str] = None
        self._record: Optional[Record] = None
        self._control_dir: Optional[str] = None
        self._hosts: Dict[int, Host] = {}                 # node guid -> host
        self._started_apps: Dict[int, Tuple] = {}         # guid -> (pid, start time)
        self._lost: Dict[int, str] = {}                   # node guid -> why
        self._finished: set = set()           # applications seen finished: nothing changes
        self._final: set = set()              # (guid, trace) fetched after it finished
        self._states: Dict[int, Tuple[float, Dict[int, str]]] = {}
        self._probe: Optional[HostProbe] = None
        self._lock = threading.RLock()

    # -- settings and lookups -----------------------------------------------------------

    @property
    def token(self) -> str:
        if self._token is None:
            raise RuntimeError("linux testbed used before do_setup")
        return self._token

    def _timeout(self) -> float:
        return float(self._testbed_attribute("timeout"))

    def _build_timeout(self) -> float:
        return float(self._testbed_attribute("buildTimeout"))

    def _sudo(self, guid: int) -> bool:
        return bool(self._testbed_attribute(DC.USE_SUDO) or self.get(guid, "sudo"))

    def _guids_of(self, *factories: str) -> List[int]:
        return sorted(g for g, f in self._create.items() if f in factories)

    def _describe(self, guid: int) -> str:
        return "element %d (%s)" % (guid, self._create.get(guid))

    def node_of(self, guid: int) -> int:
        nodes = self.get_connected(guid, "node", "apps") or \
            self.get_connected(guid, "node", "deps")
        if not nodes:
            raise DeploymentError("linux: %s is not connected to a Node"
                                  % self._describe(guid), guid=guid)
        return nodes[0]

    def _host_of(self, guid: int) -> Host:
        node = self.node_of(guid)
        host = self._hosts.get(node)
        if host is None:
            raise DeploymentError("linux: the host of %s was never reached"
                                  % self._describe(guid), guid=guid)
        if node in self._lost:
            raise DeploymentError("linux: %s" % self._lost[node], guid=guid)
        return host

    def _elements_on(self, node: int) -> List[int]:
        """Dependencies first, then applications: the order they are built in."""
        return sorted(self.get_connected(node, "deps", "node")) + \
            sorted(self.get_connected(node, "apps", "node"))

    def create_element(self, guid: int) -> None:
        """Per-element create function: elements are made host by host, in phases."""
        self.elements[guid] = self._create[guid]

    # -- the record in the root dir -----------------------------------------------------

    def _save_record(self) -> None:
        self._record.save(self.token, self._control_dir, self._timeout(),
                          self._hosts.values())

    # -- phases -------------------------------------------------------------------------

    def do_setup(self) -> None:
        """The token and SSH socket directory of this testbed instance, kept in the root
        dir's record (an existing one is kept: recover() re-attaches with it)."""
        super().do_setup()
        os.makedirs(self.root_directory, exist_ok=True)
        self._record = Record(self.root_directory)
        data = self._record.load()
        self._token = data["token"] if valid_token(data.get("token")) else new_token()
        if self._testbed_attribute("sshMultiplexing"):
            recorded = data.get("control_dir")
            self._control_dir = recorded if usable_control_dir(recorded) \
                else make_control_dir()
        if not data:
            self._save_record()
        elif data.get("token") != self._token or data.get("control_dir") != self._control_dir:
            self._record.update(token=self._token, control_dir=self._control_dir)

    def do_create(self) -> None:
        """Check every host and element, record the hosts, then log in to all of them at
        once and make each one's experiment folder. If any host fails, the folders made
        on the others are removed before this raises."""
        super().do_create()
        specs = self._plan()
        if self._record.load().get("hosts"):
            self._logger.warning("linux: removing what an earlier run in %s left on its "
                                 "hosts", self.root_directory)
            cleanup(self.root_directory)
            if self._control_dir and not usable_control_dir(self._control_dir):
                self._control_dir = make_control_dir()      # that cleanup removed it
        hosts = {node: Host(node, spec, Ssh(spec, self._record.known_hosts, self._control_dir,
                                            self._timeout()), self.token, sudo=sudo)
                 for node, (spec, sudo) in specs.items()}
        self._hosts = hosts
        self._save_record()                      # before any host is touched
        _, errors = each_host(hosts.values(), Host.connect)
        if errors:
            reached = [h for n, h in hosts.items() if n not in errors]
            self._hosts = {h.node: h for h in reached}
            self._save_record()
            left = teardown(self._record, reached, self._control_dir)
            self._hosts = {}
            message = failure_message("logging in", errors, hosts)
            if left:
                message += "; and removing the experiment again failed: " + \
                    failure_message("cleaning up", left, hosts)
            raise DeploymentError(message, guid=min(errors), phase="create")
        self._save_record()

    def _plan(self) -> Dict[int, Tuple[HostSpec, bool]]:
        """Every node's SSH target and whether cleaning up there needs root, checked with
        every element before anything is touched: all problems reported at once, each
        naming its element and attribute."""
        problems = []
        for guid in self._guids_of(*BUILDERS):
            try:
                self.node_of(guid)
            except DeploymentError as e:
                problems.append(str(e).replace("linux: ", ""))
            paths = transfer.parse_sources(self.get(guid, "sources"))
            problems += ["%s, attribute 'sources': %s" % (self._describe(guid), p)
                         for p in transfer.source_problems(paths)]
        for guid in self._guids_of(APPLICATION):
            if not self.get(guid, "command"):
                problems.append("%s, attribute 'command': not set" % self._describe(guid))
        specs = {}
        for node in self._guids_of(NODE):
            hostname = self.get(node, "hostname")
            if not hostname:
                problems.append("%s, attribute 'hostname': not set (the host to reach over "
                                "SSH)" % self._describe(node))
                continue
            spec = HostSpec(hostname, self.get(node, "sshUser")
                            or self._testbed_attribute("sshUser"),
                            self.get(node, "sshPort") or self._testbed_attribute("sshPort"),
                            self._testbed_attribute("sshKey") or None,
                            self._testbed_attribute("sshKnownHosts") or None)
            found = spec.problems()
            problems += ["%s: %s" % (self._describe(node), p) for p in found]
            specs[node] = (spec, any(self._sudo(g) for g in self._elements_on(node)))
        if problems:
            raise DeploymentError("linux: cannot deploy:\n  - " + "\n  - ".join(problems),
                                  phase="create")
        return specs

    def do_prestart(self) -> None:
        """On every host at once: Debian packages, then each dependency and application
        staged (sources, stdin), built and installed."""
        super().do_prestart()
        _, errors = each_host(self._hosts.values(), self._provision)
        if errors:
            raise DeploymentError(failure_message("preparing the applications", errors,
                                                  self._hosts), phase="prestart")

    def _provision(self, host: Host) -> None:
        elements = self._elements_on(host.node)
        packages = sorted({p for g in elements for p in (self.get(g, "depends") or "").split()})
        if packages:
            try:
                host.run(remote.DEPENDS, *packages, timeout=self._build_timeout())
            except CommandFailed as e:
                lines = e.stderr.splitlines()
                missing = [line[len("missing: "):] for line in lines
                           if line.startswith("missing: ")]
                why = "; ".join(line for line in lines if not line.startswith("missing: "))
                raise RuntimeError("Debian package(s) %s not installed, and installing them "
                                   "failed: %s" % (missing[0] if missing else " ".join(packages),
                                                   why or e)) from None
        for guid in elements:
            self._stage(host, guid)
            self._build(host, guid)

    def _stage(self, host: Host, guid: int) -> None:
        stdin = self.get(guid, "stdin") if self._create[guid] == APPLICATION else None
        command = host.command(remote.STAGE, host.element_folder(guid), sudo=self._sudo(guid))
        try:
            transfer.upload(host.ssh, command,
                            transfer.parse_sources(self.get(guid, "sources")), stdin,
                            self._build_timeout())
        except CommandFailed as e:
            raise RuntimeError("copying the sources of %s failed: %s"
                               % (self._describe(guid), e)) from None

    def _build(self, host: Host, guid: int) -> None:
        build, install = self.get(guid, "build") or "", self.get(guid, "install") or ""
        if not (build or install):
            return
        try:
            host.run(remote.BUILD, host.element_folder(guid), host.folder, build, install,
                     sudo=self._sudo(guid), timeout=self._build_timeout())
        except CommandFailed as e:
            self._fetch(host, [(guid, "buildlog")], quiet=True)
            raise RuntimeError("%s of %s failed: %s" % (
                "install" if e.status == remote.INSTALL_FAILED else "build",
                self._describe(guid), e.stderr)) from None

    def start(self, time: str = TIME_NOW) -> None:
        if self._status == TS.STATUS_STARTED:
            return
        super().start(time)
        self._start_probe()

    def stop(self, time: str = TIME_NOW) -> None:
        """Stop the applications, then fetch the traces (a host lost is skipped)."""
        try:
            super().stop(time)
        finally:
            self._fetch_all()

    def _exec_process(self, guid: int, argv, pty: bool, rows: int, cols: int):
        """On the node's host over its SSH connection, in the experiment's folder."""
        if self._create.get(guid) != NODE:
            raise ValueError("element %d is a %s: commands run in a Node"
                             % (guid, self._create.get(guid, "unknown element")))
        host = self._hosts.get(guid)
        if host is None or guid in self._lost:
            raise RuntimeError("node %d's host is not reachable (%s)"
                               % (guid, self._lost.get(guid, "not deployed")))
        command = remote.command_line(remote.EXEC, host.folder_name, *argv)
        return exec_sessions.spawn(host.ssh.argv(command, tty=pty), pty, rows, cols)

    def shutdown(self) -> None:
        """Fetch the traces, then on every host kill what the experiment runs (by pid
        file and start time, and by its token) and remove ``~/nepi-<token>``."""
        self._stop_probe()
        self._exec.close_all()
        if self._record is None:
            return
        # the record says what is left (nothing if a cleanup by record ran meanwhile)
        hosts = self._record.hosts(control_dir=self._control_dir)
        if hosts:
            self._fetch_all()
        errors = teardown(self._record, hosts, self._control_dir, self._lost)
        self._hosts.clear()
        self._started_apps.clear()
        self._states.clear()
        self.elements.clear()
        if errors:
            raise DeploymentError(failure_message("shutting down", errors,
                                                  {h.node: h for h in hosts})
                                  + " (what is left there is recorded in %s; `nepid clean` "
                                  "tries again)" % self._record.path)

    def recover(self) -> None:
        """Re-attach to a deployment a lost controller left: log in to every recorded
        host again and re-read the pid files (nothing is restarted)."""
        data = self._record.load()
        if data.get("token") != self._token or not data.get("hosts"):
            raise DeploymentError("linux: nothing to recover in %s (no recorded hosts)"
                                  % self.root_directory)
        hosts = {h.node: h for h in self._record.hosts(data, control_dir=self._control_dir)}
        missing = [n for n in self._guids_of(NODE) if n not in hosts]
        if missing:
            raise DeploymentError("linux: cannot recover: nodes %s are not in %s"
                                  % (", ".join(map(str, missing)), self._record.path))
        _, errors = each_host(hosts.values(), Host.reattach)
        if errors:
            raise DeploymentError(failure_message("re-attaching", errors, hosts))
        self._hosts = hosts
        self._save_record()
        for guid, factory in self._create.items():
            self.elements[guid] = factory
        apps = self._guids_of(APPLICATION)
        for node, host in hosts.items():
            mine = [g for g in apps if self.node_of(g) == node]
            for guid, line in self._query_states(host, mine).items():
                words = line.split()
                if words and words[0] in ("running", "dead"):
                    self._started_apps[guid] = (int(words[1]), words[2])
                elif words and words[0] == "finished":
                    self._started_apps[guid] = (None, None)
        self._started = True
        self._status = TS.STATUS_STARTED
        self._start_probe()

    # -- applications ---------------------------------------------------------------------

    def start_application(self, guid: int) -> None:
        host = self._host_of(guid)
        try:
            out = host.run(remote.START, host.element_folder(guid), self.get(guid, "command"),
                           host.folder, remote.app_tag(self.token, guid), remote.WRAPPER,
                           sudo=self._sudo(guid))
            pid, start = out.split()[:2]
        except Exception as e:
            raise DeploymentError("linux: %s: starting %s failed: %s"
                                  % (host, self._describe(guid), e), guid=guid) from None
        with self._lock:
            self._started_apps[guid] = (int(pid), start)
            self._states.pop(host.node, None)
            self._finished.discard(guid)                    # started again
            self._final = {item for item in self._final if item[0] != guid}

    def stop_application(self, guid: int) -> None:
        if guid not in self._started_apps or guid in self._finished:
            return
        host = self._host_of(guid)
        try:
            host.run(remote.STOP, *remote.stop_args(
                [(host.element_folder(guid), remote.app_tag(self.token, guid))]),
                sudo=self._sudo(guid), timeout=self._timeout() + remote.STOP_GRACE + 2)
        except Exception as e:
            raise DeploymentError("linux: %s: stopping %s failed: %s"
                                  % (host, self._describe(guid), e), guid=guid) from None
        with self._lock:
            self._states.pop(host.node, None)

    def application_status(self, guid: int) -> int:
        if guid not in self._started_apps:
            return AS.STATUS_NOT_STARTED
        host = self._host_of(guid)
        if guid in self._finished:
            return AS.STATUS_FINISHED
        line = self._host_states(host).get(guid, "")
        state = line.split()[0] if line else "missing"
        if state not in _STATES:
            raise DeploymentError("linux: %s: the folder of %s is gone"
                                  % (host, self._describe(guid)), guid=guid)
        if _STATES[state] == AS.STATUS_FINISHED:
            with self._lock:
                self._finished.add(guid)
        return _STATES[state]

    def _host_states(self, host: Host) -> Dict[int, str]:
        """The STATUS line of every started application of ``host``, one SSH call per
        STATUS_TTL however many applications are asked about."""
        with self._lock:
            cached = self._states.get(host.node)
            if cached and time.monotonic() - cached[0] < STATUS_TTL:
                return cached[1]
            # a loop over applications asks each host in turn: answer all hosts now
            stale = {h.node: [g for g in self._started_apps if self.node_of(g) == h.node
                              and g not in self._finished]
                     for h in self._hosts.values() if h.node not in self._lost
                     and h.node != host.node and not self._fresh(h.node)}
            stale[host.node] = [g for g in self._started_apps
                                if self.node_of(g) == host.node]
        answers, errors = each_host([self._hosts[n] for n in stale if stale[n]],
                                    lambda h: self._query_states(h, stale[h.node]))
        if host.node in errors:
            raise DeploymentError("linux: %s does not answer: %s"
                                  % (host, errors[host.node])) from None
        now = time.monotonic()
        with self._lock:
            for node, states in answers.items():
                self._states[node] = (now, states)
        return answers.get(host.node, {})

    def _fresh(self, node: int) -> bool:
        cached = self._states.get(node)
        return bool(cached) and time.monotonic() - cached[0] < STATUS_TTL

    def _query_states(self, host: Host, guids: List[int]) -> Dict[int, str]:
        if not guids:
            return {}
        out = host.run(remote.STATUS, *[host.element_folder(g) for g in guids],
                       sudo=host.sudo)
        return dict(zip(guids, out.splitlines()))

    def action(self, time: str, guid: int, action: str) -> None:
        """Applications can be started (again) and stopped while the experiment runs."""
        self.application_action(guid, action, (APPLICATION,))

    # -- liveness -------------------------------------------------------------------------

    def _start_probe(self) -> None:
        if self._probe is not None or not self._hosts:
            return
        record_path, token = self._record.path, self._token

        def ours() -> bool:       # someone else's shutdown removed the record: stop
            return self._record.load().get("token") == token and os.path.exists(record_path)
        self._probe = HostProbe(list(self._hosts.values()), self._host_lost, ours,
                                self._timeout())
        self._probe.start()

    def _stop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.stop()

    def failure(self) -> Optional[str]:
        if not self._lost:
            return None
        return "; ".join(why for _, why in sorted(self._lost.items()))

    def _host_lost(self, node: int, why: str) -> None:
        with self._lock:
            self._lost[node] = why
            self._status = TS.STATUS_FAILED

    # -- traces ---------------------------------------------------------------------------

    def trace_filename(self, guid: int, trace_id: str) -> str:
        return "%d-%s.trace" % (guid, trace_id)

    def trace_filepath(self, guid: int, trace_id: str) -> str:
        return os.path.join(self.root_directory, self.trace_filename(guid, trace_id))

    def trace(self, guid: int, trace_id: str, attribute: str = "value"):
        """The trace as fetched from its host now (or, if the host cannot be reached, as
        last fetched); '' for one the element has not written."""
        factory = self._factory_of(guid)
        if trace_id not in factory.traces_list:
            raise ValueError("%s has no trace %r (it has %s)" % (
                self._describe(guid), trace_id, ", ".join(factory.traces_list) or "none"))
        if attribute in ("value", "base64", "path") and guid in self._guids_of(*BUILDERS) \
                and (guid, trace_id) not in self._final:       # else the copy is final
            node = self.node_of(guid)
            if node in self._hosts and node not in self._lost:
                self._fetch(self._hosts[node], [(guid, trace_id)],
                            quiet=os.path.exists(self.trace_filepath(guid, trace_id)))
        if attribute in ("value", "base64") and \
                not os.path.exists(self.trace_filepath(guid, trace_id)):
            return ""
        return super().trace(guid, trace_id, attribute)

    def traces_info(self) -> Dict[int, Dict[str, dict]]:
        """Every enabled trace, fetched first (in one go per host)."""
        self._fetch_all()
        host = self._testbed_attribute(DC.DEPLOYMENT_HOST)
        user = self._testbed_attribute(DC.DEPLOYMENT_USER)
        return {guid: {trace_id: {"host": host, "user": user,
                                  "filepath": self.trace_filepath(guid, trace_id)}
                       for trace_id in traces}
                for guid, traces in self._add_trace.items()}

    def _fetch(self, host: Host, items: List[Tuple[int, str]], quiet: bool = False) -> None:
        """Copy traces (guid, trace id) of ``host`` into the root dir; with ``quiet`` a
        failure is logged (the last copy stays), else raised naming the host."""
        wanted = {"app-%d/%s" % (g, t): self.trace_filepath(g, t) for g, t in items}
        final = {(g, t) for g, t in items if g in self._finished}    # known before fetching
        command = host.command(remote.FETCH, host.folder, *wanted, sudo=host.sudo)
        try:
            transfer.fetch(host.ssh, command, wanted, self._timeout())
            with self._lock:
                self._final |= final
        except Exception as e:
            if not quiet:
                raise DeploymentError("linux: %s: fetching traces failed: %s"
                                      % (host, e)) from None
            self._logger.warning("linux: %s: fetching traces failed (the last copies "
                                 "stay): %s", host, e)

    def _fetch_all(self) -> None:
        """Every enabled trace of every host still answering, hosts at once."""
        by_node: Dict[int, List[Tuple[int, str]]] = {}
        for guid, traces in self._add_trace.items():
            if guid in self._create and self._create[guid] in BUILDERS:
                node = self.node_of(guid)
                if node in self._hosts and node not in self._lost:
                    by_node.setdefault(node, []).extend(
                        (guid, t) for t in traces if (guid, t) not in self._final)
        by_node = {node: items for node, items in by_node.items() if items}
        each_host([self._hosts[n] for n in by_node],
                  lambda host: self._fetch(host, by_node[host.node], quiet=True))

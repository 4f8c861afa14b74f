"""Persistence of an experiment's root dir: the design as submitted (experiment.xml), the
design plus every runtime value (execute.xml), each testbed's resolved deployment
configuration (deployment.json) and the run state kept in the manifest.

Also what is checked when a design is loaded into a root dir, beyond the design checks:
where its testbeds may keep their files, and what may reach ssh's command line.
"""

import os
from typing import Any, Callable, Dict, List, Optional

from nepi.core.access import AccessConfiguration
from nepi.core.manifest import Manifest
from nepi.core.metadata import Metadata
from nepi.errors import Problem, brief
from nepi.util import netrefs, validation
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.files import read_json, write_atomic, write_json_atomic
from nepi.util.gcpause import gc_paused
from nepi.util.rootdirs import normalise_allowed
from nepi.util.rootfiles import DEPLOYMENT_JSON, EXECUTE_XML


class RootDirStore:
    """The files of one experiment root dir the experiment controller reads and writes."""

    def __init__(self, root_dir: str) -> None:
        self.root_dir = root_dir
        self.manifest = Manifest(root_dir)

    def path(self, name: str) -> str:
        return os.path.join(self.root_dir, name)

    def read(self, name: str, required: bool) -> Optional[str]:
        path = self.path(name)
        if not os.path.exists(path):
            if required:
                raise FileNotFoundError("no %s in %s: nothing to recover" % (name,
                                                                            self.root_dir))
            return None
        with open(path, encoding="utf-8") as f:
            return f.read()

    def write(self, name: str, text: str) -> None:
        write_atomic(self.path(name), text)

    # -- the run state in the manifest ----------------------------------------------------

    def allowed_roots(self, recovering: bool, given: Optional[List[str]]) -> List[str]:
        """Allowed roots are kept in the manifest, so a recovered controller resolves the
        testbed roots the person who started the experiment allowed."""
        allowed = normalise_allowed(given)
        if recovering:
            saved = self.manifest.read().get("allowed_roots") or []
            allowed += [a for a in normalise_allowed(saved) if a not in allowed]
        return allowed

    def saved_state(self) -> Dict[str, Any]:
        """What the manifest says of the experiment: experiment_state, started_time..."""
        return self.manifest.read()

    def save_state(self, state: str, allowed_roots: List[str], started_time: Optional[float],
                   stopped_time: Optional[float], error: Optional[str] = None) -> None:
        """The experiment's state, and why it failed (kept for `nepid status` after the
        controller is gone)."""
        self.manifest.set_meta(experiment_state=state, allowed_roots=allowed_roots,
                               started_time=started_time, stopped_time=stopped_time,
                               error=error)

    def was_shut_down(self) -> bool:
        return self.manifest.read().get("experiment_state") in ("shutdown", None)

    # -- deployment.json ------------------------------------------------------------------

    def write_deployment_config(self, configs: Dict[int, AccessConfiguration]) -> None:
        write_json_atomic(self.path(DEPLOYMENT_JSON),
                          {str(g): c.to_dict() for g, c in configs.items()})

    def saved_deployment_config(self, testbed_guid: int) -> Optional[dict]:
        return read_json(self.path(DEPLOYMENT_JSON), {}).get(str(testbed_guid))


# -- checks when a design is loaded -------------------------------------------------------

def check_testbed_roots(data, resolve: Callable[[int, Optional[str]], str]) -> List[Problem]:
    """Every literal testbed root is confined and no two testbeds share one (``resolve``
    gives a testbed's root dir for a design value, or raises ValueError)."""
    problems, seen = [], {}
    for g in data.testbed_guids():
        value = data.get_attribute_data(g, DC.ROOT_DIRECTORY)
        if netrefs.has_netref(value):
            continue        # checked once resolved, before its controller is made
        try:
            root = resolve(g, value)
        except ValueError as e:
            problems.append(Problem(str(e), guid=g, testbed=data.get_testbed_data(g)[0],
                                    attribute=DC.ROOT_DIRECTORY))
            continue
        if root in seen:
            problems.append(Problem("testbed %d already keeps its files in %s; each "
                                    "testbed needs its own root dir" % (seen[root], root),
                                    guid=g, testbed=data.get_testbed_data(g)[0],
                                    attribute=DC.ROOT_DIRECTORY))
        seen.setdefault(root, g)
    return problems


def check_ssh_targets(data) -> List[Problem]:
    """Host and login of SSH-deployed testbeds reach ssh's command line: nothing there
    may read as an option. (Other modes never use them: NEPI 2 designs put anything.)"""
    problems = []
    for g in data.testbed_guids():
        if data.get_attribute_data(g, DC.DEPLOYMENT_COMMUNICATION) != DC.ACCESS_SSH:
            continue
        for name, valid in ((DC.DEPLOYMENT_HOST, validation.is_host_name),
                            (DC.DEPLOYMENT_USER, validation.is_login_name)):
            value = data.get_attribute_data(g, name)
            if value is not None and not netrefs.has_netref(value) and \
                    not valid(None, value):
                problems.append(Problem("%s is not %s" % (brief(value), valid.expected), guid=g,
                                        testbed=data.get_testbed_data(g)[0], attribute=name))
    return problems


# -- the execute XML ----------------------------------------------------------------------

def default_testbed_value(testbed_id: str, name: str) -> Any:
    amap = Metadata(testbed_id).testbed_attributes()
    return amap.get_attribute_value(name) if amap.has_attribute(name) else None


def execute_data(data, testbeds: Dict[int, Any], testbed_guids: List[int],
                 configs: Dict[int, AccessConfiguration]):
    """A copy of ``data`` with every value the running experiment has: each testbed's
    deployment values and what its controller reports as set (resolved, generated)."""
    data = data.copy()
    for testbed_guid in testbed_guids:
        testbed_id = data.get_testbed_data(testbed_guid)[0]
        for name, value in configs[testbed_guid].to_dict().items():
            if name == DC.ROOT_DIRECTORY or data.get_attribute_data(testbed_guid, name) \
                    is not None or value != default_testbed_value(testbed_id, name):
                data.add_attribute_data(testbed_guid, name, value)
        for guid, values in testbeds[testbed_guid].get_modified_values().items():
            guid = int(guid)
            if guid not in data.data:
                continue
            for name, value in values.items():   # (a tun_key here is no link key)
                if isinstance(value, (str, int, float, bool)) and name != "tun_key":
                    data.add_attribute_data(guid, name, value)
    return data


class Persistence:
    """The ExperimentController's persistence (a mixin of nepi.core.execute): uses
    ``_store``, ``_parser``, ``_data``, ``_testbeds``, ``_deployment_config`` and the
    run state."""

    def _persist_deployment_config(self) -> None:
        self._store.write_deployment_config(self._deployment_config)

    def deployment_config(self, testbed_guid: int) -> dict:
        """The resolved deployment configuration a testbed was created with."""
        config = self._deployment_config.get(testbed_guid)
        if config is None:
            saved = self._store.saved_deployment_config(testbed_guid)
            if saved is not None:
                return saved
            raise KeyError("testbed %d has no deployment configuration" % testbed_guid)
        return config.to_dict()

    @gc_paused()
    def _persist_execute_xml(self) -> None:
        """Design + every value the running experiment has (resolved, testbed-generated)."""
        data = execute_data(self._data, self._testbeds, self._all_testbed_guids(),
                            self._deployment_config)
        self._execute_xml = self._parser.data_to_xml(data)
        self._store.write(EXECUTE_XML, self._execute_xml)

    def _save_state(self, shutdown: bool = False) -> None:
        self._store.save_state("shutdown" if shutdown else self._state, self._allowed_roots,
                               self._started_time, self._stopped_time, self._error)

    def was_shut_down(self) -> bool:
        """True if the experiment in this root dir was shut down (nothing to recover)."""
        return self._store.was_shut_down()

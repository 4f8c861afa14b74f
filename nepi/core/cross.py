"""Cross-testbed connections and netrefs at deployment (a mixin of the ExperimentController).

Netrefs that the design alone cannot answer are resolved through the live testbed
controllers at the phases NEPI 2 used; a connection between elements of two testbeds is
programmed into both ends, and each end is handed, in the cross-connect phases, every
attribute of its peers as their testbeds report them (plus the TunChannel link keys).
"""

import logging
from typing import Any, Dict, List, Optional

from nepi.core.design import FactoriesProvider
from nepi.core.metadata import Metadata
from nepi.core.netref_resolution import describe_location
from nepi.core.tunnels import deliver_link_keys
from nepi.errors import DeploymentError
from nepi.util import netrefs
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.gcpause import gc_paused
from nepi.util.tunchannel import OWN_HOST, PEER_HOST

_logger = logging.getLogger("nepi.core.execute")


class Catalog:
    """Local metadata per testbed id (attribute types, ExecImmutable lists)."""

    def __init__(self) -> None:
        self._providers: Dict[str, Any] = {}

    def factory(self, testbed_id: str, factory_id: str):
        if testbed_id not in self._providers:
            self._providers[testbed_id] = FactoriesProvider(testbed_id)
        return self._providers[testbed_id].factory(factory_id)


class CrossConnections:
    """Uses the controller's ``_data``, ``_design_data``, ``_resolver``, ``_catalog``,
    ``_testbeds``, ``_failed_testbeds``, ``_guid_testbed``, ``_held_back``."""

    # -- netrefs --------------------------------------------------------------------------

    def _attribute_type(self, guid: int, name: str) -> Optional[str]:
        data = self._data
        try:
            if data.is_testbed_data(guid):
                amap = Metadata(data.get_testbed_data(guid)[0]).testbed_attributes()
            else:
                testbed_guid, factory_id = data.get_box_data(guid)
                amap = self._catalog.factory(self._testbed_id(testbed_guid),
                                             factory_id).box_attributes
            return amap.get_attribute_type(name)
        except (KeyError, ValueError):
            return None     # no such attribute: the value is passed on as it is

    def _dynamic_getter(self, ref: netrefs.Netref, guid: int) -> Any:
        testbed_guid = self._guid_testbed.get(guid)
        testbed = self._testbeds.get(testbed_guid)
        if testbed is None or testbed_guid in self._failed_testbeds:
            return None
        try:
            if ref.kind == "":
                return testbed.get(guid, ref.attribute)
            if ref.kind == "addr":
                return testbed.get_address(guid, int(ref.index), ref.attribute)
            if ref.kind == "route":
                return testbed.get_route(guid, int(ref.index), ref.attribute)
            return testbed.trace(guid, ref.index, ref.attribute)
        except Exception as e:
            # not yet available; the final pass reports what is left unresolved
            _logger.debug("netref %s of element %d not answered yet: %s", ref, guid, e)
            return None

    @gc_paused()
    def _resolve_dynamic(self, final: bool, only=None) -> None:
        resolver = self._resolver
        for guid, location, value in resolver.resolve(self._dynamic_getter, only):
            if isinstance(location, tuple) or not self._data.is_box_data(guid):
                continue
            testbed = self._testbeds.get(self._guid_testbed[guid])
            if testbed is not None:
                testbed.set(guid, location, value)
                self._held_back.get(guid, set()).discard(location)
        if final:
            left = [(g, loc, v) for g, loc, v in resolver.pending() if only is None
                    or only(g, loc)]
            if left:
                raise DeploymentError(
                    "Unresolvable netref in: " + "; ".join(
                        "element %d %s = %r" % (g, describe_location(loc), v)
                        for g, loc, v in left), guid=left[0][0], phase="netrefs")

    # -- cross connections ----------------------------------------------------------------

    def _program_cross_connections(self, testbed_guids: List[int]) -> None:
        calls = self._cross_connection_calls(testbed_guids)
        self._parallel("program_cross", list(calls),
                       lambda g: self._testbeds[g].program(calls[g]))

    @gc_paused()
    def _cross_connection_calls(self, testbed_guids: List[int]) -> Dict[int, List[list]]:
        """testbed guid -> the defer_cross_connect calls of its side of each connection."""
        data = self._data
        calls: Dict[int, List[list]] = {}
        for guid in data.box_guids():
            testbed_guid = self._guid_testbed[guid]
            if testbed_guid not in testbed_guids or testbed_guid not in self._testbeds:
                continue
            for (connector, other_guid, other_connector) in data.get_connection_data(guid):
                other_tb = self._guid_testbed.get(other_guid)
                if other_tb == testbed_guid or other_tb in self._failed_testbeds:
                    continue
                calls.setdefault(testbed_guid, []).append(
                    ["defer_cross_connect", guid, connector, other_guid, other_tb,
                     self._testbed_id(other_tb), data.get_box_data(other_guid)[1],
                     other_connector])
        return calls

    def _cross_peers(self, testbed_guid: int) -> Dict[int, List[int]]:
        peers: Dict[int, List[int]] = {}
        data = self._data
        for guid in data.box_guids(testbed_guid):
            for (_, other_guid, _) in data.get_connection_data(guid):
                other_tb = self._guid_testbed.get(other_guid)
                if other_tb != testbed_guid and other_tb in self._testbeds \
                        and other_tb not in self._failed_testbeds:
                    peers.setdefault(other_tb, []).append(other_guid)
        return peers

    def _cross_data(self, testbed_guid: int) -> Dict[int, Dict[int, dict]]:
        """Every attribute of every peer element, as its testbed reports it now."""
        result: Dict[int, Dict[int, dict]] = {}
        for other_tb, guids in self._cross_peers(testbed_guid).items():
            testbed = self._testbeds[other_tb]
            testbed_id, version = self._data.get_testbed_data(other_tb)
            requests = []
            for guid in guids:
                factory = self._catalog.factory(testbed_id, self._data.get_box_data(guid)[1])
                requests += [[guid, name] for name in
                             factory.box_attributes.get_attribute_list()]
            values = testbed.get_values(requests)
            inner = result.setdefault(other_tb, {})
            for (guid, name), value in zip(requests, values):
                entry = inner.setdefault(guid, {"_guid": guid, "_testbed_guid": other_tb,
                                                "_testbed_id": testbed_id,
                                                "_testbed_version": version,
                                                PEER_HOST: self._testbed_host(other_tb),
                                                OWN_HOST: self._testbed_host(testbed_guid)})
                entry[name] = value
        deliver_link_keys(self._root_dir, self._design_data, testbed_guid, result)
        return result

    def _testbed_host(self, testbed_guid: int) -> Optional[str]:
        """The host a testbed runs on, as the controller names it (None: this one)."""
        get = self._data.get_attribute_data
        if get(testbed_guid, DC.DEPLOYMENT_MODE) == DC.MODE_DAEMON and \
                get(testbed_guid, DC.DEPLOYMENT_COMMUNICATION) == DC.ACCESS_SSH:
            return get(testbed_guid, DC.DEPLOYMENT_HOST)
        return None

    def _cross_connect(self, testbed_guids: List[int]) -> None:
        """Sequential, as in NEPI 2: each testbed sees what the previous ones produced."""
        involved = [g for g in testbed_guids if self._cross_peers(g)]
        for phase in ("do_cross_connect_init", "do_cross_connect_compl"):
            for g in involved:
                try:
                    getattr(self._testbeds[g], phase)(self._cross_data(g))
                except Exception as e:
                    raise self._phase_error(phase, [(g, e)]) from e
                self._event(phase, g, "done")

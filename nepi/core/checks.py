"""Design validation: every problem of an ExperimentData at once, located by element.

Runs before anything is loaded into objects or deployed. Problems that make the design
impossible to build (unknown factory, bad value...) are *blocking*; the rest (a connector
with too few connections, an unresolvable netref) still let the design load for editing.
"""

from typing import Dict, List, Optional

from nepi.core.metadata import FactoriesProvider, Metadata
from nepi.errors import Problem, brief
from nepi.util import netrefs, validation
from nepi.util.gcpause import gc_paused
from nepi.util.parser.base import ExperimentData

# A testbed module's import error may quote the (untrusted) testbed id more than once.
CAUGHT_ERROR_LIMIT = 300


class _Catalog:
    """Metadata per testbed id, loaded once per check."""

    def __init__(self) -> None:
        self._providers: Dict[str, object] = {}
        self._errors: Dict[str, str] = {}
        self._testbed_attrs: Dict[str, object] = {}

    def provider(self, testbed_id: str):
        if testbed_id in self._errors:
            return None
        if testbed_id not in self._providers:
            try:
                self._providers[testbed_id] = FactoriesProvider(testbed_id)
                self._testbed_attrs[testbed_id] = Metadata(testbed_id).testbed_attributes()
            except Exception as e:  # an unknown or broken testbed is a design problem
                self._errors[testbed_id] = str(e)
                return None
        return self._providers[testbed_id]

    def error(self, testbed_id: str) -> str:
        return self._errors.get(testbed_id, "")

    def testbed_attributes(self, testbed_id: str):
        return self._testbed_attrs[testbed_id]


class _Checker:
    def __init__(self, data: ExperimentData) -> None:
        self.data = data
        self.problems: List[Problem] = []
        self.catalog = _Catalog()
        self.factories: Dict[int, object] = {}     # box guid -> Factory (when known)
        self.testbed_ids: Dict[int, str] = {}
        self.labels: Dict[str, int] = {}
        self.connectable: Dict[tuple, bool] = {}     # see may_connect
        self.known_factories: Dict[tuple, object] = {}  # (testbed guid, factory id)
        self.limits: Dict[object, List[tuple]] = {}  # see connector_limits

    # -- helpers ------------------------------------------------------------------------

    def label_of(self, guid: int) -> Optional[str]:
        attrs = self.data.data[guid].get("attributes")
        value = attrs.get("label") if attrs else None
        return value if isinstance(value, str) else None

    def add(self, guid: Optional[int], message: str, attribute: Optional[str] = None,
            blocking: bool = True) -> None:
        factory_id = testbed = None
        if guid is not None and guid in self.data.data:
            if self.data.is_box_data(guid):
                tb_guid, factory_id = self.data.get_box_data(guid)
                tb_id = self.testbed_ids.get(tb_guid)
                testbed = "%s %s" % (tb_guid, tb_id) if tb_id else str(tb_guid)
            else:
                testbed = None
        line = self.data.lines.get(guid) if guid is not None else None
        if line:
            message = "%s (line %d)" % (message, line)
        self.problems.append(Problem(message, guid, self.label_of(guid) if guid in
                                     self.data.data else None, factory_id, testbed,
                                     attribute, blocking))

    # -- the checks ---------------------------------------------------------------------

    def run(self) -> List[Problem]:
        data = self.data
        for guid in data.testbed_guids():
            self.check_testbed(guid)
        boxes = data.box_guids()
        for guid in boxes:
            self.check_box(guid)
        for guid in data.sorted_guids():
            entry = data.data[guid]
            if "testbed_id" not in entry and "factory_id" not in entry:
                self.add(guid, "entry is neither a testbed nor an element")
        self.check_labels()
        for guid in boxes:
            self.check_connections(guid)
        self.check_netrefs()
        return self.problems

    def check_testbed(self, guid: int) -> None:
        testbed_id, version = self.data.get_testbed_data(guid)
        self.testbed_ids[guid] = testbed_id
        provider = self.catalog.provider(testbed_id)
        if provider is None:
            self.add(guid, "cannot load testbed %s: %s"
                     % (brief(testbed_id), brief(self.catalog.error(testbed_id),
                                                 CAUGHT_ERROR_LIMIT, quote=False)))
            return
        if not Metadata(testbed_id).accepts_version(version):
            self.add(guid, "Bad testbed version on testbed %s. Asked for %s, got %s"
                     % (testbed_id, brief(version, quote=False), provider.testbed_version))
        amap = self.catalog.testbed_attributes(testbed_id)
        for name, value in self.data.get_attribute_data(guid):
            self.check_value(guid, amap, name, value, "testbed %s", testbed_id)

    def check_value(self, guid, amap, name, value, owner: str, *owner_args):
        """Report what is wrong with ``value`` for the attribute ``name`` of ``amap`` (named
        ``owner % owner_args``, formatted only if needed: this runs for every value of a
        design); the attribute, if there is one."""
        try:
            attr = amap._get(name)
        except KeyError:
            self.add(guid, "unknown attribute %s for %s (known: %s)"
                     % (brief(name), owner % owner_args,
                        ", ".join(sorted(amap.get_attribute_list()))), name)
            return None
        if value is None:
            return attr
        problem = attr.check_value(attr.coerce(value))
        if problem:
            self.add(guid, "invalid value %s: %s" % (brief(value), problem), name)
        return attr

    def box_factory(self, guid: int, testbed_guid: int, factory_id: str):
        """The factory of box ``guid``, or None after reporting why there is none."""
        if not self.data.is_testbed_data(testbed_guid):
            self.add(guid, "belongs to testbed %s, which does not exist" % brief(testbed_guid))
            return None
        provider = self.catalog.provider(self.testbed_ids[testbed_guid])
        if provider is None:
            return None  # already reported on the testbed
        if not provider.has_factory(factory_id):
            self.add(guid, "unknown factory %s in testbed %s (known: %s)"
                     % (brief(factory_id), provider.testbed_id,
                        ", ".join(sorted(f.factory_id for f in provider.factories))))
            return None
        return provider.factory(factory_id)

    def check_box(self, guid: int) -> None:
        data = self.data
        entry = data.data[guid]
        testbed_guid, factory_id = entry["testbed_guid"], entry["factory_id"]
        try:
            factory = self.known_factories[testbed_guid, factory_id]
        except (KeyError, TypeError):
            factory = self.box_factory(guid, testbed_guid, factory_id)
            if factory is None:
                return
            self.known_factories[testbed_guid, factory_id] = factory
        self.factories[guid] = factory
        fattrs = dict(entry.get("factory_attributes", {}).items())
        for name, value in fattrs.items():
            if netrefs.has_netref(value):
                # never resolved: the value is used as is when the element is created
                self.add(guid, "factory attribute holds the netref %s; factory attributes "
                         "are fixed when the element is created and cannot refer to other "
                         "elements" % brief(value), name)
                continue
            self.check_value(guid, factory, name, value, "factory %s (factory attribute)",
                             factory_id)
        box_attributes = factory.box_attributes
        for name, value in data.get_attribute_data(guid):
            attr = self.check_value(guid, box_attributes, name, value, "factory %s",
                                    factory_id)
            if attr is not None and value is not None and attr.is_design_read_only:
                expected = fattrs.get(name, factory.get_attribute_value(name)
                                      if factory.has_attribute(name)
                                      else factory.box_attributes.get_attribute_value(name))
                if value != expected:
                    self.add(guid, "read-only attribute set to %s (it must stay %s)"
                             % (brief(value), brief(expected)), name)
        if entry.get("traces"):
            for trace in data.get_trace_data(guid):
                if trace not in factory.traces_list:
                    self.add(guid, "unknown trace %s (factory %s has: %s)"
                             % (brief(trace), factory_id,
                                ", ".join(factory.traces_list) or "none"), trace)
        if entry.get("addresses"):
            self.check_addresses(guid, factory, fattrs)
        if entry.get("routes"):
            self.check_routes(guid, factory)

    def check_addresses(self, guid, factory, fattrs) -> None:
        addresses = self.data.get_address_data(guid)
        if not addresses:
            return
        if not factory.allow_addresses:
            self.add(guid, "factory %s does not accept addresses" % factory.factory_id,
                     "addresses")
            return
        maximum = self.data.get_attribute_data(guid, "maxAddresses",
                                               fattrs.get("maxAddresses"))
        if maximum is None and factory.has_attribute("maxAddresses"):
            maximum = factory.get_attribute_value("maxAddresses")
        if isinstance(maximum, int) and len(addresses) > maximum:
            self.add(guid, "%d addresses given, at most %d allowed"
                     % (len(addresses), maximum), "addresses")
        for i, fields in enumerate(addresses):
            for field, message, blocking in validation.address_problems("address #%d" % i,
                                                                        *fields):
                self.add(guid, message, field, blocking)

    def check_routes(self, guid, factory) -> None:
        routes = self.data.get_route_data(guid)
        if not routes:
            return
        if not factory.allow_routes:
            self.add(guid, "factory %s does not accept routes" % factory.factory_id, "routes")
            return
        for i, fields in enumerate(routes):
            for field, message, blocking in validation.route_problems("route #%d" % i, *fields):
                self.add(guid, message, field, blocking)

    def check_labels(self) -> None:
        for guid in self.data.sorted_guids():
            label = self.label_of(guid)
            if label is None:
                continue
            if label in self.labels:
                self.add(guid, "Label %s is not unique (also used by guid %d)"
                         % (brief(label), self.labels[label]), "label")
            else:
                self.labels[label] = guid

    def check_connections(self, guid: int) -> None:
        factory = self.factories.get(guid)
        if factory is None:
            return
        data = self.data.data
        entry = data[guid]
        testbed_guid = entry["testbed_guid"]
        factories, connectable = self.factories, self.connectable
        counts: Dict[str, int] = {}
        for connector, peers in entry.get("connections", {}).items():
            for other_guid, other_connector in peers.items():
                # the usual record, recorded on both ends between connectors that may be
                # connected (may_connect remembers only connectors that exist), is fine
                other = factories.get(other_guid)
                if other is not None and other_guid != guid:
                    other_entry = data[other_guid]
                    try:
                        back = other_entry["connections"][other_connector][guid]
                    except (KeyError, TypeError):
                        back = None
                    if back == connector and connectable.get((
                            factory, connector, other, other_connector,
                            testbed_guid != other_entry["testbed_guid"])):
                        counts[connector] = counts.get(connector, 0) + 1
                        continue
                self.check_connection(guid, factory, connector, other_guid, other_connector,
                                      counts)
        for name, minimum, maximum, help in self.connector_limits(factory):
            n = counts.get(name, 0)
            if n > maximum:
                self.add(guid, "connector %r has %d connections, at most %d allowed"
                         % (name, n, maximum), name)
            elif n < minimum:
                self.add(guid, "connector %r has %d connection%s, at least %d required (%s)"
                         % (name, n, "" if n == 1 else "s", minimum, help),
                         name, blocking=False)

    def connector_limits(self, factory) -> List[tuple]:
        """(name, min, max, help) of each connector type of ``factory``, remembered."""
        limits = self.limits.get(factory)
        if limits is None:
            limits = self.limits[factory] = [(ct.name, ct.min, ct.max, ct.help)
                                             for ct in factory.connector_types]
        return limits

    def check_connection(self, guid: int, factory, connector, other_guid, other_connector,
                         counts: Dict[str, int]) -> None:
        """Every problem of one connection record of ``guid``; counts it (per connector)
        if its connector exists."""
        data = self.data
        if not factory.has_connector_type(connector):
            names = [ct.name for ct in factory.connector_types]
            self.add(guid, "%s: factory %s has no connector %s (has: %s)"
                     % (_where(connector, other_guid, other_connector),
                        factory.factory_id, brief(connector), ", ".join(names) or "none"),
                     connector)
            return
        counts[connector] = counts.get(connector, 0) + 1
        if not data.is_box_data(other_guid):
            self.add(guid, "%s: element %s does not exist"
                     % (_where(connector, other_guid, other_connector), other_guid),
                     connector)
            return
        other = self.factories.get(other_guid)
        if other is None:
            return
        if not other.has_connector_type(other_connector):
            other_names = [ct.name for ct in other.connector_types]
            self.add(guid, "%s: factory %s has no connector %s (has: %s)"
                     % (_where(connector, other_guid, other_connector), other.factory_id,
                        brief(other_connector), ", ".join(other_names) or "none"),
                     connector)
            return
        if other_guid == guid:
            self.add(guid, "%s: an element cannot be connected to itself"
                     % _where(connector, other_guid, other_connector), connector)
            return
        back = data.data[other_guid].get("connections", {}).get(other_connector, {})
        if back.get(guid) != connector:
            # a record on one end only was completed (one_sided_connections): the ends
            # disagree, and which connection was meant cannot be told
            theirs = ["%s -> %d.%s" % (brief(c, quote=False), guid, brief(oc, quote=False))
                      for (c, og, oc) in data.get_connection_data(other_guid)
                      if og == guid]
            if len(theirs) > 3:
                theirs[3:] = ["%d more" % (len(theirs) - 3)]
            self.add(guid, "%s is not recorded on element %d, which records %s instead "
                     "(the two ends of a connection must agree)"
                     % (_where(connector, other_guid, other_connector), other_guid,
                        ", ".join(theirs) or "no connection"), connector)
        must_cross = data.get_box_data(guid)[0] != data.get_box_data(other_guid)[0]
        if not self.may_connect(factory, connector, other, other_connector, must_cross):
            self.add(guid, "%s: %s.%s may not be connected to %s.%s%s"
                     % (_where(connector, other_guid, other_connector),
                        factory.factory_id, connector, other.factory_id,
                        other_connector,
                        " across testbeds" if must_cross else " within one testbed"),
                     connector)

    def may_connect(self, factory, connector: str, other, other_connector: str,
                    must_cross: bool) -> bool:
        """Both connector types accept each other (remembered: a design asks the same few
        questions once per connection)."""
        key = (factory, connector, other, other_connector, must_cross)
        answer = self.connectable.get(key)
        if answer is None:
            mine = factory.connector_type(connector)
            theirs = other.connector_type(other_connector)
            answer = self.connectable[key] = bool(
                mine.can_connect(*theirs.connector_type_id, must_cross=must_cross)
                and theirs.can_connect(*mine.connector_type_id, must_cross=must_cross))
        return answer

    # -- netrefs ------------------------------------------------------------------------

    def _values_with_netrefs(self):
        """(guid, attribute name, value) for every string that may carry a netref (one
        with "{#" in it: for the others there is nothing to check)."""
        data = self.data
        for guid in data.sorted_guids():
            entry = data.data[guid]
            attrs = entry.get("attributes")
            if attrs:
                for name, value in attrs.items():
                    if isinstance(value, str) and "{#" in value:
                        yield guid, name, value
            if "factory_id" in entry and (entry.get("addresses") or entry.get("routes")):
                for i, fields in enumerate(data.get_address_data(guid)):
                    for n, v in zip(netrefs.ADDRESS_FIELDS, fields):
                        if isinstance(v, str) and "{#" in v:
                            yield guid, "address #%d %s" % (i, n), v
                for i, fields in enumerate(data.get_route_data(guid)):
                    for n, v in zip(netrefs.ROUTE_FIELDS, fields):
                        if isinstance(v, str) and "{#" in v:
                            yield guid, "route #%d %s" % (i, n), v

    def resolve_label(self, ref) -> Optional[int]:
        if ref.guid is not None:
            return ref.guid if ref.guid in self.data.data else None
        return self.labels.get(ref.label)

    def check_netrefs(self) -> None:
        edges: Dict[tuple, List[tuple]] = {}
        for guid, name, value in self._values_with_netrefs():
            bad = netrefs.malformed_netref(value)
            if bad:
                self.add(guid, "malformed netref %s (expected {#[label].[Attribute]#}, "
                         "{#[label].addr[N].[Address]#}, {#[label].route[N].[NextHop]#} or "
                         "{#[label].trace[name].[path]#})" % brief(bad), name)
            for ref in netrefs.find_netrefs(value):
                target = self.resolve_label(ref)
                if target is None:
                    self.add(guid, "netref %s names %s, which is no element's label or guid"
                             % (brief(ref.text, quote=False), brief(ref.label)), name,
                             blocking=False)
                    continue
                problem = self.netref_target_problem(ref, target)
                if problem:
                    self.add(guid, "netref %s: %s" % (brief(ref.text, quote=False), problem),
                             name, blocking=False)
                elif ref.kind == "":
                    edges.setdefault((guid, name), []).append((target, ref.attribute))
        self.check_cycles(edges)

    def netref_target_problem(self, ref, target: int) -> Optional[str]:
        data = self.data
        if data.is_testbed_data(target):
            return "refers to a testbed; netrefs must name an element"
        factory = self.factories.get(target)
        if factory is None:
            return None  # unknown factory already reported
        if ref.kind == "":
            if not factory.box_attributes.has_attribute(ref.attribute):
                return "element %d (%s) has no attribute %s" % (target, factory.factory_id,
                                                                brief(ref.attribute))
        elif ref.kind == "addr":
            if not factory.has_addresses:
                return "element %d (%s) has no addresses" % (target, factory.factory_id)
            if ref.attribute not in netrefs.ADDRESS_FIELDS:
                return "address field must be one of %s" % ", ".join(netrefs.ADDRESS_FIELDS)
            if factory.allow_addresses and int(ref.index) >= len(data.get_address_data(target)):
                return "element %d has %d address(es), no address #%s" % (
                    target, len(data.get_address_data(target)), brief(ref.index, quote=False))
        elif ref.kind == "route":
            if not factory.has_routes:
                return "element %d (%s) has no routes" % (target, factory.factory_id)
            if ref.attribute not in netrefs.ROUTE_FIELDS:
                return "route field must be one of %s" % ", ".join(netrefs.ROUTE_FIELDS)
            if factory.allow_routes and int(ref.index) >= len(data.get_route_data(target)):
                return "element %d has %d route(s), no route #%s" % (
                    target, len(data.get_route_data(target)), brief(ref.index, quote=False))
        elif ref.kind == "trace":
            if ref.index not in factory.traces_list:
                return "element %d (%s) has no trace %s" % (target, factory.factory_id,
                                                            brief(ref.index))
            if ref.attribute not in netrefs.TRACE_FIELDS:
                return "trace field must be one of %s" % ", ".join(netrefs.TRACE_FIELDS)
        return None

    def check_cycles(self, edges: Dict[tuple, List[tuple]]) -> None:
        """Report each cycle of netrefs once. Iterative: a design may chain thousands of
        netrefs, deeper than Python's recursion limit."""
        state: Dict[tuple, int] = {}   # 1 = on the current path, 2 = done
        reported = set()
        for start in list(edges):
            if start in state:
                continue
            state[start] = 1
            path = [start]
            pending = [iter(edges.get(start, []))]
            while pending:
                nxt = next(pending[-1], None)
                if nxt is None:
                    state[path.pop()] = 2
                    pending.pop()
                elif state.get(nxt) == 1:
                    cycle = path[path.index(nxt):] + [nxt]
                    key = frozenset(cycle)
                    if key not in reported:
                        reported.add(key)
                        self.add(nxt[0], "netrefs form a cycle: %s" % _describe_cycle(cycle),
                                 nxt[1], blocking=False)
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    pending.append(iter(edges.get(nxt, [])))


def _where(connector, other_guid, other_connector) -> str:
    """How a problem names a connection record."""
    return "connection %s -> %s.%s" % (brief(connector, quote=False), brief(other_guid),
                                       brief(other_connector, quote=False))


def _describe_cycle(cycle: List[tuple], shown: int = 10) -> str:
    """``2.a -> 3.b -> 2.a``; a long cycle shows its first ``shown`` steps."""
    steps = ["%d.%s" % (guid, brief(name, quote=False)) for guid, name in cycle]
    if len(steps) > shown + 1:
        return " -> ".join(steps[:shown]) + " -> ... (%d netrefs in all)" % (len(steps) - 1)
    return " -> ".join(steps)


@gc_paused()
def check_data(data: ExperimentData) -> List[Problem]:
    """Every problem found in ``data``; empty when the design is sound. A connection
    recorded on one end only is no problem (NEPI 2 connects both ends; the XML reader and
    ExperimentDescription.load_data do too): it is checked as if recorded on both."""
    if data.one_sided_connections():
        data = data.copy()
        data.complete_connections()
    return _Checker(data).run()

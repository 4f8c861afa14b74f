#!/usr/bin/env python3
"""Build a small two-testbed experiment on the ``mock`` and ``mock2`` test testbeds.

The design uses the public NEPI 2 compatible API: two nodes whose interfaces are linked,
an application with its ``fake`` trace enabled, an address, a route, a netref and a
cross-testbed connection. It is validated, written as XML and summarised.

    python examples/mock_design.py [OUTPUT.xml]      (default: ./mock-experiment.xml)

Then try ``nepi validate OUTPUT.xml`` and ``nepi show OUTPUT.xml``.
"""

import sys

from nepi.core.design import ExperimentDescription, FactoriesProvider


def build():
    exp = ExperimentDescription()

    # Testbed 1: mock. Guids are allocated in creation order, testbeds included.
    mock = exp.add_testbed_description(FactoriesProvider("mock"))
    mock.set_attribute_value("label", "tb-mock")

    node1 = mock.create("Node")
    node1.set_attribute_value("label", "node1")
    node2 = mock.create("Node")
    node2.set_attribute_value("label", "node2")

    if1 = mock.create("Interface")
    if1.set_attribute_value("label", "if1")
    if2 = mock.create("Interface")
    if2.set_attribute_value("label", "if2")
    # if2 learns if1's address when the experiment is deployed.
    if2.set_attribute_value("test", "{#[if1].addr[0].[Address]#}")

    node1.connector("devs").connect(if1.connector("node"))
    node2.connector("devs").connect(if2.connector("node"))
    if1.connector("iface").connect(if2.connector("iface"))

    address = if1.add_address()
    address.set_attribute_value("Address", "10.0.0.1")
    address.set_attribute_value("NetPrefix", 24)

    route = node1.add_route()
    route.set_attribute_value("Destination", "10.0.1.0")
    route.set_attribute_value("NetPrefix", 24)
    route.set_attribute_value("NextHop", "10.0.0.2")

    app = mock.create("Application")
    app.set_attribute_value("label", "app1")
    app.set_attribute_value("test", "ping -c1 10.0.0.2")
    app.enable_trace("fake")
    app.connector("node").connect(node1.connector("apps"))

    # Testbed 2: mock2, one node and one interface cross-connected to mock's if1.
    mock2 = exp.add_testbed_description(FactoriesProvider("mock2"))
    mock2.set_attribute_value("label", "tb-mock2")
    node3 = mock2.create("Node")
    node3.set_attribute_value("label", "node3")
    if3 = mock2.create("Interface")
    if3.set_attribute_value("label", "if3")
    node3.connector("devs").connect(if3.connector("node"))
    if1.connector("cross").connect(if3.connector("cross"))

    return exp


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "mock-experiment.xml"
    exp = build()
    exp.validate()   # raises nepi.errors.DesignError listing every problem
    xml = exp.to_xml()
    with open(path, "w", encoding="utf-8") as f:
        f.write(xml)
    print("wrote %s (%d bytes)" % (path, len(xml.encode("utf-8"))))
    for tbd in exp.testbed_descriptions:
        print("testbed %d: %s %s, label %r, %d elements: %s" % (
            tbd.guid, tbd.provider.testbed_id, tbd.provider.testbed_version,
            tbd.get_attribute_value("label"), len(tbd.boxes),
            ", ".join("%d=%s" % (b.guid, b.get_attribute_value("label")) for b in tbd.boxes)))
    print("next: nepi validate %s && nepi show %s" % (path, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

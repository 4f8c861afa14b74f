"""Small builders over nepi's design API shared by the cross-testbed examples."""

PROTOCOLS = ("ns3::ArpL3Protocol", "ns3::Ipv4L3Protocol", "ns3::Icmpv4L4Protocol",
             "ns3::UdpL4Protocol")


def connect(a, connector_a, b, connector_b):
    a.connector(connector_a).connect(b.connector(connector_b))


def address(device, value, prefix=24):
    addr = device.add_address()
    addr.set_attribute_value("Address", value)
    addr.set_attribute_value("NetPrefix", prefix)


def route(node, destination, nexthop, prefix=24):
    r = node.add_route()
    r.set_attribute_value("Destination", destination)
    r.set_attribute_value("NetPrefix", prefix)
    r.set_attribute_value("NextHop", nexthop)


def ns3_node(ns3):
    node = ns3.create("ns3::Node")
    for protocol in PROTOCOLS:
        connect(node, "protos", ns3.create(protocol), "node")
    return node


def ns3_device(ns3, node, factory, value):
    device = ns3.create(factory)
    connect(node, "devs", device, "node")
    address(device, value)
    return device


def netns_iface(netns, node, factory, value):
    iface = netns.create(factory)
    iface.set_attribute_value("up", True)
    connect(node, "devs", iface, "node")
    address(iface, value)
    return iface

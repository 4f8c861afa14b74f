"""Factory and connection functions named by the metadata.

They only delegate to the controller (nepi.testbeds.ns3.execute.DaemonTestbedController),
which owns the ns-3 objects; importing this module does not import ns-3, so the metadata
(and with it design validation) stays fast.
"""


# -- factory functions: f(controller, guid) -------------------------------------------------

def create_object(tb, guid):
    tb.create_object(guid)


def create_node(tb, guid):
    tb.create_node(guid)


def create_mobility(tb, guid):
    tb.create_mobility(guid)


def create_deferred(tb, guid):
    """Wifi pieces: built together by WifiHelper when the device joins its node."""
    tb.create_deferred(guid)


def create_nothing(tb, guid):
    tb.elements[guid] = None


def configure_device(tb, guid):
    tb.configure_device(guid)


def configure_node(tb, guid):
    tb.configure_node(guid)


def configure_wifi_phy(tb, guid):
    tb.configure_wifi_phy(guid)


def configure_application(tb, guid):
    tb.configure_application(guid)


def start_application(tb, guid):
    tb.start_application(guid)


def stop_application(tb, guid):
    tb.stop_application(guid)


def status_application(tb, guid):
    return tb.status_application(guid)


# -- connection functions: f(controller, guid_from, guid_to) ----------------------------

def connect_node_device(tb, node, dev):
    tb.connect_node_device(node, dev)


def connect_node_wifi(tb, node, dev):
    return tb.connect_node_wifi(node, dev)


def connect_node_application(tb, node, app):
    tb.connect_node_application(node, app)


def connect_node_protocol(tb, node, proto):
    tb.connect_node_protocol(node, proto)


def connect_node_mobility(tb, node, mobility):
    tb.connect_node_mobility(node, mobility)


def connect_queue_device(tb, queue, dev):
    tb.connect_queue_device(queue, dev)


def connect_error_model_device(tb, model, dev):
    tb.connect_error_model_device(model, dev)


def connect_channel_device(tb, chan, dev):
    tb.connect_channel_device(chan, dev)


def connect_loss_channel(tb, loss, chan):
    tb.connect_loss_channel(loss, chan)


def connect_loss_chain(tb, model, previous):
    tb.connect_loss_chain(model, previous)


def connect_delay_channel(tb, delay, chan):
    tb.connect_delay_channel(delay, chan)


def connect_mobility_pair(tb, pair, matrix):
    tb.connect_mobility_pair(pair, matrix)


def connect_tap_bridge(tb, bridge, dev):
    return tb.connect_tap_bridge(bridge, dev)


# -- cross connections: f(controller, guid, cross_data) -------------------------------

def connect_fd_cross_init(tb, guid, cross_data):
    tb.connect_fd_cross_init(guid, cross_data)


# -- TunChannel: an FdNetDevice's frames over UDP/TCP to another testbed's channel ----

def create_tunchannel(tb, guid):
    tb.create_tunchannel(guid)


def connect_tunchannel_fd(tb, channel, dev):
    tb.connect_tunchannel_fd(channel, dev)


def tunchannel_cross_init_udp(tb, guid, cross_data):
    tb.tunchannel_cross_init(guid, cross_data, "udp")


def tunchannel_cross_compl_udp(tb, guid, cross_data):
    tb.tunchannel_cross_compl(guid, cross_data, "udp")


def tunchannel_cross_init_tcp(tb, guid, cross_data):
    tb.tunchannel_cross_init(guid, cross_data, "tcp")


def tunchannel_cross_compl_tcp(tb, guid, cross_data):
    tb.tunchannel_cross_compl(guid, cross_data, "tcp")

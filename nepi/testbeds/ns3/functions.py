"""Factory and connection functions named by the metadata.

They only delegate to the controller (nepi.testbeds.ns3.execute.DaemonTestbedController),
which owns the ns-3 objects; importing this module does not import ns-3, so the metadata
(and with it design validation) stays fast. Wifi pieces use ``create_deferred``: they are
built together by WifiHelper when the device joins its node.
"""

import functools

from nepi.core.metadata import controller_method

# Functions that call the controller method of the same name with the same arguments:
# factory functions f(controller, guid), connection functions f(controller, a, b) and
# cross-connection functions f(controller, guid, cross_data).
_DELEGATED = (
    "create_object", "create_node", "create_mobility", "create_deferred",
    "configure_device", "configure_node", "configure_wifi_phy", "configure_application",
    "start_application", "stop_application", "status_application",
    "connect_node_device", "connect_node_wifi", "connect_node_application",
    "connect_node_protocol", "connect_node_mobility", "connect_queue_device",
    "connect_error_model_device", "connect_channel_device", "connect_loss_channel",
    "connect_loss_chain", "connect_delay_channel", "connect_mobility_pair",
    "connect_tap_bridge", "connect_fd_cross_init", "create_tunchannel",
    "connect_tunchannel_fd",
)
globals().update({name: controller_method(name) for name in _DELEGATED})


def create_nothing(tb, guid):
    tb.elements[guid] = None


# TunChannel: an FdNetDevice's frames over UDP/TCP to another testbed's channel.
tunchannel_cross_init_udp = functools.partial(controller_method("tunchannel_cross_init"),
                                              proto="udp")
tunchannel_cross_compl_udp = functools.partial(controller_method("tunchannel_cross_compl"),
                                               proto="udp")
tunchannel_cross_init_tcp = functools.partial(controller_method("tunchannel_cross_init"),
                                              proto="tcp")
tunchannel_cross_compl_tcp = functools.partial(controller_method("tunchannel_cross_compl"),
                                               proto="tcp")

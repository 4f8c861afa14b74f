"""Factory tags. The last four decide address/route capabilities; the rest are descriptive."""

MOBILE = "mobile"
NODE = "node"
INTERFACE = "interface"
WIRELESS = "wireless"
APPLICATION = "application"
NAT = "nat"
SWITCH = "switch"
PPP = "point-to-point"
PROTOCOL = "protocol"
TUNNEL = "tunnel"
INTERNET = "internet"
HUB = "hub"
ALLOW_ADDRESSES = "allow_addresses"
ALLOW_ROUTES = "allow_routes"
HAS_ADDRESSES = "has_addresses"
HAS_ROUTES = "has_routes"


class Taggable:
    def __init__(self) -> None:
        self._tags: list = []

    @property
    def tags(self) -> list:
        return self._tags

    def add_tag(self, tag_id: str) -> None:
        self._tags.append(tag_id)

    def has_tag(self, tag_id: str) -> bool:
        return tag_id in self._tags

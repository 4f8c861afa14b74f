"""AccessConfiguration: the deployment attributes saying where and how a controller runs
(NEPI 2's ``nepi.util.proxy.AccessConfiguration``, still exported there)."""

from typing import Optional

from nepi.core.attributes import Attribute, AttributesMap
from nepi.core.metadata import _add_definition, proxy_attributes
from nepi.util.constants import DeploymentConfiguration as DC


class AccessConfiguration(AttributesMap):
    """Deployment attributes saying where and how a controller runs (NEPI 2 names)."""

    def __init__(self, params: Optional[dict] = None) -> None:
        super().__init__()
        for definition in proxy_attributes().values():
            _add_definition(self.add_attribute, definition)
        if params:
            for name, value in params.items():
                parser = Attribute.type_parsers[self.get_attribute_type(name)]
                self.set_attribute_value(name, parser(value) if value is not None else None)

    def _attributes_owner(self) -> str:
        return "access configuration"

    def to_dict(self, include_recover: bool = False) -> dict:
        return {name: self.get_attribute_value(name) for name in self.get_attribute_list()
                if (include_recover or name != DC.RECOVER)
                and self.get_attribute_value(name) is not None}

    @classmethod
    def from_dict(cls, values: dict) -> "AccessConfiguration":
        config = cls()
        for name, value in values.items():
            if config.has_attribute(name) and value is not None:
                config.set_attribute_value(name, value)
        return config


def deployment_mode(access_config: Optional[AccessConfiguration]) -> str:
    """SINGLE when there is no configuration (NEPI 2's default)."""
    if access_config is None:
        return DC.MODE_SINGLE_PROCESS
    return access_config.get_attribute_value(DC.DEPLOYMENT_MODE)


def wants_recovery(access_config: Optional[AccessConfiguration]) -> bool:
    return bool(access_config is not None and access_config.get_attribute_value(DC.RECOVER))

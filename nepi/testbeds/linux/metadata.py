"""Metadata of the linux testbed: NEPI 2 PlanetLab's Node / Application / Dependency
model on hosts reached over OpenSSH. Importing it must stay cheap and free of side effects.

Values that reach ssh's command line (host, user, port, file paths) are validated here,
when a design sets them, and again by the controller before any host is touched."""

import getpass
import re

from nepi.core import metadata
from nepi.core.attributes import Attribute
from nepi.core.metadata import Parallel
from nepi.testbeds.linux.constants import TESTBED_ID, TESTBED_VERSION
from nepi.testbeds.linux.ssh import is_ssh_path
from nepi.util import tags, validation
from nepi.util.constants import AttributeCategories as AC
from nepi.util.constants import DeploymentConfiguration as DC
from nepi.util.constants import FactoryCategories as FC

NODE = "Node"
APPLICATION = "Application"
DEPENDENCY = "Dependency"
BUILDERS = (APPLICATION, DEPENDENCY)        # elements with sources/build/install/depends

# Debian package names (policy 5.6.1), optionally with an architecture qualifier
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")


def is_package_list(attribute, value) -> bool:
    return isinstance(value, str) and all(_PACKAGE.match(p) for p in value.split())


is_package_list.expected = "space-separated Debian package names (e.g. 'gcc make')"

_IMMUTABLE = Attribute.ExecReadOnly | Attribute.ExecImmutable

ATTRIBUTES = {
    "hostname": dict(name="hostname", help="Host name or IP address of the host (required)",
                     type=Attribute.STRING, flags=_IMMUTABLE,
                     validation_function=validation.is_host_name),
    "node_ssh_user": dict(name="sshUser", help="SSH login on this host (default: the "
                          "testbed's sshUser)", type=Attribute.STRING, flags=_IMMUTABLE,
                          validation_function=validation.is_login_name),
    "node_ssh_port": dict(name="sshPort", help="SSH port of this host (default: the "
                          "testbed's sshPort)", type=Attribute.INTEGER, flags=_IMMUTABLE,
                          validation_function=validation.is_integer_range(1, 65535)),
    "command": dict(name="command", help="Command line run with bash -c in the "
                    "application's folder on its host", type=Attribute.STRING,
                    flags=_IMMUTABLE, validation_function=validation.is_string),
    "sudo": dict(name="sudo", help="Run the command (and this element's build and install) "
                 "as root, with sudo -n unless the SSH login is root", type=Attribute.BOOL,
                 value=False, flags=_IMMUTABLE, validation_function=validation.is_bool),
    "stdin": dict(name="stdin", help="Text fed to the command's standard input",
                  type=Attribute.STRING, flags=_IMMUTABLE,
                  validation_function=validation.is_string),
    "sources": dict(name="sources", help="Space-separated local files and folders copied "
                    "into the element's folder on its host (a folder arrives as a "
                    "subfolder of the same name; symbolic links pointing out of it are "
                    "not copied)", type=Attribute.STRING, flags=_IMMUTABLE,
                    validation_function=validation.is_string),
    "build": dict(name="build", help="Shell text run once in the element's folder before "
                  "start; its output is the buildlog trace", type=Attribute.STRING,
                  flags=_IMMUTABLE, validation_function=validation.is_string),
    "install": dict(name="install", help="Shell text run after build (output appended to "
                    "the buildlog trace)", type=Attribute.STRING, flags=_IMMUTABLE,
                    validation_function=validation.is_string),
    "depends": dict(name="depends", help="Space-separated Debian packages installed once "
                    "per host (apt-get, as root) before any build",
                    type=Attribute.STRING, flags=_IMMUTABLE,
                    validation_function=is_package_list),
}

TRACES = {
    "stdout": dict(name="stdout", help="Standard output stream"),
    "stderr": dict(name="stderr", help="Application standard error"),
    "buildlog": dict(name="buildlog", help="Output of the build and install commands"),
}

CONNECTOR_TYPES = {
    "apps": dict(name="apps", help="Connector from node to applications", max=-1, min=0),
    "deps": dict(name="deps", help="Connector from node to dependencies", max=-1, min=0),
    "devs": dict(name="devs", help="Connector from node to network interfaces", max=-1,
                 min=0),
    "node": dict(name="node", help="Connector to a Node", max=1, min=1),
}

T = TESTBED_ID


def _factories():
    create = metadata.controller_method("create_element")
    builder = dict(create_function=create, connector_types=["node"],
                   box_attributes=["sources", "build", "install", "depends", "sudo"])
    return {
        NODE: dict(help="A Linux host reached over SSH", category=FC.CATEGORY_NODES,
                   create_function=create,
                   box_attributes=["hostname", "node_ssh_user", "node_ssh_port"],
                   connector_types=["apps", "deps", "devs"], tags=[tags.NODE]),
        APPLICATION: dict(builder, help="A command run detached on its host, after its "
                          "sources are copied and built", category=FC.CATEGORY_APPLICATIONS,
                          start_function=metadata.controller_method("start_application"),
                          stop_function=metadata.controller_method("stop_application"),
                          status_function=metadata.controller_method("application_status"),
                          box_attributes=builder["box_attributes"] + ["command", "stdin"],
                          traces=["stdout", "stderr", "buildlog"], tags=[tags.APPLICATION]),
        DEPENDENCY: dict(builder, help="Software built and installed once on its host, "
                         "before the host's applications are built",
                         category=FC.CATEGORY_APPLICATIONS, traces=["buildlog"]),
    }


def _connections():
    return [
        {"from": (T, NODE, "apps"), "to": (T, APPLICATION, "node"), "can_cross": False},
        {"from": (T, NODE, "deps"), "to": (T, DEPENDENCY, "node"), "can_cross": False},
    ]


def testbed_attributes() -> dict:
    """The SSH settings of every host (a Node may override user and port)."""
    return {
        "ssh_user": dict(name="sshUser", help="SSH login on the hosts",
                         type=Attribute.STRING, value=getpass.getuser(), flags=_IMMUTABLE,
                         validation_function=validation.is_login_name),
        "ssh_key": dict(name="sshKey", help="SSH private key file (default: ssh's own "
                        "choice, or the agent)", type=Attribute.STRING, flags=_IMMUTABLE,
                        validation_function=is_ssh_path),
        "ssh_port": dict(name="sshPort", help="SSH port of the hosts", type=Attribute.INTEGER,
                         value=22, flags=_IMMUTABLE,
                         validation_function=validation.is_integer_range(1, 65535)),
        "ssh_known_hosts": dict(name="sshKnownHosts", help="known_hosts file the host keys "
                                "are checked against, strictly; unset, keys are learnt on "
                                "first use into a file of the testbed's root directory",
                                type=Attribute.STRING, flags=_IMMUTABLE,
                                validation_function=is_ssh_path),
        "ssh_multiplexing": dict(name="sshMultiplexing", help="One SSH connection per host "
                                 "shared by every command (OpenSSH ControlMaster)",
                                 type=Attribute.BOOL, value=True, flags=_IMMUTABLE,
                                 validation_function=validation.is_bool),
        "use_sudo": dict(name=DC.USE_SUDO, help="Run every command on the hosts as root "
                         "(sudo -n unless the SSH login is root); for a testbed daemon "
                         "launched over SSH, also run the daemon with sudo",
                         type=Attribute.BOOL, value=False,
                         flags=_IMMUTABLE | Attribute.Metadata,
                         validation_function=validation.is_bool,
                         category=AC.CATEGORY_DEPLOYMENT),
        "timeout": dict(name="timeout", help="Seconds a host may take to answer one "
                        "operation (connecting included) before it is reported unreachable",
                        type=Attribute.DOUBLE, value=30.0, flags=_IMMUTABLE,
                        validation_function=validation.is_number_range(1, 3600)),
        "build_timeout": dict(name="buildTimeout", help="Seconds the package installation, "
                              "build and install of one host may take",
                              type=Attribute.DOUBLE, value=600.0, flags=_IMMUTABLE,
                              validation_function=validation.is_number_range(1, 86400)),
    }


class MetadataInfo(metadata.MetadataInfo):
    @property
    def connector_types(self):
        return CONNECTOR_TYPES

    @property
    def connections(self):
        return _connections()

    @property
    def attributes(self):
        return ATTRIBUTES

    @property
    def traces(self):
        return TRACES

    @property
    def create_order(self):
        return [NODE, DEPENDENCY, APPLICATION]

    @property
    def configure_order(self):
        # applications start and stop in parallel: each is an SSH round trip
        return [NODE, DEPENDENCY, Parallel(APPLICATION)]

    @property
    def factories_info(self):
        return _factories()

    @property
    def testbed_attributes(self):
        return testbed_attributes()

    @property
    def testbed_id(self):
        return TESTBED_ID

    @property
    def testbed_version(self):
        return TESTBED_VERSION

    @property
    def supported_recovery_policies(self):
        return [DC.POLICY_FAIL, DC.POLICY_RECOVER, DC.POLICY_RESTART]

"""Constants shared by the design layer, the engine and the testbeds (NEPI 2 values)."""

AF_INET = 0
AF_INET6 = 1

TIME_NOW = "0s"

# A connection function returns this to be retried later in the same phase.
CONNECTION_DELAY = 0

ATTR_NEPI_TESTBED_ENVIRONMENT_SETUP = "_nepi_testbed_environment_setup"


class AttributeCategories:
    CATEGORY_DEPLOYMENT = "Deployment"


class FactoryCategories:
    CATEGORY_APPLICATIONS = "Applications"
    CATEGORY_CHANNELS = "Channels"
    CATEGORY_DEVICES = "Devices"
    CATEGORY_DELAY_MODELS = "Delay models"
    CATEGORY_ENERGY_MODELS = "Energy models"
    CATEGORY_ERROR_MODELS = "Error models"
    CATEGORY_MAC_MODELS = "Mac models"
    CATEGORY_MANAGERS = "Managers"
    CATEGORY_MOBILITY_MODELS = "Mobility models"
    CATEGORY_NODES = "Nodes"
    CATEGORY_LOSS_MODELS = "Loss models"
    CATEGORY_PHY_MODELS = "Phy models"
    CATEGORY_PROTOCOLS = "Protocols"
    CATEGORY_ROUTING = "Routing"
    CATEGORY_QUEUES = "Queues"
    CATEGORY_SERVICE_FLOWS = "Service Flows"
    CATEGORY_TUNNELS = "Tunnels"


class ApplicationStatus:
    STATUS_NOT_STARTED = 0
    STATUS_RUNNING = 1
    STATUS_FINISHED = 2
    STATUS_UNDETERMINED = 3


class TestbedStatus:
    STATUS_ZERO = 0
    STATUS_SETUP = 1
    STATUS_CREATED = 2
    STATUS_CONNECTED = 3
    STATUS_CROSS_CONNECTED = 4
    STATUS_CONFIGURED = 5
    STATUS_STARTED = 6
    STATUS_STOPPED = 7
    STATUS_FAILED = 8
    STATUS_UNRESPONSIVE = 9

    # The numbers are NEPI 2's wire values; this is the order phases really happen in.
    PHASE_ORDER = (STATUS_ZERO, STATUS_SETUP, STATUS_CREATED, STATUS_CONNECTED,
                   STATUS_CONFIGURED, STATUS_CROSS_CONNECTED, STATUS_STARTED,
                   STATUS_STOPPED)

    @classmethod
    def phase_index(cls, status: int) -> int:
        """Position of a status in the real deployment order (failed/unresponsive last)."""
        try:
            return cls.PHASE_ORDER.index(status)
        except ValueError:
            return len(cls.PHASE_ORDER)


class DeploymentConfiguration:
    MODE_SINGLE_PROCESS = "SINGLE"
    MODE_DAEMON = "DAEMON"
    ACCESS_SSH = "SSH"
    ACCESS_LOCAL = "LOCAL"
    ACCESS_TLS = "TLS"          # nepid only: TCP with mutual TLS to deployment_host:port
    ERROR_LEVEL = "Error"
    DEBUG_LEVEL = "Debug"
    POLICY_FAIL = "Fail"
    POLICY_RECOVER = "Recover"
    POLICY_RESTART = "Restart"

    DEPLOYMENT_MODE = "deployment_mode"
    DEPLOYMENT_COMMUNICATION = "deployment_communication"
    DEPLOYMENT_HOST = "deployment_host"
    DEPLOYMENT_USER = "deployment_user"
    DEPLOYMENT_PORT = "deployment_port"
    DEPLOYMENT_KEY = "deployment_key"
    DEPLOYMENT_KNOWN_HOSTS = "deployment_known_hosts"
    DEPLOYMENT_ENVIRONMENT_SETUP = "deployment_environment_setup"
    ROOT_DIRECTORY = "rootDirectory"
    USE_AGENT = "useAgent"
    USE_SUDO = "useSudo"
    LOG_LEVEL = "logLevel"
    RECOVER = "recover"
    RECOVERY_POLICY = "recoveryPolicy"
    CLEAN_ROOT = "cleanRoot"
    TLS_CA = "tls_ca"           # ACCESS_TLS: CA certificate the server must chain to
    TLS_CERT = "tls_cert"       # ACCESS_TLS: this client's certificate
    TLS_KEY = "tls_key"         # ACCESS_TLS: this client's private key


AC = AttributeCategories
FC = FactoryCategories
AS = ApplicationStatus
TS = TestbedStatus
DC = DeploymentConfiguration

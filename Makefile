# nepi — install, test, example, bench, lint, clean.
# `make install` needs root (or sudo) for the Debian packages.

PYTHON ?= python
EXAMPLE_OUT ?= build/mock-experiment.xml

# Tools the netns testbed, the traces, the daemons and `nepi plot` (graphviz) need.
DEB_PACKAGES = iproute2 iputils-ping tcpdump tshark iperf3 openssh-server openssh-client \
	procps systemd g++ graphviz
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: all install install-deb install-python test example example-design bench bench-deps lint \
	fuzz typeids clean hosts-up hosts-down

all: test

install: install-deb install-python

# apt-get runs only when a package is missing (then after one `apt-get update`).
install-deb:
	@missing=""; \
	for pkg in $(DEB_PACKAGES); do \
		dpkg -s "$$pkg" 2>/dev/null | grep -q '^Status: install ok installed' \
			|| missing="$$missing $$pkg"; \
	done; \
	if [ -z "$$missing" ]; then \
		echo "Debian packages already installed: $(DEB_PACKAGES)"; \
	else \
		echo "Installing Debian packages:$$missing"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

install-python:
	$(PYTHON) -m pip install -e '.[test,ns3]'
	@# compile the ns-3 shim once now rather than in the first experiment
	$(PYTHON) -m nepi.testbeds.ns3.shim

test:
	$(PYTHON) -m pytest -q tests

# The README's main example: a routed netns experiment run through nepid (needs root).
example:
	$(SUDO) $(PYTHON) examples/netns_routing.py run-output/netns-routing

# Design-only example on the mock testbeds: build, validate, write and show the XML.
example-design:
	@mkdir -p "$(dir $(EXAMPLE_OUT))"
	$(PYTHON) examples/mock_design.py "$(EXAMPLE_OUT)"
	$(PYTHON) -m nepi.cli.nepi_cmd validate "$(EXAMPLE_OUT)"
	$(PYTHON) -m nepi.cli.nepi_cmd show "$(EXAMPLE_OUT)"

# Simulated hosts for multi-host experiments (tests/simhosts.py; needs root): N network
# namespaces on a private bridge, each with its own sshd and home, listed one
# user@address:port a line in $(HOSTS_DIR)/hosts. hosts-down removes them by the record
# in $(HOSTS_DIR) (which must be outside your home directory).
N ?= 3
HOSTS_DIR ?= /run/nepi-hosts

hosts-up:
	$(SUDO) $(PYTHON) tests/simhosts.py up --count $(N) --dir $(HOSTS_DIR)

hosts-down:
	$(SUDO) $(PYTHON) tests/simhosts.py down --dir $(HOSTS_DIR)

# Extra Debian packages the benchmarks compare against (Mininet with Linux bridges).
bench-deps:
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y mininet bridge-utils pssh

bench:
	@found=0; \
	for script in bench/*.py; do \
		[ -f "$$script" ] || continue; \
		found=1; \
		echo "== $$script"; \
		$(PYTHON) "$$script" || exit 1; \
	done; \
	[ "$$found" = 1 ] || echo "no benchmarks in bench/ yet"

# Fuzz the design XML loader and netref parsing (tests/fuzz/fuzz_*.py) for FUZZ_SECONDS each;
# not part of `make test`. The corpus grows in $(FUZZ_DIR)/NAME (seeded from
# tests/fuzz/corpus/NAME); a crash is saved as $(FUZZ_DIR)/NAME-crash-* and fails the target.
FUZZ_SECONDS ?= 60
FUZZ_DIR ?= build/fuzz

fuzz:
	@$(PYTHON) -c 'import atheris' 2>/dev/null || $(PYTHON) -m pip install -e '.[fuzz]'
	@for harness in tests/fuzz/fuzz_*.py; do \
		name=$$(basename "$$harness" .py); name=$${name#fuzz_}; \
		mkdir -p "$(FUZZ_DIR)/$$name"; \
		echo "== $$harness ($(FUZZ_SECONDS) s)"; \
		$(PYTHON) "$$harness" "$(FUZZ_DIR)/$$name" "tests/fuzz/corpus/$$name" \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
			-print_final_stats=1 -artifact_prefix="$(FUZZ_DIR)/$$name-" || exit 1; \
	done

# Regenerate the ns3 testbed's TypeId table from the installed ns3 wheel (commit the result;
# tests/test_ns3_shim.py checks that the committed file is what this gives).
typeids:
	$(PYTHON) -m nepi.testbeds.ns3.gen_typeids nepi/testbeds/ns3/typeids.py

lint:
	@if $(PYTHON) -c 'import pyflakes' 2>/dev/null; then \
		$(PYTHON) -m pyflakes nepi tests examples; \
	else \
		echo "pyflakes is not installed; skipping lint"; \
	fi

# Build artefacts and caches only; never experiment root dirs or other user data.
clean:
	rm -rf build dist .pytest_cache ./*.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

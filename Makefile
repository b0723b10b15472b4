# Lamina developer commands. `make run` starts the embedded service; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: venv run test test-fast test-integration test-tempest bench lint sample-config services clean

$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(BIN)/lamina-aio --data-dir lamina-data --port 8776

# RabbitMQ, MariaDB, PostgreSQL, a single-node Ceph, a Keystone (its own venv, with
# memcached; deploy/keystone/README.md), tgtd (iSCSI targets, deploy/tgt/tgt-aio.sh) and the
# LVM commands (deploy/lvm/lvm-tools.sh):
# started when not running; Debian's rados/rbd bindings linked into the venv (PyPI has none).
# Nova and placement (their own venvs, deploy/nova/README.md) and Glance (deploy/glance/README.md)
# are only installed here: the fixtures of tests/integration/test_nova.py and test_glance.py
# start and stop them.
services: venv
	bash deploy/dev-services.sh start
	bash deploy/ceph/ceph-aio.sh install
	bash deploy/ceph/ceph-aio.sh start
	bash deploy/ceph/ceph-aio.sh pybind $(VENV)
	bash deploy/keystone/keystone-aio.sh install
	bash deploy/keystone/keystone-aio.sh start
	bash deploy/nova/nova-aio.sh install
	bash deploy/glance/glance-aio.sh install
	bash deploy/heat/heat-aio.sh install
	bash deploy/tgt/tgt-aio.sh start
	bash deploy/lvm/lvm-tools.sh install

REQUIRE_ALL := LAMINA_REQUIRE_CEPH=1 LAMINA_REQUIRE_KEYSTONE=1 LAMINA_REQUIRE_NOVA=1 LAMINA_REQUIRE_GLANCE=1 LAMINA_REQUIRE_HEAT=1 LAMINA_REQUIRE_TGT=1 LAMINA_REQUIRE_LVM=1
# The in-process layers run on both cores (pytest-xdist, a test file per worker: each file's
# stacks are its own, on ports and directories of their own); the integration layer runs
# alone, one test at a time: its deployments share fixed ports (Nova, Glance, Heat, tgt) and
# each already uses both cores. Both layers always run; the target fails if either did.
test: venv services
	$(REQUIRE_ALL) $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist loadfile tests/unit tests/functional $(PYTEST_ARGS); \
	in_process=$$?; \
	$(REQUIRE_ALL) $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS) && exit $$in_process

test-fast: venv
	$(BIN)/python -m pytest -q -x -p no:cacheprovider -n 2 --dist loadfile tests/unit tests/functional $(PYTEST_ARGS)

test-integration: venv services
	LAMINA_REQUIRE_CEPH=1 LAMINA_REQUIRE_KEYSTONE=1 LAMINA_REQUIRE_TGT=1 LAMINA_REQUIRE_LVM=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

# Tempest's volume API suite alone (make test runs it too, as tests/integration/test_tempest.py);
# deploy/tempest/README.md
test-tempest: venv services
	$(BIN)/python -m tests.tempest

bench: venv services
	$(BIN)/python -m bench.run --targets embedded,aio,deployed,cinder
	$(BIN)/python -m bench.rbd
	$(BIN)/python -m bench.actions
	$(BIN)/python -m bench.attach
	$(BIN)/python -m bench.backup --compressions zstd --rbd
	$(BIN)/python -m bench.images

lint: venv
	$(BIN)/ruff check .

sample-config: venv
	bash deploy/gen-sample-config.sh
	bash deploy/config/policy-sample-gen.sh

clean:
	rm -rf $(VENV) lamina-data build *.egg-info

# Shared build recipe for every Lambda function (SAM `BuildMethod: makefile`).
#
# `sam build` copies the function's CodeUri directory to a scratch directory, runs
# `make --makefile <CodeUri>/Makefile build-<LogicalId>` there and packages whatever the recipe
# leaves in $(ARTIFACTS_DIR). A function artifact is its handler module alone, byte-compiled for
# python3.13 like the layer (compile-pyc.sh): the `broker` package and every third-party
# dependency come from the BrokerLayer.
#
# By hand: make -C functions/create_session build-CreateSessionFunction ARTIFACTS_DIR=/tmp/out

FUNCTION_SOURCES := app.py
FUNCTIONS_DIR := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))

build-%:
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (run through sam build)" >&2; exit 2; }
	mkdir -p "$(ARTIFACTS_DIR)"
	cp $(FUNCTION_SOURCES) "$(ARTIFACTS_DIR)/"
	bash "$(FUNCTIONS_DIR)/compile-pyc.sh" "$(ARTIFACTS_DIR)" /var/task

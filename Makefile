# cloudkeep — the two commands of the quick start, and the rest.
#   make build  install the build dependencies (compiler, cmake, -dev libraries) and build
#   make demo   those plus the demo's tools (mkfs, loop devices); build, run the snapshot demo
#   make demo-mirror  those plus QEMU, the Debian kernel, busybox and etcd; build, run the mirror
#               demo (a VM keeps writing while its host is killed; automatic failover, as root)
#   make test   those plus every server the tests start and clang; build, run every test
#               (also under ASan+UBSan) and every fuzzer briefly
#   make bench  the test dependencies plus the anchors (restic, borg, sockperf, iperf3, spfquery …)
# Each target installs only its profile of scripts/install-deps.sh (build, demo, demo-mirror,
# test, bench).
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# These builds are the developers' and CI's: warnings are errors (a plain cmake
# build leaves CLOUDKEEP_WERROR off; CMAKE_FLAGS=-DCLOUDKEEP_WERROR=OFF overrides).
WERROR := -DCLOUDKEEP_WERROR=ON
# The install-deps.sh profile; each target below sets its own, and `deps`, a
# prerequisite of every build, runs once with the profile of the target asked for.
PROFILE := build
# Paths relative to the checkout, so that ccache shares objects between clones and builds.
export CCACHE_BASEDIR := $(CURDIR)
# Precompiled headers are cacheable only with these (ccache manual, "Precompiled headers").
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime

.PHONY: all deps build asan-build test unit-test asan-test fuzz fuzz-build demo demo-mirror bench format clean

all: build

deps:
	@bash scripts/install-deps.sh $(PROFILE)

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(WERROR) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

asan-build: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCLOUDKEEP_SANITIZE=ON $(WERROR) $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

fuzz-build: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOUDKEEP_FUZZ=ON $(WERROR) $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

# The whole suite: unit and integration tests, then the same under
# AddressSanitizer + UndefinedBehaviorSanitizer, then a short run of every
# libFuzzer target over its seed corpus.
test asan-build fuzz-build unit-test fuzz: PROFILE := test
test: build asan-build fuzz-build
	bash scripts/run-tests.sh $(BUILD)
	bash scripts/run-tests.sh $(ASAN_BUILD)
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) 10

unit-test: build
	cd $(BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

fuzz: fuzz-build
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) 300

demo: PROFILE := demo
demo: build
	bash scripts/demo.sh $(BUILD)/src/cli/cloudkeep

# The VM that survives its host: a qemu VM (TCG) whose disk is the mirror's NBD
# export keeps writing while the primary is SIGKILLed; the standby, fenced
# through an etcd the demo starts, takes the leader key and the service address
# and promotes itself; every acknowledged record is checked on it.
# Needs root (network namespaces); the VM's boot files are cached in $(BUILD)/demo-mirror-vm.
demo-mirror: PROFILE := demo-mirror
demo-mirror: build
	bash demo/mirror-vm/run-demo.sh $(BUILD)/src/cli/cloudkeep $(BUILD)

bench: PROFILE := bench
bench: build
	bash bench/run-all.sh $(BUILD)/src/cli/cloudkeep

format:
	find src tests fuzz bench \( -name '*.cpp' -o -name '*.h' \) -print0 | xargs -0 clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

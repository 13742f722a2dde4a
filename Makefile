# cloudkeep — the two commands of the quick start, and the rest.
#   make demo   install what is missing, build, run the snapshot demo
#   make test   install what is missing, build, run every test (also under ASan+UBSan)
#   make bench  benchmarks against the anchors (restic, borg, sockperf, iperf3, spfquery …)
SHELL := /bin/bash
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
# Paths relative to the checkout, so that ccache shares objects between clones and builds.
export CCACHE_BASEDIR := $(CURDIR)
# Precompiled headers are cacheable only with these (ccache manual, "Precompiled headers").
export CCACHE_SLOPPINESS := pch_defines,time_macros,include_file_mtime,include_file_ctime

.PHONY: all deps build asan-build test unit-test asan-test fuzz fuzz-build demo bench format clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

asan-build: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCLOUDKEEP_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j $(JOBS)

fuzz-build: deps
	CC=clang CXX=clang++ cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCLOUDKEEP_FUZZ=ON $(CMAKE_FLAGS)
	cmake --build $(FUZZ_BUILD) -j $(JOBS) --target fuzzers

# The whole suite: unit and integration tests, then the same under
# AddressSanitizer + UndefinedBehaviorSanitizer, then a short run of every
# libFuzzer target over its seed corpus.
test: build asan-build fuzz-build
	bash scripts/run-tests.sh $(BUILD)
	bash scripts/run-tests.sh $(ASAN_BUILD)
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) 10

unit-test: build
	cd $(BUILD) && ctest -L unit --output-on-failure -j $(JOBS)

fuzz: fuzz-build
	bash scripts/run-fuzzers.sh $(FUZZ_BUILD) 300

demo: build
	bash scripts/demo.sh $(BUILD)/src/cli/cloudkeep

bench: build
	bash bench/run-all.sh $(BUILD)/src/cli/cloudkeep

format:
	find src tests fuzz bench \( -name '*.cpp' -o -name '*.h' \) -print0 | xargs -0 clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)

# A thin layer over Meson + Ninja so that a fresh Debian 12 machine needs only
# `make run` or `make test`. The real build description is meson.build; the
# targets here install dependencies, configure a build directory once, and
# call the scripts that run things.
BUILD ?= build
BUILD_ASAN ?= build-asan
BUILDTYPE ?= debugoptimized

.PHONY: all deps build run test test-asan test-scale bench bench-quick bench-sync bench-watch bench-records bench-commits bench-blobs check-style clean

all: build

deps:
	bash scripts/deps.sh

$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) --buildtype=$(BUILDTYPE)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	BUILD=$(BUILD) bash scripts/run.sh

test: build
	bash scripts/test.sh $(BUILD)

# Only the scale-out tier (issue 8): PostgreSQL + Ceph RGW started for the
# run (scripts/services.sh), the e2e suites against 3 ferryd behind HAProxy,
# and tests/e2e/test_scale.py. `make test` runs it too, after the rest.
test-scale: build
	bash scripts/test.sh --scale $(BUILD)

$(BUILD_ASAN)/build.ninja: | deps
	meson setup $(BUILD_ASAN) --buildtype=$(BUILDTYPE) -Db_sanitize=address,undefined -Db_lundef=false

test-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)
	bash scripts/test.sh $(BUILD_ASAN)

# The transfer-engine suite of issue 4 (bench/transfer_bench.py, a few
# minutes at full sizes; bench-quick: smaller sizes, not comparable with the
# targets). bench-sync: the foundation's small/large sync benchmark.
# --fresh-fs: each group of figures on a new loop-mounted ext4 (root only;
# elsewhere the bench says so and uses /var/tmp). See bench/RESULTS.md.
BENCH_ARGS ?= --fresh-fs
bench: build
	python3 bench/transfer_bench.py --build $(BUILD) $(BENCH_ARGS)

bench-quick: build
	python3 bench/transfer_bench.py --build $(BUILD) --quick

# Issue 5: time from a device's death to its transfer records showing failed.
bench-records: build
	python3 bench/records_bench.py --build $(BUILD)

# Issue 8: commits per second and p99 latency, SQLite vs PostgreSQL, one
# instance vs three behind HAProxy; chunk PUT/GET to a folder vs Ceph RGW.
bench-commits: build
	python3 bench/commit_bench.py --build $(BUILD)

bench-blobs: build
	bash bench/blob_bench.sh $(BUILD)

bench-sync: build
	python3 bench/sync_bench.py --build $(BUILD)

# The real-time benchmarks (bench/RESULTS.md): propagation latency, idle
# cost of a client and of ferryd with 5,000 streams, 100,000-file start-up.
bench-watch: build
	python3 bench/latency.py --build $(BUILD)
	python3 bench/idle.py --build $(BUILD)
	python3 bench/startup.py --build $(BUILD)

check-style:
	bash scripts/check-style.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

#!/bin/sh
# The benchmark's old entry point, kept for whoever still types it: the
# benchmark is `make bench` now (tests/bench/README.md), which installs and
# builds what it needs first. Settings pass through the environment.
exec make -C "$(dirname "$0")/../.." bench

#!/usr/bin/env bash
# Sets up what is missing (with the real SSH clients the tests drive), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-clients
npm test

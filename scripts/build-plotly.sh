#!/usr/bin/env bash
# Rebuild assets/plotly-qms.min.js, the partial plotly.js bundle the pages load (a developer's
# step, not an install step: the built file is committed, so ./run and ./test need no Node).
# Run it after changing scripts/plotly-bundle/traces.json (a new trace type in a figure) or
# plotly.js's version in scripts/plotly-bundle/package.json (keep it equal to the version the
# Python plotly package bundles — tests/unit/test_plotly_bundle.py checks both).
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/plotly-bundle"
npm ci --no-audit --no-fund --loglevel=error
node build.js ../../assets/plotly-qms.min.js

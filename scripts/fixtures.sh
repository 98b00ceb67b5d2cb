#!/usr/bin/env bash
# Test fixtures from package registries: GitHub's recorded webhook deliveries, the npm
# package @octokit/webhooks-examples (pinned), into .cache/npm (git-ignored).
#
#   scripts/fixtures.sh        install when missing (a second call only checks a file)
#
# The webhook tests (tests/*/test_gh_*.py, test_webhooks*.py) read
# .cache/npm/node_modules/@octokit/webhooks-examples/api.github.com/index.json and skip
# with a hint when it is not there. Without npm this script says so and succeeds: only
# those tests are skipped.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="7.6.1"
dir="$root/.cache/npm"
stamp="$dir/.webhooks-examples-$version"
[[ -f "$stamp" && -f "$dir/node_modules/@octokit/webhooks-examples/api.github.com/index.json" ]] && exit 0
if ! command -v npm >/dev/null 2>&1; then
    echo "fixtures: npm not found; the GitHub webhook example tests will be skipped" >&2
    echo "          (Debian: apt-get install -y npm)" >&2
    exit 0
fi
mkdir -p "$dir"
[[ -f "$dir/package.json" ]] || printf '{"name": "qms-test-fixtures", "private": true}\n' >"$dir/package.json"
npm install --prefix "$dir" --no-audit --no-fund --silent --ignore-scripts --save-exact "@octokit/webhooks-examples@$version" >&2
rm -f "$dir"/.webhooks-examples-*
touch "$stamp"

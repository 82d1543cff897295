#!/usr/bin/env bash
# Set up (if needed) and run the test suite. This is the README's test command and CI's.
#
# The HTML report's browser test needs Chromium. Run as root on Debian/Ubuntu, this script
# installs the distribution's `chromium` package when no Chromium is on PATH (apt's own
# download; about a minute, stated in README). When it cannot (not root, no apt, apt
# unreachable) the tests still run, and pytest ends with one line saying the browser check
# did not run. OPTSEARCH_NO_BROWSER_INSTALL=1 skips the attempt.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

have_chromium() { command -v chromium || command -v chromium-browser || command -v google-chrome; }
if ! have_chromium >/dev/null && [ -z "${OPTSEARCH_NO_BROWSER_INSTALL:-}" ] \
        && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    start=$SECONDS
    echo "installing Chromium for the report's browser test (apt-get install chromium)..."
    if timeout 300 apt-get update -qq >/tmp/optsearch-apt.log 2>&1 \
            && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq \
               --no-install-recommends chromium >>/tmp/optsearch-apt.log 2>&1; then
        echo "Chromium installed in $((SECONDS - start)) s"
    else
        echo "could not install Chromium (see /tmp/optsearch-apt.log); the tests run without it"
    fi
fi
exec .venv/bin/python -m pytest "$@"

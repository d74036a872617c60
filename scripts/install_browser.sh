#!/usr/bin/env bash
# Headless Chromium for the report's browser tests (tests/test_report.py), from Debian's packages.
# Does nothing when a Chromium is already on PATH; says why and exits 0 where none can be installed
# (not root, no apt-get): the browser tests then skip with their reason.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if command -v "$name" >/dev/null 2>&1; then
    echo "browser: $(command -v "$name")"
    exit 0
  fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: no Chromium and no way to install one here (needs root and apt-get); the browser tests will skip"
  exit 0
fi
echo "browser: installing Debian's chromium (once per machine)"
if apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; then
  echo "browser: $(command -v chromium)"
else
  echo "browser: apt-get could not install chromium; the browser tests will skip"
fi

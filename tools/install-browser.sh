#!/usr/bin/env bash
# Install Debian's chromium (the headless browser the class report's test opens the page in)
# when it is missing and we may.
set -u
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium (headless browser for the report's test) with apt-get"
  apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null && exit 0
  echo "WARNING: apt-get could not install chromium" >&2
fi
echo "WARNING: chromium is not installed: the test that opens the class report in a browser" \
     "is skipped. Install it: apt-get install chromium" >&2
exit 0

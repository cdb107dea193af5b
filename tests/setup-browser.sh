#!/usr/bin/env bash
# Install what tests/test_serve.py's browser test drives: Debian's Chromium and its ChromeDriver (Playwright's and
# Selenium's own browser downloads reach no host from our machines). Without them that test is skipped, and says why.
set -euo pipefail
if command -v chromium > /dev/null && command -v chromedriver > /dev/null; then
  echo "setup-browser: $(chromium --version) and chromedriver already installed"; exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends chromium chromium-driver > /dev/null \
  || { apt-get update -q > /dev/null && apt-get install -y -q --no-install-recommends chromium chromium-driver > /dev/null; }
echo "setup-browser: installed $(chromium --version)"

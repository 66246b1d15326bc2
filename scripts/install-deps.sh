#!/usr/bin/env bash
# Debian packages camelid builds and tests with. Safe to run again.
#   ./scripts/install-deps.sh          what the README's two commands need
#   ./scripts/install-deps.sh clang    also clang with its sanitizer and libFuzzer runtimes (CI, fuzz.sh)
#   ./scripts/install-deps.sh test     also what some tests drive (headless Chromium; CI installs it)
set -euo pipefail
pkgs=(build-essential cmake pkg-config git ca-certificates
      nlohmann-json3-dev libpcre2-dev libcpp-httplib-dev libcli11-dev libutf8proc-dev
      libgtest-dev libgmock-dev libbenchmark-dev libomp-dev zlib1g-dev libedit-dev
      sentencepiece curl
      libopenmpi-dev openmpi-bin  # data-parallel training (mpirun -np N camelid train)
      python3-jinja2)  # the chat templates' oracle test (jinja2 as transformers runs it)
for group in "$@"; do
  case "$group" in
    clang) pkgs+=(clang libclang-rt-dev) ;;
    # Test oracles and drivers, not needed to build or run camelid: the chat page's end-to-end
    # test drives headless Chromium through selenium (it is skipped without them, outside CI).
    test) pkgs+=(chromium chromium-driver python3-selenium) ;;
    *) echo "install-deps.sh: unknown group '$group' (clang, test)" >&2; exit 1 ;;
  esac
done
# node + npm run the official openai client test; keep a node that is already installed.
command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

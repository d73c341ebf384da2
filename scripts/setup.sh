#!/usr/bin/env bash
# Idempotent setup: Debian packages the local stack needs, then .venv from requirements-lock.txt.
# A second run with nothing missing takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(mariadb-server mariadb-client libmariadb-java libmariadb-dev pkg-config chromium chromium-driver)
command -v java >/dev/null 2>&1 || APT_PACKAGES+=(default-jre-headless)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo)
  else
    echo "[setup] error: these Debian packages are missing and I can't install them (not root, no passwordless sudo):" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "[setup] error: Python 3.11 is required (the lock is for 3.11); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

quiet_pip() {  # quiet_pip DIR ARGS...: pip install without the machine's notes about absent local index folders
  local dir=$1; shift
  "$dir/bin/python" -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

install_venv() {  # install_venv DIR LOCKFILE [editable]
  local dir=$1 lock=$2 editable=${3:-}
  local stamp="$dir/.installed-$(sha256sum "$lock" pyproject.toml | sha256sum | cut -c1-16)"
  [ -e "$stamp" ] && return 0
  echo "[setup] installing $lock into $dir (first run: a few minutes)"
  [ -x "$dir/bin/python" ] || "$PYTHON" -m venv "$dir"
  quiet_pip "$dir" --upgrade pip
  quiet_pip "$dir" -r "$lock"
  if [ -n "$editable" ]; then quiet_pip "$dir" --no-deps -e .; fi
  rm -f "$dir"/.installed-*
  touch "$stamp"
}
# Terraform provisions both targets (the local stack too). It is not a Debian package: it must be on the PATH.
if ! command -v terraform >/dev/null 2>&1; then
  echo "[setup] warning: terraform (>= 1.10) is not on the PATH; every provisioning task needs it:" >&2
  echo "  https://developer.hashicorp.com/terraform/install (or set TERRAFORM_BIN)" >&2
fi

install_venv .venv requirements-lock.txt editable
install_venv .venv-checkov requirements-checkov.lock
echo "[setup] ready: .venv ($(.venv/bin/python --version)), .venv-checkov"

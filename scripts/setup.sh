#!/usr/bin/env bash
# Idempotent setup: Terraform checked (it cannot be installed from here), the Debian packages the local stack needs,
# then .venv from requirements-lock.txt.
# A second run with nothing missing takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

python_only=""
case "${1:-}" in
  "") ;;
  --python-only) python_only=1 ;; # `make package`: the Lambda build needs Python and pip, not the local stack
  -h | --help)
    echo "usage: scripts/setup.sh [--python-only]"
    echo "  Terraform checked, missing Debian packages installed, .venv and .venv-checkov from their locks."
    echo "  --python-only: .venv only (no Terraform, no Debian packages): what \`make package\` needs"
    exit 0
    ;;
  *)
    echo "[setup] error: unknown argument $1 (scripts/setup.sh --help)" >&2
    exit 2
    ;;
esac

if [ -z "$python_only" ]; then
# Terraform provisions both targets (the local stack too) and the test suite runs it: a machine without it is not set
# up. Neither Debian nor PyPI ships it, so it is installed by hand (HashiCorp's page) and checked here, first.
terraform_bin=${TERRAFORM_BIN:-terraform} # an empty TERRAFORM_BIN is unset, as for the provisioner
no_usable_terraform() { # no_usable_terraform WHAT: say what is wrong and how to fix it, then stop
  echo "[setup] error: $1" >&2
  echo "  install Terraform >= 1.10 on the PATH (https://developer.hashicorp.com/terraform/install)," \
    "or set TERRAFORM_BIN to the path of one" >&2
  exit 1
}
if ! command -v "$terraform_bin" >/dev/null 2>&1; then
  if [ -n "${TERRAFORM_BIN:-}" ]; then
    no_usable_terraform "TERRAFORM_BIN=$TERRAFORM_BIN is not an executable"
  fi
  no_usable_terraform "terraform is not on the PATH"
fi
terraform_version=$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$terraform_bin" version 2>/dev/null |
  sed -n '1s/^Terraform v\([0-9]*\.[0-9]*\)\..*/\1/p') || true
IFS=. read -r tf_major tf_minor <<<"$terraform_version"
if [ -z "$tf_minor" ]; then
  no_usable_terraform "\`$terraform_bin version\` does not name a Terraform version"
elif ((tf_major < 1 || (tf_major == 1 && tf_minor < 10))); then
  no_usable_terraform "$terraform_bin is Terraform $terraform_version"
fi

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
  # apt's and dpkg's progress go to a log file, not the screen: one line per phase here, the log's end on a failure
  apt_log=$(mktemp "${TMPDIR:-/tmp}/recsys-setup-apt.XXXXXX.log")
  if ! { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$apt_log" 2>&1; then
    echo "[setup] error: apt-get failed; the end of its log ($apt_log):" >&2
    tail -n 30 "$apt_log" >&2
    exit 1
  fi
  rm -f "$apt_log"
  echo "[setup] Debian packages installed"
fi

fi # python_only

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
if [ -n "$python_only" ]; then
  # what the Lambda build imports (recsys, recsys_serving, their settings loader, cryptography for the CA bundle), at
  # the lock's versions:
  # the whole lock would build mysqlclient from source, which needs Debian's libmariadb-dev and pkg-config
  if ! ls .venv/.installed-* >/dev/null 2>&1; then
    echo "[setup] installing the Lambda build's packages into .venv"
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    quiet_pip .venv --upgrade pip
    # cryptography for the CA bundle; pydantic-settings and what it needs for the settings loader (recsys.config)
    mapfile -t packaging < <(grep -E '^(cryptography|cffi|pycparser|pydantic|pydantic-settings|pydantic_core|annotated-types|typing-inspection|python-dotenv|typing_extensions)==' requirements-lock.txt)
    quiet_pip .venv "${packaging[@]}"
    quiet_pip .venv --no-deps -e .
  fi
  echo "[setup] ready: .venv ($(.venv/bin/python --version)) for make package"
  exit 0
fi
install_venv .venv requirements-lock.txt editable
install_venv .venv-checkov requirements-checkov.lock
echo "[setup] ready: .venv ($(.venv/bin/python --version)), .venv-checkov"

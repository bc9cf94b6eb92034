#!/usr/bin/env bash
# Install what a fresh Debian/Ubuntu machine lacks for napari-bigvol, idempotently:
# the system libraries Qt and OpenGL need under Xvfb, a virtual environment in .venv and
# the package with the given extras. Sourced by .ci/test and .ci/demo.
#   usage: source .ci/setup.sh EXTRAS      (EXTRAS such as "test" or "all")
set -euo pipefail

extras="${1:-all}"
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
apt_packages=(
  xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0
  libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0
  libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3 libfontconfig1
)

missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

python_bin="${PYTHON:-python3}"
"$python_bin" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "[setup] napari-bigvol needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
}
if [ ! -x "$repo/.venv/bin/python" ]; then
  echo "[setup] creating $repo/.venv"
  "$python_bin" -m venv "$repo/.venv"
  "$repo/.venv/bin/python" -m pip install -q --upgrade pip
fi
echo "[setup] installing napari-bigvol[$extras] into .venv"
"$repo/.venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo[$extras]"

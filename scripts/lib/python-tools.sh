# Sourced by scripts/test, scripts/container-test and scripts/api-test: the
# Python tools of tests/requirements.txt in a virtual environment of their
# own, never the system's Python (Debian's is "externally managed", PEP 668).
# The environment lives in the user's cache, one per version of the
# requirements, so a fresh clone reuses it:
#   ${CFMINT_TOOLS_DIR:-~/.cache/cfmint}/python-<hash of tests/requirements.txt>
# Its bin/ goes first on PATH, so `python3` is the environment's.
#
# Expects the checkout as the working directory.

use_python_tools() {
  local requirements=tests/requirements.txt hash dir
  hash=$(sha256sum "$requirements" | cut -c1-12)
  dir=${CFMINT_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cfmint}/python-$hash
  if [ ! -e "$dir/.complete" ]; then
    echo "==> Python tools into $dir (tests/requirements.txt)"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/python3" -m pip install --quiet --disable-pip-version-check \
      --no-input -r "$requirements"
    touch "$dir/.complete"
  fi
  export PATH="$dir/bin:$PATH"
  export VIRTUAL_ENV=$dir
}

# Shared by scripts/test, scripts/demo and bench/run: the pinned Python
# environment (moto, pytest) in .venv, the benchmark's peer tools in
# .venv-peers, and a moto server on a free loopback port.
# Source it from the repository root.

# A virtual environment DIR with the pinned REQUIREMENTS installed, recreated
# when the file changes (its digest is kept in DIR) or when BIN, a program the
# requirements install, is missing.
venv_from() {
    local dir=$1 req=$2 bin=$3
    local python="${PYTHON:-python3}"
    local stamp=$dir/.requirements.sha256
    local want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ ! -x $dir/bin/$bin || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        rm -rf "$dir"
        "$python" -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req"
        echo "$want" > "$stamp"
    fi
}

ensure_venv() {
    venv_from .venv tests/e2e/requirements.txt python
}

# The benchmark's peer tools (bench/requirements-peers.txt: metabadger and its
# pinned dependencies) in their own .venv-peers, apart from the tests' .venv:
# metabadger's boto3 and pandas are not the tests' business, and moto pins
# its own boto3.
ensure_peers_venv() {
    venv_from .venv-peers bench/requirements-peers.txt metabadger
}

# Installs Debian package PACKAGE with apt-get (as root, or through sudo),
# saying so and WHY; without either, stops with the command to run.
apt_install() {
    local package=$1 why=$2
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "$package is missing and this user cannot install it: run 'sudo apt-get install $package'" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "$package is missing: installing Debian's $package package with apt-get ($why)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q "$package" >/dev/null ||
        { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q "$package" >/dev/null; }
}

# GNU time (/usr/bin/time -v), which the benchmark reads peak RSS from.
ensure_gnu_time() {
    /usr/bin/time -v true >/dev/null 2>&1 && return
    apt_install time "GNU time, for the benchmark's peak RSS"
}

# The browser test needs Debian's chromium: the one system package the tests
# need besides GNU time.
ensure_chromium() {
    if command -v chromium >/dev/null; then
        chromium --version 2>/dev/null || true
        return
    fi
    apt_install chromium "for tests/e2e/test_browser.py"
    chromium --version
}

# Starts moto_server in the background; sets MOTO_PID and MOTO_ENDPOINT and
# stops it when the calling script exits, also on failure or Ctrl-C.
start_moto() {
    local port log
    port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log=$(mktemp -t moto.XXXXXX.log)
    .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PID=$!
    trap 'kill "$MOTO_PID" 2>/dev/null || true; wait "$MOTO_PID" 2>/dev/null || true' EXIT
    trap 'exit 130' INT TERM
    MOTO_ENDPOINT="http://127.0.0.1:$port"
    .venv/bin/python - "$MOTO_ENDPOINT" <<'PY'
import sys, time, urllib.request
url = sys.argv[1] + "/moto-api/"
deadline = time.time() + 60
while True:
    try:
        urllib.request.urlopen(url, timeout=2)
        break
    except Exception:
        if time.time() > deadline:
            sys.exit("moto did not answer within 60 s")
        time.sleep(0.2)
PY
    echo "moto listening on $MOTO_ENDPOINT (log: $log)" >&2
}

# Shared by scripts/test, scripts/demo and bench/run: the pinned Python
# environment (moto, pytest) in .venv, the benchmark's peer tools in
# .venv-peers, and a moto server on a free loopback port.
# Source it from the repository root.

ensure_venv() {
    local python="${PYTHON:-python3}"
    local req=tests/e2e/requirements.txt
    local stamp=.venv/.requirements.sha256
    local want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        rm -rf .venv
        "$python" -m venv .venv
        .venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
        echo "$want" > "$stamp"
    fi
}

# The benchmark's peer tools (bench/requirements-peers.txt: metabadger and its
# pinned dependencies) in their own .venv-peers, apart from the tests' .venv:
# metabadger's boto3 and pandas are not the tests' business, and moto pins
# its own boto3. Recreated when the requirements file changes.
ensure_peers_venv() {
    local python="${PYTHON:-python3}"
    local req=bench/requirements-peers.txt
    local stamp=.venv-peers/.requirements.sha256
    local want
    want=$(sha256sum "$req" | cut -d' ' -f1)
    if [[ ! -x .venv-peers/bin/metabadger || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        rm -rf .venv-peers
        "$python" -m venv .venv-peers
        .venv-peers/bin/pip install --quiet --disable-pip-version-check -r "$req"
        echo "$want" > "$stamp"
    fi
}

# The browser test needs Debian's chromium. Installs it when missing (as
# root, or through sudo), and says so: it is the one system package the
# tests need.
# GNU time (/usr/bin/time -v), which the benchmark reads peak RSS from.
ensure_gnu_time() {
    /usr/bin/time -v true >/dev/null 2>&1 && return
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "GNU time is missing and this user cannot install it: run 'sudo apt-get install time'" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "GNU time is missing: installing Debian's time package with apt-get (for the regression check)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q time >/dev/null || { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q time >/dev/null; }
}

ensure_chromium() {
    if command -v chromium >/dev/null; then
        chromium --version 2>/dev/null || true
        return
    fi
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null || { echo "chromium is missing and this user cannot install it: run 'sudo apt-get install chromium'" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "chromium is missing: installing Debian's chromium package with apt-get (for tests/e2e/test_browser.py)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -q chromium >/dev/null ||
        { $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null; }
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

#!/bin/sh
# Makes a fresh clone runnable: checks Node, installs the locked npm packages, builds dist/.
# Idempotent and fast when nothing changed (stamps keyed on the lockfile and the sources).
set -eu
cd "$(dirname "$0")/.."

# Parallel callers (test workers, a second terminal) wait for one another instead of racing npm ci.
if command -v flock >/dev/null 2>&1 && [ -z "${KILN_READY_LOCKED:-}" ]; then
  export KILN_READY_LOCKED=1
  exec flock .kiln-ready.lock sh "$0" "$@"
fi

major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$major" -lt 20 ]; then
  echo "Kiln needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))." >&2
  exit 1
fi

# Debian packages the tests use, installed when running as root (CI); listed one per line.
if [ -s scripts/debian-packages.txt ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $(grep -v '^#' scripts/debian-packages.txt); do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "Installing Debian packages:$missing" >&2
    # Packages must not start their services (postgresql, nginx): tests start private ones on loopback.
    policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && policy=1
    fi
    status=0
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2 || status=$?
    [ -n "$policy" ] && rm -f /usr/sbin/policy-rc.d
    [ "$status" = 0 ] || exit "$status"
  fi
fi

stamp=node_modules/.kiln-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "Installing npm packages (first run compiles better-sqlite3; about a minute)..." >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" > "$stamp"
fi

if [ ! -f dist/.build-stamp ] || [ -n "$(find src package.json tsconfig.json tsconfig.build.json -newer dist/.build-stamp -print -quit)" ]; then
  echo "Building..." >&2
  rm -rf dist
  npx tsc -p tsconfig.build.json
  touch dist/.build-stamp
fi

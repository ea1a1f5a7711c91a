#!/usr/bin/env bash
# Installs the system and npm packages that `npm test` / `npm start` need, or says in one line
# exactly what is missing. Usage: ensure-deps.sh test|start
set -uo pipefail
cd "$(dirname "$0")/.."
need=()
command -v mpv >/dev/null || need+=(mpv)
command -v mosquitto >/dev/null || need+=(mosquitto)
command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
command -v ffmpeg >/dev/null || need+=(ffmpeg)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v hostname >/dev/null || need+=(hostname)
# §10 text alerts are drawn with DejaVu Sans Bold, named explicitly (agent/alerts/text-card.ts).
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || need+=(fonts-dejavu-core)
if [ "${1:-}" = test ]; then
  command -v mcopy >/dev/null || need+=(mtools)
  command -v mkfs.vfat >/dev/null || need+=(dosfstools)
  command -v sfdisk >/dev/null || need+=(fdisk)
  command -v systemd-analyze >/dev/null || need+=(systemd)
  # notify.test.ts receives sd_notify datagrams with python3 (Node cannot bind AF_UNIX dgram);
  # provision-install.test.ts packs a .tar.xz like Node's release tarballs.
  command -v python3 >/dev/null || need+=(python3)
  command -v xz >/dev/null || need+=(xz-utils)
  # link-tls.test.ts makes a throwaway CA and certificates.
  command -v openssl >/dev/null || need+=(openssl)
  # agent-mpv-crash.test.ts finds the agent's mpv child with pgrep.
  command -v pgrep >/dev/null || need+=(procps)
  # test/chaos steps a running agent's wall clock with libfaketime (clock scenario).
  command -v faketime >/dev/null || need+=(faketime)
  # fleet-metrics*.test.ts: promtool lints /metrics and unit-tests the alert rules; prometheus scrapes it.
  command -v promtool >/dev/null || need+=(prometheus)
  # fleet-pg*.test.ts and the fleet-ingest bench run a throwaway cluster (initdb, pg_ctl: not on PATH in Debian).
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  # fleet-noc-*.test.ts drive Debian's Chromium with playwright-core (test/helpers/browser.ts; no
  # browser download). CHROMIUM_PATH names another binary instead.
  [ -n "${CHROMIUM_PATH:-}" ] || command -v chromium >/dev/null || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: ${need[*]}" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}") >/tmp/signage-apt.log 2>&1 \
      || { echo "apt-get install failed for: ${need[*]} (see /tmp/signage-apt.log)" >&2; exit 1; }
  else
    echo "missing system packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
if [ ! -d node_modules/mqtt ] || [ ! -f node_modules/sqlite3/build/Release/node_sqlite3.node ] || [ ! -f node_modules/unix-dgram/build/Release/unix_dgram.node ]; then
  echo "installing npm packages (sqlite3 compiles from source: ~2 min)" >&2
  npm ci --no-audit --no-fund >/tmp/signage-npm.log 2>&1 || { echo "npm ci failed (see /tmp/signage-npm.log)" >&2; exit 1; }
fi
exit 0

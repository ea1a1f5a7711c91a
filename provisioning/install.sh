#!/usr/bin/env bash
# signage-agent installer for Raspberry Pi OS Lite (Bookworm, 64-bit) and Debian 12.
# Idempotent: run it again to upgrade or repair; what is already right is left alone.
#
#   sudo ./install.sh [--bundle signage-agent-X.Y.Z.tgz] [--node-tarball node-vX-linux-ARCH.tar.xz --node-sha256 HEX]
#                     [--config signage-agent.json] [--secret FILE]... [--arch arm64|x64] [--no-apt] [--no-start]
#   ./install.sh --dry-run --root DIR [same options]   # installs into DIR only: no apt, no useradd, no systemctl
#
# Without --bundle / --node-tarball it takes the one signage-agent-*.tgz and node-v*-linux-ARCH.tar.{xz,gz}
# lying beside this script; the Node checksum comes from --node-sha256 or a node.sha256 / SHASUMS256.txt
# beside the tarball (the pin: "<sha256>  <file name>" lines). A tarball whose sha256 differs is refused.
#
# Layout:
#   /opt/signage-agent/node-vX-linux-ARCH/   pinned Node (Debian Bookworm's own nodejs is 18, end of life)
#   /opt/signage-agent/node -> node-vX-...   the one in use
#   /opt/signage-agent/releases/{version}/   the agent (a release tarball, or npm pack bundle + production dependencies),
#                                            owned by the service user: over-the-air updates add releases here
#   /opt/signage-agent/releases/current      -> {version}, what runs; releases/previous -> the one before
#   /opt/signage-agent/current               -> releases/current (the wrappers run this)
#   /opt/signage-agent/bin/                  signage-agent, signagectl, signage-firstboot wrappers, signage-update-gate
#   /etc/signage-agent/                      0750 root:signage; signage-agent.json 0640, secrets 0600 signage
#   /var/lib/signage-agent/                  0750 signage:signage, the agent's data (store, media cache)
#   /etc/systemd/system/signage-agent{,-firstboot}.service, enabled
set -euo pipefail
umask 022

SELF_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=""
DRY_RUN=0
BUNDLE=""
NODE_TARBALL=""
NODE_SHA256=""
CONFIG=""
SECRETS=()
ARCH=""
APT=1
START=1
USER_NAME=signage
GROUPS_WANTED=(video render audio)

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT=${2:?--root DIR}; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --bundle) BUNDLE=${2:?--bundle FILE}; shift 2 ;;
    --node-tarball) NODE_TARBALL=${2:?--node-tarball FILE}; shift 2 ;;
    --node-sha256) NODE_SHA256=${2:?--node-sha256 HEX}; shift 2 ;;
    --config) CONFIG=${2:?--config FILE}; shift 2 ;;
    --secret) SECRETS+=("${2:?--secret FILE}"); shift 2 ;;
    --arch) ARCH=${2:?--arch arm64|x64}; shift 2 ;;
    --no-apt) APT=0; shift ;;
    --no-start) START=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done

if [ "$DRY_RUN" = 1 ] && [ -z "$ROOT" ]; then die "--dry-run needs --root DIR (it installs into that folder)"; fi
if [ -n "$ROOT" ] && [ "$DRY_RUN" = 0 ]; then die "--root DIR is only for --dry-run"; fi
if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then die "run as root (sudo), or use --dry-run --root DIR"; fi
if [ -n "$ROOT" ]; then mkdir -p "$ROOT"; ROOT=$(cd "$ROOT" && pwd); fi

# --- what the machine would run; in --dry-run it is written to $ROOT/.signage-install-plan instead
PLAN=()
sys() {
  if [ "$DRY_RUN" = 1 ]; then PLAN+=("$*"); else echo "+ $*"; "$@"; fi
}
changed=0
note() { echo "$1 $2"; if [ "$1" = "+" ]; then changed=$((changed + 1)); fi; }

# --- architecture and inputs
if [ -z "$ARCH" ]; then
  case "$(uname -m)" in
    aarch64|arm64) ARCH=arm64 ;;
    x86_64|amd64) ARCH=x64 ;;
    *) die "unsupported machine $(uname -m): 64-bit Raspberry Pi OS (arm64) or x86-64 only (Node has no 32-bit ARM builds)" ;;
  esac
fi
case "$ARCH" in arm64|x64) ;; *) die "--arch must be arm64 or x64" ;; esac

one_file() { # one_file GLOB... → the single match beside the script, or nothing
  local found=() f
  for f in "$@"; do [ -e "$f" ] && found+=("$f"); done
  if [ ${#found[@]} -gt 1 ]; then die "several candidates: ${found[*]} (name one explicitly)"; fi
  if [ ${#found[@]} -eq 1 ]; then echo "${found[0]}"; fi
}
[ -n "$BUNDLE" ] || BUNDLE=$(one_file "$SELF_DIR"/signage-agent-*.tgz "$SELF_DIR"/signage-agent-*.tar.gz)
[ -n "$BUNDLE" ] || die "no agent bundle: give --bundle FILE (npm run release or npm pack output) or put signage-agent-*.tgz beside install.sh"
[ -f "$BUNDLE" ] || die "bundle $BUNDLE not found"
[ -n "$NODE_TARBALL" ] || NODE_TARBALL=$(one_file "$SELF_DIR"/node-v*-linux-"$ARCH".tar.xz "$SELF_DIR"/node-v*-linux-"$ARCH".tar.gz)
[ -n "$NODE_TARBALL" ] || die "no Node tarball for $ARCH: give --node-tarball FILE --node-sha256 HEX or put node-vX-linux-$ARCH.tar.xz beside install.sh"
[ -f "$NODE_TARBALL" ] || die "Node tarball $NODE_TARBALL not found"
NODE_NAME=$(basename "$NODE_TARBALL")
NODE_DIR_NAME=${NODE_NAME%.tar.xz}; NODE_DIR_NAME=${NODE_DIR_NAME%.tar.gz}
[[ "$NODE_DIR_NAME" =~ ^node-v[0-9]+\.[0-9]+\.[0-9]+-linux-(arm64|x64)$ ]] || die "unexpected Node tarball name $NODE_NAME (want node-vX.Y.Z-linux-ARCH.tar.xz)"
NODE_MAJOR=$(echo "$NODE_DIR_NAME" | sed -E 's/^node-v([0-9]+)\..*/\1/')
[ "$NODE_MAJOR" -ge 20 ] || die "$NODE_NAME: the agent needs Node 20 or later"
if [ -z "$NODE_SHA256" ]; then
  for pin in "$(dirname "$NODE_TARBALL")/node.sha256" "$(dirname "$NODE_TARBALL")/SHASUMS256.txt"; do
    if [ -f "$pin" ]; then NODE_SHA256=$(awk -v n="$NODE_NAME" '$2 == n || $2 == "*" n { print $1 }' "$pin" | head -1); fi
    [ -n "$NODE_SHA256" ] && break
  done
fi
[ -n "$NODE_SHA256" ] || die "no pinned sha256 for $NODE_NAME: give --node-sha256 HEX or a node.sha256 file beside it"
actual=$(sha256sum "$NODE_TARBALL" | cut -d' ' -f1)
[ "$actual" = "$(echo "$NODE_SHA256" | tr 'A-F' 'a-f')" ] || die "$NODE_NAME: sha256 $actual does not match the pinned $NODE_SHA256; refusing it"
BUNDLE_SHA=$(sha256sum "$BUNDLE" | cut -d' ' -f1)

OPT="$ROOT/opt/signage-agent"
ETC="$ROOT/etc/signage-agent"
VAR="$ROOT/var/lib/signage-agent"
UNITS="$ROOT/etc/systemd/system"

# --- helpers that change a file only when its content or mode differs
put_file() { # put_file SRC DEST MODE
  local src=$1 dest=$2 mode=$3
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c %a "$dest")" = "$(printf '%o' "0$mode")" ]; then note "=" "$dest"; return; fi
  mkdir -p "$(dirname "$dest")"
  local tmp; tmp=$(mktemp "$(dirname "$dest")/.install.XXXXXX")
  cat "$src" > "$tmp"; chmod "$mode" "$tmp"; sync -f "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$dest"
  note "+" "$dest"
}
put_text() { # put_text DEST MODE <<< content
  local tmp; tmp=$(mktemp); cat > "$tmp"; put_file "$tmp" "$1" "$2"; rm -f "$tmp"
}
put_dir() { # put_dir DIR MODE
  if [ -d "$1" ] && [ "$(stat -c %a "$1")" = "$(printf '%o' "0$2")" ]; then note "=" "$1/"; return; fi
  mkdir -p "$1"; chmod "$2" "$1"; note "+" "$1/"
}
put_link() { # put_link TARGET LINK
  if [ -L "$2" ] && [ "$(readlink "$2")" = "$1" ]; then note "=" "$2"; return; fi
  mkdir -p "$(dirname "$2")"; ln -sfn "$1" "$2"; note "+" "$2 -> $1"
}

# --- 1. system packages and the user (commands only; in --dry-run they go to the plan)
if [ "$APT" = 1 ]; then
  # mpv plays; python3/make/g++ build sqlite3 when no prebuilt binary is reachable; ffmpeg and
  # fonts-dejavu-core render §10 text alerts (Pi OS Lite has no font with Vietnamese letters).
  # Only what is missing is fetched, so a re-run on a box without network still works.
  PKGS=(mpv ffmpeg fonts-dejavu-core ca-certificates xz-utils python3 make g++)
  missing=()
  for p in "${PKGS[@]}"; do
    if [ "$DRY_RUN" = 1 ] || ! dpkg -s "$p" >/dev/null 2>&1; then missing+=("$p"); fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    sys apt-get update
    sys env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
fi
for g in "${GROUPS_WANTED[@]}"; do
  if [ "$DRY_RUN" = 1 ] || ! getent group "$g" >/dev/null; then sys groupadd --system -f "$g"; fi
done
if [ "$DRY_RUN" = 1 ] || ! id -u "$USER_NAME" >/dev/null 2>&1; then
  sys useradd --system --home-dir /var/lib/signage-agent --no-create-home --shell /usr/sbin/nologin --user-group "$USER_NAME"
fi
if [ "$DRY_RUN" = 1 ] || [ "$(id -nG "$USER_NAME" | tr ' ' '\n' | grep -cxE 'video|render|audio')" != 3 ]; then
  sys usermod --append --groups "$(IFS=,; echo "${GROUPS_WANTED[*]}")" "$USER_NAME"
fi
# No password, no shell: the account only runs the service.
sys passwd --lock "$USER_NAME"

# --- 2. Node, unpacked once per version
put_dir "$OPT" 755
if [ -f "$OPT/$NODE_DIR_NAME/.sha256" ] && [ "$(cat "$OPT/$NODE_DIR_NAME/.sha256")" = "$actual" ]; then
  note "=" "$OPT/$NODE_DIR_NAME/"
else
  tmp=$(mktemp -d "$OPT/.node.XXXXXX")
  case "$NODE_NAME" in *.xz) tar -xJf "$NODE_TARBALL" -C "$tmp" --no-same-owner ;; *) tar -xzf "$NODE_TARBALL" -C "$tmp" --no-same-owner ;; esac
  [ -x "$tmp/$NODE_DIR_NAME/bin/node" ] || { rm -rf "$tmp"; die "$NODE_NAME holds no $NODE_DIR_NAME/bin/node"; }
  echo "$actual" > "$tmp/$NODE_DIR_NAME/.sha256"
  rm -rf "$OPT/$NODE_DIR_NAME"; mv "$tmp/$NODE_DIR_NAME" "$OPT/$NODE_DIR_NAME"; rm -rf "$tmp"
  note "+" "$OPT/$NODE_DIR_NAME/"
fi
put_link "$NODE_DIR_NAME" "$OPT/node"

# --- 3. the agent: one release directory per version, switched in by symlinks (docs/updates.md)
REL="$OPT/releases"
put_dir "$REL" 755
relink() { # relink NAME VERSION: a temp link renamed over the old one, so there is never no link
  ln -sfn "$2" "$REL/.$1.tmp" && mv -Tf "$REL/.$1.tmp" "$REL/$1"
}
tmp=$(mktemp -d "$REL/.install.XXXXXX")
tar -xzf "$BUNDLE" -C "$tmp" --no-same-owner
if [ -f "$tmp/package/package.json" ]; then src="$tmp/package"                   # npm pack bundle
elif [ -f "$tmp/package.json" ] && [ -f "$tmp/manifest.json" ]; then src="$tmp"   # npm run release tarball
else rm -rf "$tmp"; die "$BUNDLE is neither a release (manifest.json) nor an npm pack bundle (package/package.json)"; fi
VERSION=$(grep -o '"version" *: *"[^"]*"' "$src/package.json" | head -1 | sed 's/.*"\([^"]*\)"$/\1/')
case "$VERSION" in ''|current|previous|.*|*/*) rm -rf "$tmp"; die "$BUNDLE: no usable version in package.json" ;; esac
if [ -f "$REL/$VERSION/.bundle-sha256" ] && [ "$(cat "$REL/$VERSION/.bundle-sha256")" = "$BUNDLE_SHA" ]; then
  rm -rf "$tmp"
  note "=" "$REL/$VERSION/"
else
  if [ ! -d "$src/node_modules" ]; then
    # Production dependencies with the pinned Node's own npm (no registry needed for the agent itself).
    if [ "$DRY_RUN" = 0 ]; then (cd "$src" && PATH="$OPT/node/bin:$PATH" "$OPT/node/bin/npm" install --omit=dev --no-audit --no-fund --ignore-scripts=false) || { rm -rf "$tmp"; die "npm install of the agent's dependencies failed"; }; fi
  fi
  echo "$BUNDLE_SHA" > "$src/.bundle-sha256"
  rm -rf "$REL/.old-$VERSION"; [ -d "$REL/$VERSION" ] && mv "$REL/$VERSION" "$REL/.old-$VERSION"
  mv "$src" "$REL/$VERSION"; rm -rf "$tmp" "$REL/.old-$VERSION"
  note "+" "$REL/$VERSION/"
fi
if [ "$DRY_RUN" = 1 ] && [ ! -d "$REL/$VERSION/node_modules" ]; then
  PLAN+=("cd /opt/signage-agent/releases/$VERSION && /opt/signage-agent/node/bin/npm install --omit=dev --no-audit --no-fund")
fi
cur=$(readlink "$REL/current" 2>/dev/null || true)
if [ "$cur" = "$VERSION" ]; then note "=" "$REL/current"
else
  if [ -n "$cur" ] && [ -d "$REL/$cur" ]; then relink previous "$cur"; note "+" "$REL/previous -> $cur"; fi
  relink current "$VERSION"; note "+" "$REL/current -> $VERSION"
fi
put_link releases/current "$OPT/current"
# The layout before issue 13 ran /opt/signage-agent/app: gone once current is in place.
if [ -d "$OPT/app" ] && [ ! -L "$OPT/app" ]; then rm -rf "$OPT/app"; note "+" "$OPT/app/ removed (old layout)"; fi

# --- 4. wrappers (absolute paths of the target system, also in --root), and the update health gate
wrapper() { # wrapper NAME SCRIPT
  put_text "$OPT/bin/$1" 755 <<EOF
#!/bin/sh
# Installed by signage-agent's install.sh: the pinned Node runs the current release's $1.
exec /opt/signage-agent/node/bin/node /opt/signage-agent/current/$2 "\$@"
EOF
}
wrapper signage-agent dist/agent/main.js
wrapper signagectl dist/scripts/signagectl.js
wrapper signage-firstboot dist/scripts/firstboot-import.js
GATE="$REL/$VERSION/provisioning/update-gate.sh"
[ -f "$GATE" ] || GATE="$SELF_DIR/update-gate.sh"
[ -f "$GATE" ] || die "no update-gate.sh in the bundle or beside install.sh"
# Outside every release, so a broken release cannot break its own rollback.
put_file "$GATE" "$OPT/bin/signage-update-gate" 755
put_link /opt/signage-agent/bin/signage-agent "$ROOT/usr/local/bin/signage-agent"
put_link /opt/signage-agent/bin/signagectl "$ROOT/usr/local/bin/signagectl"

# --- 5. configuration and data
put_dir "$ETC" 750
put_dir "$VAR" 750
if [ -n "$CONFIG" ]; then put_file "$CONFIG" "$ETC/signage-agent.json" 640; fi
for s in "${SECRETS[@]}"; do put_file "$s" "$ETC/$(basename "$s")" 600; done
if [ "$DRY_RUN" = 0 ]; then
  chown root:"$USER_NAME" "$ETC"; chown "$USER_NAME":"$USER_NAME" "$VAR"
  # The agent installs updates here (as the service user); the links inside are its too.
  chown -R -h "$USER_NAME":"$USER_NAME" "$REL"
  [ -f "$ETC/signage-agent.json" ] && chown root:"$USER_NAME" "$ETC/signage-agent.json"
  for s in "${SECRETS[@]}"; do chown "$USER_NAME":"$USER_NAME" "$ETC/$(basename "$s")"; done
else
  PLAN+=("chown root:$USER_NAME /etc/signage-agent /etc/signage-agent/signage-agent.json" "chown $USER_NAME:$USER_NAME /var/lib/signage-agent /etc/signage-agent/<secrets>" "chown -R -h $USER_NAME:$USER_NAME /opt/signage-agent/releases")
fi

# --- 6. systemd units, enabled
for u in signage-agent.service signage-agent-firstboot.service signage-agent-update-gate.service signage-agent-update-gate.timer; do
  [ -f "$REL/$VERSION/systemd/$u" ] || die "the bundle has no systemd/$u"
  put_file "$REL/$VERSION/systemd/$u" "$UNITS/$u" 644
done
if [ "$DRY_RUN" = 1 ]; then
  # What `systemctl enable` does, without a running systemd.
  put_link /etc/systemd/system/signage-agent.service "$UNITS/multi-user.target.wants/signage-agent.service"
  put_link /etc/systemd/system/signage-agent-firstboot.service "$UNITS/multi-user.target.wants/signage-agent-firstboot.service"
  put_link /etc/systemd/system/signage-agent-update-gate.timer "$UNITS/timers.target.wants/signage-agent-update-gate.timer"
  PLAN+=("systemctl daemon-reload" "systemctl enable signage-agent.service signage-agent-firstboot.service signage-agent-update-gate.timer")
else
  sys systemctl daemon-reload
  sys systemctl enable signage-agent.service signage-agent-firstboot.service signage-agent-update-gate.timer
  if [ "$START" = 1 ] && [ -f "$ETC/signage-agent.json" ]; then
    if [ "$changed" -gt 0 ]; then sys systemctl restart signage-agent.service; else sys systemctl start signage-agent.service; fi
  elif [ ! -f "$ETC/signage-agent.json" ]; then
    echo "no /etc/signage-agent/signage-agent.json yet: drop signage-agent.json on the boot partition and reboot, or rerun with --config"
  fi
fi

if [ "$DRY_RUN" = 1 ]; then
  printf '%s\n' "# signage-agent install.sh --dry-run: commands a real install runs (not run here)" "${PLAN[@]}" | put_text "$ROOT/.signage-install-plan" 644
fi
echo "install.sh: done, $changed change(s)"

#!/bin/sh
# signage-agent update health gate (issue 13). Lives outside every release (installed by install.sh
# as /opt/signage-agent/bin/signage-update-gate), so a broken release cannot break its own rollback.
#
#   signage-update-gate start [--releases DIR] [--state DIR] [--now UNIX_S]
#       ExecStartPre of signage-agent.service, as the service user, before every start. While an
#       update is pending and the new release has not written `healthy`: counts the start, and
#       rolls back to `previous` when the deadline has passed or the starts exceed maxStarts (a
#       crash loop). Repairs a `current` that names no release. Always exits 0: the agent starts.
#   signage-update-gate check [--releases DIR] [--state DIR] [--now UNIX_S] [--dry-run]
#       From signage-agent-update-gate.timer, as root: a pending update past its deadline without
#       `healthy` (a release that runs but never proves itself) gets `systemctl restart
#       signage-agent.service`, and the start above rolls it back. It touches no file itself.
#
# Files in STATE (default /var/lib/signage-agent/update), key=value lines (agent/update/gate-files.ts):
#   pending (to, from, deadline, maxStarts), starts, healthy (a version), rolled-back (from, to, reason, at).
set -u
MODE=${1:-}
[ $# -gt 0 ] && shift
RELEASES=/opt/signage-agent/releases
STATE=/var/lib/signage-agent/update
NOW=""
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --releases) RELEASES=$2; shift 2 ;;
    --state) STATE=$2; shift 2 ;;
    --now) NOW=$2; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    *) echo "signage-update-gate: unknown option $1" >&2; exit 0 ;;
  esac
done
[ -n "$NOW" ] || NOW=$(date +%s)
say() { echo "signage-update-gate: $*"; }

val() { # val FILE KEY → the value, or nothing
  sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1
}
is_num() { case "$1" in ''|*[!0-9]*) return 1 ;; *) return 0 ;; esac; }
is_version() { case "$1" in ''|current|previous|.*|*/*) return 1 ;; *) return 0 ;; esac; }
linked() { readlink "$RELEASES/$1" 2>/dev/null || true; }
complete() { is_version "$1" && [ -f "$RELEASES/$1/package.json" ]; }

relink() { # relink NAME VERSION: temp link renamed over the old one (never no link)
  rm -f "$RELEASES/.$1.tmp"
  ln -s "$2" "$RELEASES/.$1.tmp" && mv -Tf "$RELEASES/.$1.tmp" "$RELEASES/$1"
  sync "$RELEASES" 2>/dev/null || sync
}

write_kv() { # write_kv FILE: stdin to FILE, atomically
  cat > "$1.gate-tmp" && sync "$1.gate-tmp" 2>/dev/null; mv -f "$1.gate-tmp" "$1"
}

rollback() { # rollback FROM TO REASON
  relink current "$2"
  printf 'from=%s\nto=%s\nreason=%s\nat=%s\n' "$1" "$2" "$3" "$NOW" | write_kv "$STATE/rolled-back"
  rm -f "$STATE/pending" "$STATE/starts"
  say "rolled back from $1 to $2: $3"
}

repair() { # current must name a complete release: else previous, else the newest complete one
  cur=$(linked current)
  complete "$cur" && return 0
  prev=$(linked previous)
  if complete "$prev"; then relink current "$prev"; say "current named no release ($cur); now $prev"; return 0; fi
  for d in $(ls -1t "$RELEASES" 2>/dev/null); do
    if [ -d "$RELEASES/$d" ] && complete "$d"; then relink current "$d"; say "current named no release ($cur); now $d"; return 0; fi
  done
  say "no complete release in $RELEASES"
}

case "$MODE" in
  start)
    [ -d "$RELEASES" ] || exit 0
    repair
    [ -f "$STATE/pending" ] || exit 0
    to=$(val "$STATE/pending" to); from=$(val "$STATE/pending" from)
    deadline=$(val "$STATE/pending" deadline); max=$(val "$STATE/pending" maxStarts)
    is_num "$deadline" || deadline=0
    is_num "$max" || max=3
    cur=$(linked current)
    if [ "$(cat "$STATE/healthy" 2>/dev/null)" = "$to" ]; then rm -f "$STATE/pending" "$STATE/starts"; exit 0; fi
    if [ "$cur" != "$to" ]; then
      # Power cut between writing pending and the switch: still on the old release.
      printf 'from=%s\nto=%s\nreason=%s\nat=%s\n' "$to" "$cur" "the switch to $to did not complete (power cut or crash during the update); still on $cur" "$NOW" | write_kv "$STATE/rolled-back"
      rm -f "$STATE/pending" "$STATE/starts"
      say "pending update to $to never switched; on $cur"
      exit 0
    fi
    starts=$(cat "$STATE/starts" 2>/dev/null || echo 0)
    is_num "$starts" || starts=0
    starts=$((starts + 1))
    echo "$starts" | write_kv "$STATE/starts"
    if ! complete "$from"; then from=$(linked previous); fi
    if ! complete "$from" || [ "$from" = "$to" ]; then say "no release to go back to from $to"; exit 0; fi
    if [ "$NOW" -gt "$deadline" ]; then
      rollback "$to" "$from" "$to did not prove itself healthy by the deadline ($starts start(s))"
    elif [ "$starts" -gt "$max" ]; then
      rollback "$to" "$from" "$to started $starts times without proving itself healthy (crash loop)"
    fi
    ;;
  check)
    [ -f "$STATE/pending" ] || exit 0
    to=$(val "$STATE/pending" to); deadline=$(val "$STATE/pending" deadline)
    is_num "$deadline" || exit 0
    [ "$(cat "$STATE/healthy" 2>/dev/null)" = "$to" ] && exit 0
    if [ "$NOW" -gt "$deadline" ]; then
      if [ "$DRY" = 1 ]; then say "would run: systemctl restart signage-agent.service"; else say "$to past its deadline: restarting the agent to roll back"; systemctl restart signage-agent.service; fi
    fi
    ;;
  *) echo "usage: signage-update-gate start|check [--releases DIR] [--state DIR] [--now UNIX_S] [--dry-run]" >&2 ;;
esac
exit 0

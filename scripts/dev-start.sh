#!/usr/bin/env bash
# `npm start` on a developer's box: a local broker (the one on 1883, or one we start), a test
# clip made with ffmpeg, a dev config and the bundled default campaign, then the agent in the
# foreground with readable logs. A spot plays within a minute.
#
# Ctrl-C: the terminal sends SIGINT to its whole foreground process group, and npm forwards a
# second copy to its child. So the agent and the broker run in sessions of their own (setsid),
# outside that group: this script alone receives the signals and passes exactly one SIGINT on to
# the agent, which stops mpv itself and publishes its offline status; the broker is stopped after
# the agent has exited. (A background job of a shell without job control is never a process
# group leader, so setsid execs in place and $! is the program's own pid.)
set -euo pipefail
agent_pid=""
broker_pid=""
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
  fi
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    echo "broker: stopped mosquitto (pid $broker_pid)"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/ensure-deps.sh start
[ -f dist/agent/main.js ] && [ -z "$(find agent scripts -name '*.ts' -newer dist/agent/main.js -print -quit)" ] || npx tsc -p tsconfig.json
# The hints below run `npx signagectl` / `npx signage-agent` in this checkout, which execute the
# package.json bins directly: tsc writes them 0644 and nothing in a clean clone makes them
# executable (`sh: signagectl: Permission denied`, seen in CI), so do it here, every time.
chmod +x dist/agent/main.js dist/scripts/signagectl.js dist/fleet/main.js

dev="${SIGNAGE_DEV_DIR:-$root/var/dev}"
mkdir -p "$dev/media" "$dev/data"
port=${MQTT_PORT:-1883}

broker_up() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if broker_up; then
  echo "broker: using the MQTT broker already on 127.0.0.1:$port"
else
  conf="$dev/mosquitto.conf"
  {
    echo "listener $port 127.0.0.1"
    echo "allow_anonymous true"
    echo "persistence false"
    echo "max_queued_messages 0"
    [ "$(id -u)" = 0 ] && echo "user root"
  } >"$conf"
  setsid mosquitto -c "$conf" >"$dev/mosquitto.log" 2>&1 &
  broker_pid=$!
  for _ in $(seq 50); do broker_up && break; sleep 0.1; done
  broker_up || { echo "could not start mosquitto on port $port (see $dev/mosquitto.log)" >&2; exit 1; }
  echo "broker: started mosquitto on 127.0.0.1:$port (pid $broker_pid)"
fi

# Clips: a 10 s spot (moving test pattern with a caption) and a 20 s house loop.
if [ ! -s "$dev/media/spot.mp4" ]; then
  ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=25" -f lavfi -i "sine=frequency=880" -t 10 \
    -vf "drawbox=x=0:y=300:w=640:h=60:color=black@0.6:t=fill" -c:v libx264 -pix_fmt yuv420p -c:a aac -shortest "$dev/media/spot.mp4"
fi
if [ ! -s "$dev/media/loop.mp4" ]; then
  ffmpeg -loglevel error -y -f lavfi -i "smptebars=size=640x360:rate=25" -t 20 -c:v libx264 -pix_fmt yuv420p "$dev/media/loop.mp4"
fi
spot_sha=$(sha256sum "$dev/media/spot.mp4" | cut -d' ' -f1)
loop_sha=$(sha256sum "$dev/media/loop.mp4" | cut -d' ' -f1)

device="dev-$(hostname | tr -c 'A-Za-z0-9._\n-' '-' | cut -c1-40)"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  player='{ "args": ["--fs=no", "--geometry=960x540", "--ao=null"] }'
  where="in a window"
else
  player='{ "args": ["--vo=null", "--ao=null"] }'
  where="headless (no display found)"
fi
cat >"$dev/signage-agent.json" <<JSON
{
  "deviceId": "$device",
  "groups": ["all", "dev"],
  "timezone": "$(timedatectl show -p Timezone --value 2>/dev/null || cat /etc/timezone 2>/dev/null || echo Asia/Ho_Chi_Minh)",
  "dataDir": "$dev/data",
  "heartbeatSec": 10,
  "mqtt": { "url": "mqtt://127.0.0.1:$port", "topicPrefix": "signage" },
  "player": $player,
  "media": { "fileRoots": ["$dev/media"] }
}
JSON
# An invalid system timezone name would stop the agent: fall back to the contract's default.
node -e "new Intl.DateTimeFormat('en',{timeZone:require('$dev/signage-agent.json').timezone})" 2>/dev/null \
  || sed -i 's#"timezone": "[^"]*"#"timezone": "Asia/Ho_Chi_Minh"#' "$dev/signage-agent.json"

# The bundled default campaign: from this minute to midnight, one 10 s spot a minute (at :30 past
# each minute), between loop clips. Starting the window now keeps the screen on its grid (a
# whole-day window would start it far behind, in catch-up).
tz=$(node -p "require('$dev/signage-agent.json').timezone")
hm=$(TZ="$tz" date +%H:%M)
left=$(( 1440 - 10#${hm%:*} * 60 - 10#${hm#*:} ))
cat >"$dev/assignment.json" <<JSON
{
  "version": $(date +%s),
  "campaigns": [{
    "id": "dev-spot",
    "media": { "url": "file://$dev/media/spot.mp4", "sha256": "$spot_sha", "durationMs": 10000 },
    "timesPerDay": $left,
    "windows": ["$hm-24:00"]
  }],
  "loop": [{ "url": "file://$dev/media/loop.mp4", "sha256": "$loop_sha" }]
}
JSON
mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -r -t "signage/device/$device/assignment" -f "$dev/assignment.json"

cat <<TXT

signage-agent: device $device, $where, config $dev/signage-agent.json
The default campaign plays a 10 s spot once a minute (at :30) between loop clips, until midnight. Try, in another terminal:
  npx signagectl watch --url mqtt://127.0.0.1:$port
  npx signagectl override --url mqtt://127.0.0.1:$port --device $device --campaign dev-spot --times $((left * 2)) --expires +1h
  npx signagectl cmd --url mqtt://127.0.0.1:$port --device $device play-now --args '{"campaignId":"dev-spot"}'
  npx signagectl screenshot --url mqtt://127.0.0.1:$port --device $device --out $dev/frame.png
  npx signagectl report --url mqtt://127.0.0.1:$port --device $device
  npx signage-agent plan --config $dev/signage-agent.json
  npx signage-agent doctor --config $dev/signage-agent.json
Ctrl-C stops the agent$([ -n "$broker_pid" ] && echo ", then the broker it started").

TXT
pretty=0
[ -d node_modules/pino-pretty ] && pretty=1
# NODE_OPTIONS as systemd/signage-agent.service sets it.
LOG_PRETTY=$pretty NODE_OPTIONS="--max-semi-space-size=1 --max-old-space-size=128" setsid node dist/agent/main.js run --config "$dev/signage-agent.json" &
agent_pid=$!
echo "agent: pid $agent_pid"
stop_sent=""
stop_agent() {
  [ -n "$stop_sent" ] && return 0 # the second copy (npm's, or a key held down): one stop is enough
  stop_sent=1
  kill -INT "$agent_pid" 2>/dev/null || true
}
trap stop_agent INT TERM HUP
rc=0
while :; do
  wait "$agent_pid" && rc=0 || rc=$?
  # A trapped signal interrupts `wait` (status > 128) while the agent is still stopping.
  if [ "$rc" -gt 128 ] && kill -0 "$agent_pid" 2>/dev/null; then continue; fi
  break
done
# An interrupted `wait` may have raced the agent's exit: its status is still kept by the shell.
if [ "$rc" -gt 128 ]; then
  r=0
  wait "$agent_pid" 2>/dev/null || r=$?
  [ "$r" -ne 127 ] && rc=$r
fi
agent_pid=""
exit "$rc"

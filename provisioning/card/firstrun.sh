#!/bin/bash
# signage-agent card hook. prepare-card adds to cmdline.txt:
#   systemd.run=<boot>/signage/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target
# so that this runs once, early in the first boot, before the network is up. It only arms
# signage-install.service (which needs the network for mpv and the agent's dependencies) and
# removes itself from cmdline.txt; the machine then reboots into the normal boot.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BOOT=$(dirname "$HERE")
# The root being set up; only tests point it elsewhere.
ROOT=${SIGNAGE_FIRSTRUN_ROOT:-}
UNITS="$ROOT/etc/systemd/system"

# Raspberry Pi Imager's own first-run customisation (user, Wi-Fi, SSH), if the card had one.
if [ -f "$HERE/imager-firstrun.sh" ]; then
  bash "$HERE/imager-firstrun.sh" || echo "signage firstrun: the Imager customisation failed" >&2
  rm -f "$HERE/imager-firstrun.sh"
fi

mkdir -p "$UNITS/multi-user.target.wants"
sed "s#@SIGNAGE_DIR@#$HERE#g" "$HERE/signage-install.service" > "$UNITS/signage-install.service"
chmod 0644 "$UNITS/signage-install.service"
ln -sf /etc/systemd/system/signage-install.service "$UNITS/multi-user.target.wants/signage-install.service"

sed -i -e 's| systemd\.run=[^ ]*||g' -e 's| systemd\.run_success_action=[^ ]*||g' -e 's| systemd\.unit=kernel-command-line\.target||g' "$BOOT/cmdline.txt"
sync
exit 0

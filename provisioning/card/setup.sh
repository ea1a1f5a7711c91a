#!/bin/bash
# Run by signage-install.service on the first boot with network: installs the agent from this
# folder (install.sh, the npm pack bundle, the pinned Node tarball), imports the config dropped
# beside it and starts the agent, then disarms itself and frees the boot partition.
# On failure the unit retries (Restart=on-failure), and again on every boot until it succeeds.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
bash "$HERE/install.sh" --no-start
systemctl start signage-agent-firstboot.service || echo "signage setup: configuration import failed (see journalctl -u signage-agent-firstboot)" >&2
systemctl start signage-agent.service || true
systemctl disable signage-install.service
rm -f /etc/systemd/system/signage-install.service
systemctl daemon-reload
rm -rf "$HERE"
sync

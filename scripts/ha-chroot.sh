#!/usr/bin/env bash
# Run a command inside the Debian sid root filesystem that holds Python 3.14 and the Home
# Assistant venvs (built by scripts/ha-envs.sh).
#
#   scripts/ha-chroot.sh COMMAND [ARGS...]
#
# Home Assistant 2026.3+ needs Python >= 3.14.2, which neither Debian 12 nor pyenv offers
# here; Debian sid packages it. The command runs in a private mount namespace (unshare), so
# the bind mounts below vanish with it: nothing to clean up, and concurrent runs (CI and a
# developer) never unmount each other's /proc. It keeps the calling process's pid (exec all
# the way), so a SIGTERM sent to this script reaches Home Assistant itself.
#
# Visible inside: /proc, /dev, /sys, the host's CA certificates (a TLS-intercepting proxy's CA
# included), the checkout at its own path and /tmp (pytest's temporary directories), so
# paths mean the same on both sides; the command starts in the caller's directory (which must
# be one of those). The network is the host's: 127.0.0.1 is the host's
# loopback, where the test broker listens. Needs root (CI runs as root).
set -euo pipefail

ROOTFS=${SMOKEWATCH_HA_ROOTFS:-${SMOKEWATCH_HA_CACHE:-/var/cache/smokewatch-ci}/rootfs-sid-python3.14}
REPO=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -x "$ROOTFS/usr/bin/python3.14" ]; then
  echo "ha-chroot: no root filesystem at $ROOTFS (build it with scripts/ha-envs.sh)" >&2
  exit 1
fi

# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --mount --propagation private -- /bin/sh -c '
  set -e
  root=$1 repo=$2 cwd=$3
  shift 3
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mount --rbind /sys "$root/sys"
  mount --bind /tmp "$root/tmp"
  mount --bind /etc/ssl/certs "$root/etc/ssl/certs"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  mkdir -p "$root$repo"
  mount --bind "$repo" "$root$repo"
  cd "$root$repo"
  exec chroot "$root" /usr/bin/env -u PIP_FIND_LINKS HOME=/root \
    PATH=/usr/local/bin:/usr/bin:/bin sh -c "cd \"\$0\" && exec \"\$@\"" "$cwd" "$@"
' sh "$ROOTFS" "$REPO" "$PWD" "$@"

#!/usr/bin/env bash
# Run the README's two commands on a truly fresh Debian 12, as a new user would.
#
# A green CI on a machine that already has what an install step forgot proves nothing
# (it happened: pyproj's source build needs `proj`, from proj-bin, and only the
# developer machine had it). This script builds a minimal Debian 12 root with
# `debootstrap --variant=minbase bookworm`, copies in only what makes the package
# registries answer as they do on this machine (apt sources and settings, pip
# configuration, extra CA certificates), unpacks a clean `git archive` of HEAD and runs
#   1. bash sample_data/run_demo.sh
#   2. bash tests/run.sh                      (skipped with --demo-only)
# in a chroot, printing each command's last lines and wall time.
#
#   bash tests/fresh_machine.sh [--demo-only] [--keep]
#
# Needs root (debootstrap, chroot, mounts): exit 3 when this machine cannot build a root at
# all, 1 when a command failed in it, 0 when both passed. The root lives in /var/tmp/geolabel-fresh.<pid>;
# --keep leaves it (unmounted) for inspection. Everything mounted is unmounted on exit,
# Ctrl-C or SIGTERM; roots left by a run that was killed with SIGKILL are cleaned up by
# the next run. A root is only deleted once nothing is mounted inside it, and with
# `rm --one-file-system`, so a bind-mounted /dev can never go with it.
# The whole script is one block, so bash reads all of it before running: editing this file
# (or checking out another commit) while it runs cannot change what it does.
{
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
DEMO_ONLY=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --demo-only) DEMO_ONLY=1 ;;
    --keep) KEEP=1 ;;
    *) echo "fresh_machine: unknown option $arg (use --demo-only, --keep)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh_machine: needs root (debootstrap, chroot, mount)" >&2; exit 3; }

PARENT=/var/tmp
ROOT="$PARENT/geolabel-fresh.$$"

mounts_under() {  # mount points at or below $1, deepest first
  awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

unmount_all() {
  local root=$1 m tries
  for tries in 1 2 3; do
    for m in $(mounts_under "$root"); do
      umount "$m" 2>/dev/null || umount --lazy "$m" 2>/dev/null || true
    done
    [ -z "$(mounts_under "$root")" ] && return 0
    sleep 1
  done
  return 1
}

remove_root() {
  local root=$1
  if ! unmount_all "$root"; then
    echo "fresh_machine: $root still has mounts ($(mounts_under "$root" | tr '\n' ' ')); NOT deleting it" >&2
    return 1
  fi
  rm -rf --one-file-system "$root"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # stop whatever still runs inside the root (a server started by the tests, a killed run)
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOT" ] && kill -9 "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then
    unmount_all "$ROOT" || echo "fresh_machine: could not unmount everything in $ROOT" >&2
    echo "fresh_machine: root kept in $ROOT" >&2
  elif [ -d "$ROOT" ]; then
    remove_root "$ROOT" || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Roots of earlier runs whose process is gone (killed with SIGKILL): unmount and delete.
for old in "$PARENT"/geolabel-fresh.*; do
  [ -d "$old" ] || continue
  pid=${old##*.}
  if [ ! -d "/proc/$pid" ]; then
    echo "fresh_machine: removing $old left by an earlier run" >&2
    remove_root "$old" || true
  fi
done

if ! command -v debootstrap >/dev/null; then
  echo "fresh_machine: installing debootstrap" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null ||
    { echo "fresh_machine: cannot install debootstrap" >&2; exit 3; }
fi

# The Debian mirror this machine's apt already uses.
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}

started=$(date +%s)
echo "== fresh_machine: debootstrap --variant=minbase bookworm $ROOT $mirror"
mkdir -p "$ROOT"
if ! debootstrap --variant=minbase bookworm "$ROOT" "$mirror" >"$PARENT/geolabel-fresh.$$.debootstrap.log" 2>&1; then
  tail -20 "$PARENT/geolabel-fresh.$$.debootstrap.log" >&2
  echo "fresh_machine: debootstrap failed: this machine cannot build a fresh root" >&2
  exit 3
fi
rm -f "$PARENT/geolabel-fresh.$$.debootstrap.log"
echo "   root ready in $(($(date +%s) - started)) s"

# Only what makes the registries answer as here: apt sources and settings, pip's
# configuration, the extra CA certificates (and the bundle that includes them).
rm -f "$ROOT"/etc/apt/sources.list
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && cp "$f" "$ROOT$f"
done
for f in /etc/apt/apt.conf.d/*; do
  case "$(basename "$f")" in 99*) cp "$f" "$ROOT$f" ;; esac
done
for f in /etc/pip.conf /etc/xdg/pip /root/.config/pip /root/.pip; do
  if [ -e "$f" ]; then mkdir -p "$ROOT$(dirname "$f")" && cp -r "$f" "$ROOT$f"; fi
done
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$ROOT/usr/local/share/ca-certificates" "$ROOT/etc/ssl/certs"
  cp -r /usr/local/share/ca-certificates/. "$ROOT/usr/local/share/ca-certificates/"
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"

# A clean clone: what is committed at HEAD, nothing else.
mkdir -p "$ROOT/root/geolabel"
git -C "$repo" archive --format=tar HEAD | tar -x -C "$ROOT/root/geolabel"
echo "   HEAD $(git -C "$repo" rev-parse --short HEAD) unpacked into /root/geolabel"

if ! { mount -t proc proc "$ROOT/proc" && mount -t sysfs sysfs "$ROOT/sys" && mount --bind /dev "$ROOT/dev" &&
       mount -t devpts -o newinstance,ptmxmode=0666 devpts "$ROOT/dev/pts" && mount -t tmpfs tmpfs "$ROOT/dev/shm"; }; then
  echo "fresh_machine: cannot mount /proc, /sys and /dev in the root: this machine cannot run a chroot" >&2
  exit 3
fi

run_in_root() {  # run_in_root LABEL COMMAND: a login-like shell of a new root user
  local label=$1 cmd=$2 t0 rc log
  log="$ROOT/root/$label.log"
  echo
  echo "== fresh_machine: $cmd"
  t0=$(date +%s)
  set +e
  # in the background, so a signal reaches our trap at once instead of after the command
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    bash -c "cd /root/geolabel && $cmd" >"$log" 2>&1 </dev/null &
  wait $!
  rc=$?
  set -e
  tail -n 12 "$log" | sed 's/^/   | /'
  echo "   $cmd: exit $rc after $(($(date +%s) - t0)) s"
  return $rc
}

status=0
run_in_root demo "bash sample_data/run_demo.sh" || status=1
if [ "$DEMO_ONLY" = 0 ]; then
  run_in_root tests "bash tests/run.sh" || status=1
fi
echo
echo "== fresh_machine: $([ $status = 0 ] && echo PASSED || echo FAILED) in $(($(date +%s) - started)) s"
exit $status
}

#!/usr/bin/env bash
# Run the README's commands on a truly fresh Debian 12, as a new user would.
#
# A green CI on a machine that already has what an install step forgot proves nothing
# (it happened: pyproj's source build needs `proj`, from proj-bin, and only the
# developer machine had it). This script builds a minimal Debian 12 root with
# `debootstrap --variant=minbase bookworm`, copies in only what makes the package
# registries answer as they do on this machine (apt sources and settings, pip
# configuration, extra CA certificates), unpacks a clean `git archive` of HEAD and runs,
# in a chroot, as a new root user:
#   1. bash sample_data/run_demo.sh
#   2. bash tests/run.sh                       (skipped with --demo-only)
# and with --plugin, in a second fresh root that has only Debian's QGIS:
#   3. bash tests/plugin_install.sh            (the README's "Use in QGIS" install steps)
# printing each command's last lines and wall time.
#
#   bash tests/fresh_machine.sh [--demo-only] [--plugin] [--keep]
#
# Needs root (debootstrap, chroot, mounts). Exit 3 when this machine cannot build a root at
# all, 1 when a command failed in it, 0 when all passed. The roots live in
# /var/tmp/geolabel-fresh.<pid>/; --keep leaves them (unmounted) for inspection.
# Everything mounted is unmounted on exit, Ctrl-C or SIGTERM; what a run killed with
# SIGKILL left is cleaned up by the next run. A root is only deleted once nothing is
# mounted inside it, and with `rm --one-file-system`, so a bind-mounted /dev can never go
# with it.
# The whole script is one block, so bash reads all of it before running: editing this file
# (or checking out another commit) while it runs cannot change what it does.
{
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
DEMO_ONLY=0
PLUGIN=0
KEEP=0
for arg in "$@"; do
  case "$arg" in
    --demo-only) DEMO_ONLY=1 ;;
    --plugin) PLUGIN=1 ;;
    --keep) KEEP=1 ;;
    *) echo "fresh_machine: unknown option $arg (use --demo-only, --plugin, --keep)" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" -eq 0 ] || { echo "fresh_machine: needs root (debootstrap, chroot, mount)" >&2; exit 3; }

PARENT=/var/tmp
RUN="$PARENT/geolabel-fresh.$$"  # this run's roots: $RUN/main, $RUN/plugin

mounts_under() {  # mount points at or below $1, deepest first
  awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}

unmount_all() {
  local dir=$1 m tries
  for tries in 1 2 3; do
    for m in $(mounts_under "$dir"); do
      umount "$m" 2>/dev/null || umount --lazy "$m" 2>/dev/null || true
    done
    [ -z "$(mounts_under "$dir")" ] && return 0
    sleep 1
  done
  return 1
}

stop_processes_in() {  # whatever still runs inside a root (a server a test started, a killed run)
  local dir=$1 pid root
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    root=$(readlink "/proc/$pid/root" 2>/dev/null) || continue
    case "$root" in "$dir"/*) kill -9 "$pid" 2>/dev/null || true ;; esac
  done
}

remove_run() {
  local dir=$1
  stop_processes_in "$dir"
  if ! unmount_all "$dir"; then
    echo "fresh_machine: $dir still has mounts ($(mounts_under "$dir" | tr '\n' ' ')); NOT deleting it" >&2
    return 1
  fi
  rm -rf --one-file-system "$dir"
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "$KEEP" = 1 ]; then
    stop_processes_in "$RUN"
    unmount_all "$RUN" || echo "fresh_machine: could not unmount everything in $RUN" >&2
    echo "fresh_machine: roots kept in $RUN" >&2
  elif [ -d "$RUN" ]; then
    remove_run "$RUN" || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs of earlier calls whose process is gone (killed with SIGKILL): unmount and delete.
for old in "$PARENT"/geolabel-fresh.*; do
  [ -d "$old" ] || continue
  pid=${old##*.}
  if [ ! -d "/proc/$pid" ]; then
    echo "fresh_machine: removing $old left by an earlier run" >&2
    remove_run "$old" || true
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

make_root() {  # make_root DIR: a fresh minimal Debian 12 with HEAD in /root/geolabel, mounted
  local root=$1 t0 f
  t0=$(date +%s)
  echo "== fresh_machine: debootstrap --variant=minbase bookworm $root $mirror"
  mkdir -p "$root"
  if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1; then
    tail -20 "$root.debootstrap.log" >&2
    echo "fresh_machine: debootstrap failed: this machine cannot build a fresh root" >&2
    exit 3
  fi
  # Only what makes the registries answer as here: apt sources and settings, pip's
  # configuration, the extra CA certificates (and the bundle that includes them).
  rm -f "$root"/etc/apt/sources.list
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$root$f"
  done
  for f in /etc/apt/apt.conf.d/99*; do
    [ -f "$f" ] && cp "$f" "$root$f"
  done
  for f in /etc/pip.conf /etc/xdg/pip /root/.config/pip /root/.pip; do
    if [ -e "$f" ]; then mkdir -p "$root$(dirname "$f")" && cp -r "$f" "$root$f"; fi
  done
  if [ -d /usr/local/share/ca-certificates ]; then
    mkdir -p "$root/usr/local/share/ca-certificates" "$root/etc/ssl/certs"
    cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
    [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  fi
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # A clean clone: what is committed at HEAD, nothing else.
  mkdir -p "$root/root/geolabel"
  git -C "$repo" archive --format=tar HEAD | tar -x -C "$root/root/geolabel"
  if ! { mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" && mount --bind /dev "$root/dev" &&
         mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" && mount -t tmpfs tmpfs "$root/dev/shm"; }; then
    echo "fresh_machine: cannot mount /proc, /sys and /dev in the root: this machine cannot run a chroot" >&2
    exit 3
  fi
  echo "   root ready in $(($(date +%s) - t0)) s, HEAD $(git -C "$repo" rev-parse --short HEAD) in /root/geolabel"
}

run_in_root() {  # run_in_root DIR LABEL COMMAND: a shell of a new root user, in a clean environment
  local root=$1 label=$2 cmd=$3 t0 rc log
  log="$root/root/$label.log"
  echo
  echo "== fresh_machine: $cmd"
  t0=$(date +%s)
  set +e
  # in the background, so a signal reaches our trap at once instead of after the command
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
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
make_root "$RUN/main"
run_in_root "$RUN/main" demo "bash sample_data/run_demo.sh" || status=1
if [ "$DEMO_ONLY" = 0 ]; then
  run_in_root "$RUN/main" tests "bash tests/run.sh" || status=1
fi
if [ "$PLUGIN" = 1 ]; then
  echo
  make_root "$RUN/plugin"
  run_in_root "$RUN/plugin" plugin "bash tests/plugin_install.sh" || status=1
fi
echo
echo "== fresh_machine: $([ $status = 0 ] && echo PASSED || echo FAILED) in $(($(date +%s) - started)) s"
exit $status
}

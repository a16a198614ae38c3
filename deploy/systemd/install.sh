#!/usr/bin/env bash
# Installs gcfs on a machine run by systemd, upgrades it, or removes it (docs/operations.md,
# "Install on a node with systemd"). As root.
#
#   deploy/systemd/install.sh [install] [--from DIR] [--enable "UNIT..."] [--no-start] [--destdir DIR]
#   deploy/systemd/install.sh uninstall [--purge] [--force] [--destdir DIR]
#
# install: the runtime of this built checkout (scripts/runtime-tree), or --from DIR, a tree
#   of the same layout (/opt/gcfs copied out of the container image), becomes /opt/gcfs;
#   /usr/local/bin gets a link to each of its executables (gcfsd, cfsd, gcfsctl); the units
#   go to /usr/local/lib/systemd/system (operators override them with `systemctl edit`), the
#   flag files to /etc/default/gcfsd and /etc/default/cfsd unless they exist; then systemd
#   reloads, enables and (re)starts the units of --enable (default "gcfsd-downloader gcfsd",
#   a node; "cfsd" on the content service's host). Run again with a newer version to upgrade:
#   the new tree replaces the old one, then the units restart in their order (gcfsd stops
#   first, the downloader starts first).
# uninstall: stops and disables every gcfs unit, makes sure no gcfs mount, socket or process
#   is left, and removes what install wrote. The flag files and the state (layer cache,
#   snapshots, images-in-use DB, cfsd's store) stay unless --purge. Refused while containerd's
#   config still names the gcfs snapshotter, unless --force.
# --destdir DIR: write under DIR instead of /, and leave systemd and every process alone (for
#   packaging and tests).
set -euo pipefail
here=$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")
source "$here/../../scripts/lib.sh"

PREFIX=/opt/gcfs
BINDIR=/usr/local/bin
UNITDIR=/usr/local/lib/systemd/system
UNITS=(gcfsd-downloader gcfsd cfsd)
RUN_DIRS=(/run/gcfsd /run/containerd-gcfs-grpc)
STATE_DIRS=(/var/lib/containerd/io.containerd.snapshotter.v1.gcfs /var/lib/cfsd)
CONTAINERD_CONFIG=/etc/containerd/config.toml

action=install from="" destdir="" enable="gcfsd-downloader gcfsd" start=1 purge=0 force=0
if [ $# -gt 0 ] && [[ $1 != --* ]]; then action=$1; shift; fi
while [ $# -gt 0 ]; do
  case $1 in
    --from) from=$(readlink -f -- "$2"); shift ;;
    --destdir) destdir=$(readlink -f -- "$2"); shift ;;
    --enable) enable=$2; shift ;;
    --no-start) start=0 ;;
    --purge) purge=1 ;;
    --force) force=1 ;;
    *) die "unknown argument $1 (see the comment at the top of $0)" ;;
  esac
  shift
done
[ "$action" = install ] || [ "$action" = uninstall ] || die "unknown action $action: install or uninstall"
[ "$(id -u)" = 0 ] || [ -n "$destdir" ] || die "$0 must run as root"
for unit in $enable; do
  [ -f "$here/$unit.service" ] || die "--enable: no unit $unit (units: ${UNITS[*]})"
done
root=${destdir:-}
# Only a real install on a machine booted with systemd touches systemd and processes.
manage=0
if [ -z "$destdir" ]; then
  if [ -d /run/systemd/system ]; then manage=1
  elif [ "$action" = uninstall ] || [ $start = 1 ]; then
    die "systemd is not running on this machine (PID 1 is $(ps -o comm= -p 1)): use --no-start, or --destdir"
  fi
fi

# The executables a tree provides: every "bin" of its workspace packages, as NAME=PATH lines.
tree_bins() {
  "$1/node_modules/.bin/node" -e '
    const { readdirSync, readFileSync, existsSync } = require("node:fs");
    for (const pkg of readdirSync(process.argv[1] + "/packages")) {
      const file = `${process.argv[1]}/packages/${pkg}/package.json`;
      if (!existsSync(file)) continue;
      for (const [name, path] of Object.entries(JSON.parse(readFileSync(file, "utf8")).bin ?? {}))
        console.log(`${name}=packages/${pkg}/${path.replace(/^\.\//, "")}`);
    }' "$1"
}

install_gcfs() {
  local new="$root$PREFIX.new" old="$root$PREFIX.old"
  rm -rf "$new" "$old"
  mkdir -p "$(dirname "$new")"
  if [ -n "$from" ]; then
    [ -x "$from/node_modules/.bin/node" ] && [ -d "$from/packages/gcfsd" ] ||
      die "--from $from is not a gcfs runtime tree (no node_modules/.bin/node or packages/gcfsd)"
    cp -a "$from" "$new"
  else
    log "copying the runtime of $ROOT"
    "$ROOT/scripts/runtime-tree" "$new"
  fi
  # Refuse a tree that cannot run before it replaces one that does.
  local version
  version=$("$new/packages/gcfsd/bin/gcfsd" --version) || die "the new tree's gcfsd does not run: nothing changed"
  if [ -d "$root$PREFIX" ]; then mv "$root$PREFIX" "$old"; fi
  mv "$new" "$root$PREFIX"
  log "installed $version in $root$PREFIX"

  mkdir -p "$root$BINDIR"
  local line name
  while IFS= read -r line; do
    name=${line%%=*}
    # Relative, so that the links resolve under --destdir too.
    ln -sfn "../../..$PREFIX/${line#*=}" "$root$BINDIR/$name"
  done < <(tree_bins "$root$PREFIX")

  mkdir -p "$root$UNITDIR" "$root/etc/default"
  for unit in "${UNITS[@]}"; do install -m 0644 "$here/$unit.service" "$root$UNITDIR/"; done
  for env in gcfsd cfsd; do
    if [ -e "$root/etc/default/$env" ]; then
      log "keeping /etc/default/$env (the new version's defaults: $here/$env.env)"
    else
      # Root's alone: a flag may carry a credential.
      install -m 0600 "$here/$env.env" "$root/etc/default/$env"
    fi
  done

  if [ $manage = 1 ]; then
    systemctl daemon-reload
    # The units to (re)start, in start order: those asked for, and any still running the
    # replaced tree (an upgrade restarts them all).
    local units=() unit
    for unit in "${UNITS[@]}"; do
      if [[ " $enable " == *" $unit "* ]] || systemctl --quiet is-active "$unit"; then units+=("$unit"); fi
    done
    if [ $start = 1 ]; then
      # shellcheck disable=SC2086 # one unit per word
      systemctl enable $enable
      # Stop, then start, each unit named in the order it must go: systemctl queues one job
      # per unit, and systemd orders a job only against those queued before it runs.
      # `restart` would order the stops as starts.
      # shellcheck disable=SC2046
      systemctl stop $(printf '%s\n' "${units[@]}" | tac)
      systemctl start "${units[@]}"
      systemctl --no-pager status "${units[@]}" || true
    else
      for unit in "${units[@]}"; do
        if systemctl --quiet is-active "$unit"; then log "$unit still runs the old version: restart it"; fi
      done
    fi
  fi
  rm -rf "$old"
}

# Values of a flag in the flag files (e.g. mount_point), the defaults when absent.
configured() {
  grep -ohE -- "--$1=[^ \"]+" "$root/etc/default/gcfsd" 2>/dev/null | sed 's/^[^=]*=//' || true
}

uninstall_gcfs() {
  if [ -z "$destdir" ] && [ $force = 0 ] && grep -qs 'proxy_plugins.gcfs' "$CONTAINERD_CONFIG"; then
    die "$CONTAINERD_CONFIG still uses the gcfs snapshotter: drain the node, remove it from the config and restart containerd first (docs/operations.md), or pass --force"
  fi
  if [ $manage = 1 ]; then
    # gcfsd first, then the downloader it uses (see install_gcfs).
    systemctl stop gcfsd gcfsd-downloader cfsd 2>/dev/null || true
    systemctl disable "${UNITS[@]}" 2>/dev/null || true
    systemctl reset-failed "${UNITS[@]}" 2>/dev/null || true
  fi
  if [ -z "$destdir" ]; then
    # Whatever still runs from the tree was not started by these units: not ours to kill.
    local pids
    pids=$(pgrep -f -- "$PREFIX/(packages|node_modules)/" || true)
    [ -z "$pids" ] || die "processes still run from $PREFIX (pids $(echo $pids)): stop them, then run uninstall again"
    # A mount left by a gcfsd killed after TimeoutStopSec: detach it (readers get ENOTCONN).
    local point
    while read -r point; do
      log "unmounting the stale gcfs mount at $point"
      umount -l "$point"
    done < <(awk '$3 == "fuse.gcfs" { print $2 }' /proc/self/mounts)
  fi
  local path
  for path in $(configured mount_point) $(configured '[a-z_]*uds_path') "${RUN_DIRS[@]}"; do
    case $path in
      /run/gcfsd/* | /run/containerd-gcfs-grpc/*) ;; # removed with their dir below
      *.sock) rm -f "$root$path" ;;
      */*) rmdir "$root$path" 2>/dev/null || true ;;
    esac
  done
  for path in "${RUN_DIRS[@]}"; do rm -rf "$root$path"; done
  for unit in "${UNITS[@]}"; do rm -f "$root$UNITDIR/$unit.service"; done
  [ $manage = 0 ] || systemctl daemon-reload
  local link
  for link in "$root$BINDIR"/*; do
    [[ -L $link && $(readlink "$link") == *"$PREFIX/"* ]] && rm -f "$link"
  done
  rm -rf "$root$PREFIX" "$root$PREFIX.new" "$root$PREFIX.old"
  if [ $purge = 1 ]; then
    rm -f "$root/etc/default/gcfsd" "$root/etc/default/cfsd"
    # The default places only: a --layer_cache_dir or --store elsewhere is the operator's.
    for path in "${STATE_DIRS[@]}"; do rm -rf "$root$path"; done
    log "removed gcfs, its flag files and its state in ${STATE_DIRS[*]}"
  else
    log "removed gcfs; kept /etc/default/gcfsd, /etc/default/cfsd and the state in ${STATE_DIRS[*]} (--purge removes them)"
  fi
}

"${action}_gcfs"

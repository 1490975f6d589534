#!/usr/bin/env bash
# stop-local-slurm.sh - stop the cluster of start-local-slurm.sh: cancel every job, wait for the
# running ones to end (stopping slurmd alone leaves job steps running), then stop slurmd,
# slurmctld and munged by their pid files. Packages and logs stay.
set -uo pipefail

stop() {  # stop NAME PIDFILE
  local pid
  [ -s "$2" ] || return 0
  pid=$(cat "$2")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { echo "$1 ($pid) did not stop: KILL"; kill -KILL "$pid"; }
  fi
  rm -f "$2"
}

if [ -s /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then
  squeue -h -o %A 2>/dev/null | sort -u | xargs -r scancel 2>/dev/null
  for _ in $(seq 150); do
    [ -z "$(squeue -h -t R,CG,S -o %A 2>/dev/null)" ] && break
    sleep 0.2
  done
fi
stop slurmd /run/slurmd.pid
stop slurmctld /run/slurmctld.pid
stop munged /run/munge/munged.pid
echo "local slurm stopped"

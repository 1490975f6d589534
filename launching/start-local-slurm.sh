#!/usr/bin/env bash
# start-local-slurm.sh - a one-node Slurm cluster on loopback for tests, CI and benchmarks
# (Debian 12 / Slurm 22.05, run as root, no systemd needed). `nox -s slurm_tests` and
# `nox -s bench_slurm` run it when no cluster answers; stop it with stop-local-slurm.sh.
#
# Every start wipes the controller's state (job ids restart at 1) unless SLURM_KEEP_STATE=1.
# Settings (environment):
#   SLURM_NODE_CPUS       CPUs the node advertises (default: nproc; more oversubscribes the node)
#   SLURM_MAX_ARRAY_SIZE  MaxArraySize (default 100001: array indices 0..100000)
#   SLURM_CRED_EXPIRE     seconds before a requeued job may restart (default 10; Slurm's is 120)
#   SLURM_INSTALL         1 (default): apt-get install slurmctld slurmd slurm-client munge if missing
#   SLURM_EXTRA_CONF      lines appended to slurm.conf as they are
#   SLURM_KEEP_STATE      1: restart a stopped controller on its saved state and slurm.conf (jobs
#                         and job ids survive; daemons still running are left alone)
set -euo pipefail

NODE_CPUS="${SLURM_NODE_CPUS:-$(nproc)}"
MAX_ARRAY_SIZE="${SLURM_MAX_ARRAY_SIZE:-100001}"
CRED_EXPIRE="${SLURM_CRED_EXPIRE:-10}"
INSTALL="${SLURM_INSTALL:-1}"
EXTRA_CONF="${SLURM_EXTRA_CONF:-}"
KEEP_STATE="${SLURM_KEEP_STATE:-0}"
CONF=/etc/slurm/slurm.conf
t0=$(date +%s.%N)

[ "$(id -u)" = 0 ] || { echo "start-local-slurm.sh: must run as root" >&2; exit 1; }

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v sbatch >/dev/null 2>&1 \
   || ! command -v munged >/dev/null 2>&1; then
  [ "$INSTALL" = 1 ] || { echo "start-local-slurm.sh: slurm is not installed (SLURM_INSTALL=0)" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

if [ -s /run/slurmctld.pid ] && kill -0 "$(cat /run/slurmctld.pid)" 2>/dev/null; then
  echo "start-local-slurm.sh: slurmctld is already running; run stop-local-slurm.sh first" >&2
  exit 1
fi

HOST=$(hostname -s)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$KEEP_STATE" != 1 ]; then
  rm -rf /var/spool/slurmctld/* /var/spool/slurmd/*          # fresh state every start
  if [ -f /var/log/slurm/jobcomp.log ]; then                  # job ids restart at 1
    mv /var/log/slurm/jobcomp.log /var/log/slurm/jobcomp.log.prev
  fi
fi

# munge: Debian's postinst makes the key; make one if it did not
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
if ! { [ -s /run/munge/munged.pid ] && kill -0 "$(cat /run/munge/munged.pid)" 2>/dev/null; }; then
  runuser -u munge -- /usr/sbin/munged
fi
for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null

OVERSUBSCRIBE=""
[ "$NODE_CPUS" -gt "$(nproc)" ] && OVERSUBSCRIBE="SlurmdParameters=config_overrides"
MEM_MB=$(( $(awk '/^MemTotal/{print $2}' /proc/meminfo) / 1024 * 9 / 10 ))

if [ "$KEEP_STATE" = 1 ] && [ -s "$CONF" ]; then
  :  # the saved state goes with the configuration it was made under
else
cat > "$CONF" <<CONFEOF
# written by sweepax launching/start-local-slurm.sh: a one-node test cluster on loopback
ClusterName=local
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=${CRED_EXPIRE}
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
# process tracking without cgroups: works whatever the host's cgroup layout
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# no slurmdbd (no sacct): finished jobs stay in squeue/scontrol for MinJobAge and go to a text log
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
MinJobAge=3600
# start batch jobs on every 1 s tick (default: every 3 s) and do a full pass every 10 s
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=10
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MaxArraySize=${MAX_ARRAY_SIZE}
MaxJobCount=200000
ReturnToService=2
MailProg=/bin/true
${OVERSUBSCRIBE}
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${NODE_CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
# preemption: a job of 'high' (PriorityTier 2) requeues the jobs of 'low' it needs room from
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=low Nodes=${HOST} PriorityTier=1 MaxTime=INFINITE State=UP
PartitionName=high Nodes=${HOST} PriorityTier=2 MaxTime=INFINITE State=UP
${EXTRA_CONF}
CONFEOF
fi

/usr/sbin/slurmctld
running /run/slurmd.pid || /usr/sbin/slurmd

# a node that runs jobs kept from the saved state is up as well as an idle one
up() { case "$1" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac; }
state=""
for _ in $(seq 300); do
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
  up "$state" && break
  sleep 0.1
done
if ! up "$state"; then
  scontrol update nodename="$HOST" state=resume 2>/dev/null || true
  sleep 1
  state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null || true)
fi
up "$state" || { echo "start-local-slurm.sh: node is '$state'; see /var/log/slurm/*.log" >&2; exit 1; }
echo "local slurm up: node $HOST, $NODE_CPUS CPUs, MaxArraySize=$MAX_ARRAY_SIZE," \
  "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"

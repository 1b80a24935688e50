#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, to try profiles/slurm without a cluster
# (and for CI). Debian/Ubuntu, as root, no systemd needed: every daemon is started by hand and
# stopped by its PID file.
#
#   scripts/local-slurm.sh start    install slurm-wlm, munge, slurmdbd + MariaDB if missing;
#                                   write the configs; start the daemons; wait for the node
#   scripts/local-slurm.sh stop     stop every daemon this script started (by PID file)
#   scripts/local-slurm.sh status   daemons and sinfo
#
# The node advertises GPUS fake GPUs of type GPU_MODEL (default 4 × v100: the growth phases'
# request in profiles/slurm) backed by dummy character devices, so GPU jobs are scheduled,
# accounted (sacct shows gres/gpu) and run — on the CPU. Accounting (slurmdbd on MariaDB)
# gives `sacct`, which the Snakemake executor uses for job status and its efficiency report.
#
# Settings (environment): GPUS=4 GPU_MODEL=v100 ACCOUNT=latentage PARTITION=debug, and
# CPUS / MEMORY_MB: what the node advertises (default: what slurmd detects). CI advertises
# more than the machine has (SlurmdParameters=config_overrides), so the profile's real
# per-rule CPU and memory requests are scheduled and can be checked with sacct.
set -euo pipefail

GPUS=${GPUS:-4}
GPU_MODEL=${GPU_MODEL:-v100}
ACCOUNT=${ACCOUNT:-latentage}
PARTITION=${PARTITION:-debug}
CLUSTER=latentage-local
NODE=$(hostname -s)
ETC=/etc/slurm
STATE=/var/lib/slurm
LOGS=/var/log/slurm
RUN=/run/latentage-slurm
DB_SOCKET=/run/mysqld/mysqld.sock
DB_PASSWORD=latentage-local   # MariaDB listens on its socket only (--skip-networking)

# munged and mariadbd run as their own users and keep their PID files in their own run dirs
pidfile() {
  case $1 in
    munged) echo /run/munge/munged.pid ;;
    mariadbd) echo /run/mysqld/mysqld.pid ;;
    *) echo "$RUN/$1.pid" ;;
  esac
}

say() { echo "[local-slurm $(date +%T)] $*"; }
running() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# until <seconds> <what> <command…>: retry a check every half second
until_ok() {
  local deadline=$(($(date +%s) + $1)) what=$2
  shift 2
  while ! "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "gave up waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

stop_daemon() { # stop_daemon <pid file> <name>
  local pid
  running "$1" || { rm -f "$1"; return 0; }
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
  say "stopped $2 ($pid)"
}

install_packages() {
  local want=(slurm-wlm slurmdbd munge mariadb-server) missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure() {
  local cpus memory
  local overrides=""
  cpus=$(slurmd -C | grep -o 'CPUs=[0-9]*' | head -1 | cut -d= -f2)
  memory=$(slurmd -C | grep -o 'RealMemory=[0-9]*' | head -1 | cut -d= -f2)
  memory=$((memory * 9 / 10))
  if [ -n "${CPUS:-}" ] || [ -n "${MEMORY_MB:-}" ]; then
    cpus=${CPUS:-$cpus}
    memory=${MEMORY_MB:-$memory}
    overrides="SlurmdParameters=config_overrides"
  fi
  install -d -o slurm -g slurm "$STATE/ctld" "$STATE/d" "$LOGS"
  install -d -o slurm -g slurm "$RUN"
  install -d "$STATE/gpus"
  for ((i = 0; i < GPUS; i++)); do
    [ -c "$STATE/gpus/gpu$i" ] || mknod -m 0666 "$STATE/gpus/gpu$i" c 1 3
  done
  cat >"$ETC/slurm.conf" <<CONF
# written by scripts/local-slurm.sh: one node, fake GPUs, accounting in slurmdbd
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
MailProg=/bin/true
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# containers without cgroups: follow processes through /proc, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStorageEnforce=associations
AccountingStorageTRES=gres/gpu,gres/gpu:$GPU_MODEL
JobAcctGatherType=jobacct_gather/linux
GresTypes=gpu
$overrides
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory Gres=gpu:$GPU_MODEL:$GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
  cat >"$ETC/gres.conf" <<CONF
# fake GPUs: /dev/null-like devices; jobs see CUDA_VISIBLE_DEVICES but no CUDA device
NodeName=$NODE Name=gpu Type=$GPU_MODEL File=$STATE/gpus/gpu[0-$((GPUS - 1))]
CONF
  install -m 0600 -o slurm -g slurm /dev/stdin "$ETC/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=slurm
LogFile=$LOGS/slurmdbd.log
PidFile=$RUN/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
CONF
}

start_munge() {
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge /run/munge
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  running "$(pidfile munged)" || runuser -u munge -- /usr/sbin/munged --pid-file="$(pidfile munged)"
  until_ok 20 munge bash -c 'munge -n | unmunge'
}

start_database() {
  install -d -o mysql -g mysql /run/mysqld
  [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
  if ! running "$(pidfile mariadbd)"; then
    setsid /usr/sbin/mariadbd --user=mysql --skip-networking --socket="$DB_SOCKET" \
      --pid-file="$(pidfile mariadbd)" </dev/null >"$LOGS/mariadb.log" 2>&1 &
  fi
  until_ok 60 MariaDB mysqladmin --socket="$DB_SOCKET" ping
  mysql --socket="$DB_SOCKET" -u root <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
  running "$(pidfile slurmdbd)" || /usr/sbin/slurmdbd
  until_ok 60 slurmdbd sacctmgr -n list cluster
}

start_slurm() {
  running "$(pidfile slurmctld)" || /usr/sbin/slurmctld
  until_ok 60 slurmctld scontrol ping
  running "$(pidfile slurmd)" || /usr/sbin/slurmd
  local deadline=$(($(date +%s) + 60)) state
  while :; do
    state=$(sinfo -h -n "$NODE" -o %t 2>/dev/null | head -1)
    case $state in
      idle | mix | alloc) break ;;
      drain* | down* | inval*) scontrol update nodename="$NODE" state=resume 2>/dev/null || true ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "node $NODE stuck in state '$state'"
      tail -n 20 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2
      return 1
    fi
    sleep 0.5
  done
  # the cluster registers itself with slurmdbd; then root gets an account to submit under
  until_ok 30 "cluster registration" bash -c "sacctmgr -n -P list cluster format=cluster | grep -qx $CLUSTER"
  [ -n "$(sacctmgr -n -P list account "$ACCOUNT" format=account)" ] ||
    sacctmgr -i add account "$ACCOUNT" Description=latentage Organization=latentage >/dev/null
  [ -n "$(sacctmgr -n -P list assoc users=root accounts="$ACCOUNT" format=user)" ] ||
    sacctmgr -i add user root Account="$ACCOUNT" DefaultAccount="$ACCOUNT" >/dev/null
}

case ${1:-start} in
  start)
    [ "$(id -u)" = 0 ] || { echo "run as root (it installs packages and starts daemons)" >&2; exit 1; }
    started=$(date +%s)
    install_packages
    # a previous start with other settings: restart with the new configs
    for d in slurmd slurmctld slurmdbd; do stop_daemon "$(pidfile $d)" "$d"; done
    configure
    start_munge
    start_database
    start_slurm
    say "node $NODE ready in $(($(date +%s) - started)) s: $(sinfo -h -o '%P %t CPUs=%c mem=%m MB %G')"
    say "submit under account $ACCOUNT; stop with: $0 stop"
    ;;
  stop)
    for d in slurmd slurmctld slurmdbd mariadbd munged; do stop_daemon "$(pidfile $d)" "$d"; done
    ;;
  status)
    for d in munged mariadbd slurmdbd slurmctld slurmd; do
      if running "$(pidfile $d)"; then echo "$d running ($(cat "$(pidfile $d)"))"; else echo "$d stopped"; fi
    done
    sinfo -o '%P %a %D %t %N CPUs=%c mem=%m %G' 2>/dev/null || true
    ;;
  *)
    echo "usage: $0 [start|stop|status]" >&2
    exit 2
    ;;
esac

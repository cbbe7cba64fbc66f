//! Fuzzes the vmfs scanner. A VMFS volume's metadata lies megabytes apart (the volume header
//! at 1 MiB, the file system's descriptor and system files further on) and libFuzzer keeps
//! inputs under 1 MiB, so the input describes the volume as sparse 4 KiB pieces
//! (`lifeboat_fuzz::SparseVolume`; seeds made from synthetic VMFS5/6 volumes), then it is
//! drained as the other scanner targets drain theirs (`lifeboat_fuzz::drain`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lifeboat_fuzz::drain_sparse(&lifeboat_fs_vmfs::VmfsScanner, data);
});

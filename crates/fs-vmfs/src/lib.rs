//! The VMFS5/VMFS6 scanner of lifeboat.
//!
//! One job: tell which byte ranges of a VMware VMFS datastore partition are in use, so that
//! only those are stored. The partition starts with the VMFS LVM header ([`lvm`]) that maps a
//! logical volume onto it; the filesystem descriptor ([`fs_header`]) sits at 2 MiB of that
//! volume. Every file (system files included) is a file descriptor ([`descriptor`]) in the
//! `.fdc.sf` resource file ([`resource`]); the scanner walks all of them and marks the file
//! blocks (VMFS6: small and large file blocks) they reference, directly or through pointer
//! blocks ([`address`] decodes the block addresses). The system files hold the sub-blocks,
//! pointer blocks, descriptors, journal and heartbeat regions, so their blocks keep all the
//! metadata. On VMFS5 the file block bitmap ([`bitmap`], `.fbb.sf`) is read as well and every
//! block it marks allocated is kept too. Bytes of the partition outside the logical volume
//! are always kept.
//!
//! Anything not understood (an unknown version, VMFS-L, a volume spanning several devices, a
//! resource header that does not add up, an address outside the volume) is an
//! [`FsError::Corrupt`](lifeboat_fs::FsError::Corrupt) whose cause is a [`VmfsError`]: the
//! caller copies the partition whole.
#![forbid(unsafe_code)]

pub mod address;
pub mod bitmap;
mod bytes;
pub mod descriptor;
pub mod fs_header;
pub mod lvm;
pub mod resource;
mod scanner;

pub use bytes::{VmfsError, FS_NAME};
pub use scanner::{VmfsScanner, VmfsUsedBlocks};

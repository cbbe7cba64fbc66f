//! An open disk: a block device or a regular file holding a whole-disk image.

use crate::aligned::AlignedBuf;
use crate::error::{BlockDevError, Result};
use crate::ioctl;
use crate::sysfs::{
    dev_dir, identity_of, parse_dev, read_attr, read_num, split_dev, whole_disk_dir, DiskIdentity,
};
use crate::usage::{DiskRef, Usage};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// How to open a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// Reading only.
    Read,
    /// Reading only, and for a block device an exclusive claim (`O_EXCL`, as for
    /// [`OpenMode::ReadWriteExclusive`]): while the claim holds, nothing can mount the device
    /// or stack dm/md on it, and an open that is already there (mounted, active LVM, md,
    /// another exclusive open) makes it fail with [`BlockDevError::Busy`]. A regular file is
    /// locked shared (`flock`): a restore onto it (which locks exclusively) waits for nothing
    /// and fails with [`BlockDevError::Busy`].
    ReadExclusive,
    /// Reading and writing.
    ReadWrite,
    /// Reading and writing, and for a block device an exclusive claim (`O_EXCL`): the
    /// kernel refuses with [`BlockDevError::Busy`] while the device or one of its partitions
    /// is mounted, an active swap, held by dm/md, or open exclusively elsewhere. A second
    /// exclusive open of the same device fails too. A regular file is locked exclusively
    /// (`flock`); another lifeboat holding a lock on it makes the open fail with
    /// [`BlockDevError::Busy`].
    ReadWriteExclusive,
}

impl OpenMode {
    fn writable(self) -> bool {
        !matches!(self, OpenMode::Read | OpenMode::ReadExclusive)
    }
    fn exclusive(self) -> bool {
        matches!(self, OpenMode::ReadExclusive | OpenMode::ReadWriteExclusive)
    }
    fn describe(self, direct: bool) -> &'static str {
        match (self, direct) {
            (OpenMode::Read, false) => "read-only",
            (OpenMode::Read, true) => "read-only, direct I/O",
            (OpenMode::ReadExclusive, false) => "read-only, exclusive",
            (OpenMode::ReadExclusive, true) => "read-only, exclusive, direct I/O",
            (OpenMode::ReadWrite, false) => "read-write",
            (OpenMode::ReadWrite, true) => "read-write, direct I/O",
            (OpenMode::ReadWriteExclusive, false) => "read-write, exclusive",
            (OpenMode::ReadWriteExclusive, true) => "read-write, exclusive, direct I/O",
        }
    }
}

/// What [`Disk::reread_partitions`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RereadOutcome {
    /// The kernel re-read the partition table.
    Reread,
    /// The device does not support partitions (e.g. a loop device set up without partition
    /// scanning: `losetup -P` enables it); nothing to do.
    NotSupported,
    /// The disk is a regular file; nothing to do.
    NotABlockDevice,
}

/// An open disk: a block device or a regular file that holds a whole-disk image.
///
/// All reads and writes are positional and take `&self`, so one `Disk` can be shared between
/// threads.
#[derive(Debug)]
pub struct Disk {
    file: File,
    path: PathBuf,
    mode: OpenMode,
    block: bool,
    dev: Option<(u32, u32)>,
    size: u64,
    logical: u32,
    physical: u32,
    direct: bool,
    align: u32,
}

fn ioctl_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(io::Error) -> BlockDevError + 'a {
    move |source| BlockDevError::Ioctl {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Logical block size of the block device holding a file (for direct I/O on image files).
fn fs_block_size(meta: &fs::Metadata) -> Option<u32> {
    let sys = Path::new("/sys");
    let dir = whole_disk_dir(&dev_dir(sys, split_dev(meta.dev()))?);
    read_num(&dir.join("queue/logical_block_size"))
}

impl Disk {
    /// Opens a block device or a regular image file with buffered I/O.
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<Disk> {
        Disk::open_inner(path.as_ref(), mode, false)
    }

    /// Opens a block device or a regular image file with direct I/O (`O_DIRECT`), bypassing
    /// the page cache. On a filesystem that refuses `O_DIRECT`, falls back to buffered I/O:
    /// check [`Disk::is_direct`]. With direct I/O, [`Disk::read_exact_at`] and
    /// [`Disk::write_all_at`] need offsets, lengths and buffer addresses aligned to
    /// [`Disk::direct_alignment`] (use [`AlignedBuf`]).
    pub fn open_direct(path: impl AsRef<Path>, mode: OpenMode) -> Result<Disk> {
        Disk::open_inner(path.as_ref(), mode, true)
    }

    fn open_inner(path: &Path, mode: OpenMode, direct: bool) -> Result<Disk> {
        let meta = fs::metadata(path).map_err(|source| BlockDevError::Stat {
            path: path.to_path_buf(),
            source,
        })?;
        let block = meta.file_type().is_block_device();
        if !block && !meta.is_file() {
            return Err(BlockDevError::NotADisk {
                path: path.to_path_buf(),
            });
        }
        let excl = block && mode.exclusive();
        let try_open = |direct: bool| {
            let mut flags = 0;
            if excl {
                flags |= libc::O_EXCL;
            }
            if direct {
                flags |= libc::O_DIRECT;
            }
            OpenOptions::new()
                .read(true)
                .write(mode.writable())
                .custom_flags(flags)
                .open(path)
        };
        let open_err = |direct: bool, source: io::Error| {
            if excl && source.raw_os_error() == Some(libc::EBUSY) {
                BlockDevError::Busy {
                    path: path.to_path_buf(),
                }
            } else {
                BlockDevError::Open {
                    path: path.to_path_buf(),
                    mode: mode.describe(direct),
                    source,
                }
            }
        };
        let (file, direct) = match try_open(direct) {
            Ok(f) => (f, direct),
            Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                (try_open(false).map_err(|e| open_err(false, e))?, false)
            }
            Err(e) => return Err(open_err(direct, e)),
        };
        if !block && mode.exclusive() {
            // An image file gets the same promise through an advisory lock that every
            // lifeboat honours: a restore holds it exclusively, a save shared.
            let locked = if mode.writable() {
                file.try_lock()
            } else {
                file.try_lock_shared()
            };
            match locked {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(BlockDevError::Busy {
                        path: path.to_path_buf(),
                    })
                }
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(BlockDevError::Open {
                        path: path.to_path_buf(),
                        mode: mode.describe(direct),
                        source,
                    })
                }
            }
        }
        let (size, logical, physical, dev) = if block {
            let size = ioctl::size_bytes(&file).map_err(ioctl_err(path, "BLKGETSIZE64"))?;
            let logical =
                ioctl::logical_sector_size(&file).map_err(ioctl_err(path, "BLKSSZGET"))?;
            let physical =
                ioctl::physical_sector_size(&file).map_err(ioctl_err(path, "BLKPBSZGET"))?;
            (size, logical, physical, Some(split_dev(meta.rdev())))
        } else {
            (meta.len(), 512, 512, None)
        };
        let align = if block {
            logical
        } else {
            fs_block_size(&meta).unwrap_or(4096)
        }
        .max(512);
        Ok(Disk {
            file,
            path: path.to_path_buf(),
            mode,
            block,
            dev,
            size,
            logical,
            physical,
            direct,
            align,
        })
    }

    /// For an image file, declares the logical sector size of the disk it holds (512 or
    /// 4096; files default to 512). For a block device only its own size is accepted.
    pub fn with_logical_sector_size(mut self, size: u32) -> Result<Disk> {
        let refuse = |reason: String| BlockDevError::SectorSize {
            path: self.path.clone(),
            requested: size,
            reason,
        };
        if self.block {
            if size != self.logical {
                return Err(refuse(format!("the device reports {} bytes", self.logical)));
            }
        } else if size != 512 && size != 4096 {
            return Err(refuse("image files take 512 or 4096".to_string()));
        } else {
            self.logical = size;
            self.physical = self.physical.max(size);
        }
        Ok(self)
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// How it was opened.
    pub fn mode(&self) -> OpenMode {
        self.mode
    }

    /// Size in bytes (`BLKGETSIZE64`; for a file its length when opened).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Logical sector size in bytes (`BLKSSZGET`; 512 for files unless declared otherwise).
    pub fn logical_sector_size(&self) -> u32 {
        self.logical
    }

    /// Physical sector size in bytes (`BLKPBSZGET`; for files the logical size).
    pub fn physical_sector_size(&self) -> u32 {
        self.physical
    }

    /// True for a block device, false for a regular file.
    pub fn is_block_device(&self) -> bool {
        self.block
    }

    /// (major, minor) of a block device; `None` for a file.
    pub fn dev(&self) -> Option<(u32, u32)> {
        self.dev
    }

    /// True when opened with `O_DIRECT` and the filesystem accepted it.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Alignment of offsets, lengths and buffers that direct I/O needs: the logical sector
    /// size of a block device; for a file, that of the device holding it (4096 when unknown).
    pub fn direct_alignment(&self) -> u32 {
        self.align
    }

    fn check(&self, op: &'static str, addr: usize, len: usize, offset: u64) -> Result<()> {
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.size)
        {
            return Err(BlockDevError::OutOfRange {
                path: self.path.clone(),
                op,
                offset,
                len,
                size: self.size,
            });
        }
        if self.direct {
            let a = self.align;
            let what = if !offset.is_multiple_of(u64::from(a)) {
                "offset"
            } else if !len.is_multiple_of(a as usize) {
                "length"
            } else if !addr.is_multiple_of(a as usize) {
                "buffer address"
            } else {
                return Ok(());
            };
            return Err(BlockDevError::Misaligned {
                path: self.path.clone(),
                what,
                offset,
                len,
                align: a,
            });
        }
        Ok(())
    }

    /// Fills `buf` from byte `offset`.
    pub fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.check("read", buf.as_ptr() as usize, buf.len(), offset)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| BlockDevError::Read {
                path: self.path.clone(),
                offset,
                len: buf.len(),
                source,
            })
    }

    /// Writes all of `buf` at byte `offset`. Never extends the disk: the write must lie
    /// inside [`Disk::size`] (size an image file before opening it).
    pub fn write_all_at(&self, buf: &[u8], offset: u64) -> Result<()> {
        if !self.mode.writable() {
            return Err(BlockDevError::ReadOnly {
                path: self.path.clone(),
                offset,
            });
        }
        self.check("write", buf.as_ptr() as usize, buf.len(), offset)?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|source| BlockDevError::Write {
                path: self.path.clone(),
                offset,
                len: buf.len(),
                source,
            })
    }

    /// Makes `len` bytes at `offset` read back as zeros, as cheaply as the device allows:
    /// `BLKZEROOUT` on a block device (no zeros are transferred where the device supports
    /// WRITE ZEROES), a punched hole in an image file (which stays sparse). Falls back to
    /// writing zeros.
    pub fn write_zeroes(&self, offset: u64, len: u64) -> Result<()> {
        if !self.mode.writable() {
            return Err(BlockDevError::ReadOnly {
                path: self.path.clone(),
                offset,
            });
        }
        if len == 0 {
            return Ok(());
        }
        let fast = if self.block {
            // Page-aligned only: the ioctl drops cached pages of the range, which must not
            // cut through a page that holds data written just before.
            let ss = u64::from(self.logical).max(4096);
            offset.is_multiple_of(ss)
                && len.is_multiple_of(ss)
                && offset.checked_add(len).is_some_and(|e| e <= self.size)
                && ioctl::zero_out(&self.file, offset, len).is_ok()
        } else {
            offset.checked_add(len).is_some_and(|e| e <= self.size)
                && ioctl::punch_hole(&self.file, offset, len).is_ok()
        };
        if fast {
            return Ok(());
        }
        let zeros = AlignedBuf::new((len.min(1 << 20)) as usize, self.align.max(512) as usize);
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(zeros.len() as u64) as usize;
            self.write_all_at(&zeros[..n], offset + done)?;
            done += n as u64;
        }
        Ok(())
    }

    /// True when `len` bytes at `offset` are known to read as zeros without reading them: a
    /// hole of a sparse image file (`SEEK_DATA`). Always false for block devices.
    pub fn is_hole(&self, offset: u64, len: u64) -> bool {
        if self.block || len == 0 {
            return false;
        }
        match ioctl::next_data(&self.file, offset) {
            Ok(None) => true,
            Ok(Some(d)) => d >= offset.saturating_add(len),
            Err(_) => false,
        }
    }

    /// Flushes written data to stable storage (`fsync`).
    pub fn sync(&self) -> Result<()> {
        self.file.sync_all().map_err(|source| BlockDevError::Sync {
            path: self.path.clone(),
            source,
        })
    }

    /// Asks the kernel to re-read the partition table (`BLKRRPART`), e.g. after a restore.
    pub fn reread_partitions(&self) -> Result<RereadOutcome> {
        if !self.block {
            return Ok(RereadOutcome::NotABlockDevice);
        }
        match ioctl::reread_partitions(&self.file) {
            Ok(()) => Ok(RereadOutcome::Reread),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(RereadOutcome::NotSupported),
            Err(source) => Err(BlockDevError::Reread {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Model, vendor, serial and WWN from sysfs and udev (for a partition: of its disk).
    /// All `None` for a file.
    pub fn identity(&self) -> DiskIdentity {
        let Some(dev) = self.dev else {
            return DiskIdentity::default();
        };
        let sys = Path::new("/sys");
        let Some(dir) = dev_dir(sys, dev) else {
            return DiskIdentity::default();
        };
        let whole = whole_disk_dir(&dir);
        let wdev = read_attr(&whole.join("dev"))
            .and_then(|s| parse_dev(&s))
            .unwrap_or(dev);
        identity_of(sys, &whole, wdev)
    }

    /// True when this disk is one of `refs` (see [`crate::disks_holding_path`]): the same
    /// device number as a referenced disk or as one of its partitions that holds the path, or
    /// for an image file, the backing file of one of the loop devices. (Another partition of a
    /// referenced disk is not one of them.)
    pub fn is_one_of(&self, refs: &[DiskRef]) -> bool {
        match self.dev {
            Some(dev) => refs
                .iter()
                .any(|r| r.dev == dev || r.partitions.contains(&dev)),
            None => {
                let me = fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone());
                refs.iter()
                    .filter_map(|r| r.backing_file.as_ref())
                    .any(|b| fs::canonicalize(b).unwrap_or_else(|_| b.clone()) == me)
            }
        }
    }

    /// True when `other` is the same disk: the same device number, or for image files the
    /// same file (both paths resolve to one). Two opens of one disk under different names
    /// (`/dev/sda` and a `/dev/disk/by-id` link, or two paths to one image) are the same disk.
    pub fn is_same_disk(&self, other: &Disk) -> bool {
        match (self.dev, other.dev) {
            (Some(x), Some(y)) => x == y,
            _ => {
                let a = fs::canonicalize(&self.path).ok();
                a.is_some() && a == fs::canonicalize(&other.path).ok()
            }
        }
    }

    /// What keeps this disk busy: see [`crate::in_use`].
    pub fn in_use(&self) -> Result<Vec<Usage>> {
        crate::in_use(&self.path)
    }

    /// Reads an arbitrary range through an aligned bounce buffer (direct I/O).
    fn read_bounced(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        let a = u64::from(self.align);
        let len = buf.len() as u64;
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(BlockDevError::OutOfRange {
                path: self.path.clone(),
                op: "read",
                offset,
                len: buf.len(),
                size: self.size,
            });
        }
        let start = offset / a * a;
        let end = (offset + len).div_ceil(a) * a;
        let mut bounce = AlignedBuf::new((end - start) as usize, self.align as usize);
        let need = (offset + len - start) as usize;
        let mut got = 0usize;
        while got < need {
            match self.file.read_at(&mut bounce[got..], start + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(BlockDevError::Read {
                        path: self.path.clone(),
                        offset: start + got as u64,
                        len: bounce.len() - got,
                        source,
                    })
                }
            }
            // Direct reads must stay aligned: stop at a short read that is not.
            if !got.is_multiple_of(self.align as usize) && got < need {
                break;
            }
        }
        if got < need {
            return Err(BlockDevError::Read {
                path: self.path.clone(),
                offset: start + got as u64,
                len: need - got,
                source: io::ErrorKind::UnexpectedEof.into(),
            });
        }
        let skip = (offset - start) as usize;
        buf.copy_from_slice(&bounce[skip..skip + buf.len()]);
        Ok(())
    }
}

/// Positional reads for the filesystem scanners. With direct I/O, unaligned requests go
/// through an aligned bounce buffer.
impl lifeboat_fs::ReadAt for Disk {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let aligned = !self.direct
            || (offset.is_multiple_of(u64::from(self.align))
                && buf.len().is_multiple_of(self.align as usize)
                && (buf.as_ptr() as usize).is_multiple_of(self.align as usize));
        let r = if aligned {
            Disk::read_exact_at(self, buf, offset)
        } else {
            self.read_bounced(buf, offset)
        };
        r.map_err(|e| match e {
            BlockDevError::OutOfRange { .. } => io::Error::new(io::ErrorKind::UnexpectedEof, e),
            e => io::Error::other(e),
        })
    }
    fn len(&self) -> u64 {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_fs::ReadAt;

    fn image(len: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("disk.img");
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        fs::write(&p, data).unwrap();
        (dir, p)
    }

    #[test]
    fn the_same_image_under_two_names_is_the_same_disk() {
        let (d, p) = image(1 << 16);
        let link = d.path().join("link.img");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let other = d.path().join("other.img");
        fs::write(&other, [0u8; 4096]).unwrap();
        let a = Disk::open(&p, OpenMode::Read).unwrap();
        let b = Disk::open(&link, OpenMode::Read).unwrap();
        let c = Disk::open(&other, OpenMode::Read).unwrap();
        assert!(a.is_same_disk(&b));
        assert!(b.is_same_disk(&a));
        assert!(!a.is_same_disk(&c));
    }

    #[test]
    fn image_files_open_with_their_length_and_512_byte_sectors() {
        let (_d, p) = image(1 << 20);
        let disk = Disk::open(&p, OpenMode::Read).unwrap();
        assert_eq!(disk.size(), 1 << 20);
        assert_eq!(disk.logical_sector_size(), 512);
        assert!(!disk.is_block_device());
        assert_eq!(disk.dev(), None);
        assert_eq!(disk.path(), p);
        let mut b = [0u8; 4];
        disk.read_exact_at(&mut b, 251).unwrap();
        assert_eq!(b, [0, 1, 2, 3]);
        assert!(matches!(
            disk.write_all_at(&b, 0),
            Err(BlockDevError::ReadOnly { offset: 0, .. })
        ));
        let e = disk.read_exact_at(&mut b, (1 << 20) - 2).unwrap_err();
        assert!(matches!(e, BlockDevError::OutOfRange { .. }));
        assert!(e.to_string().contains("disk.img"), "{e}");
        assert_eq!(
            disk.reread_partitions().unwrap(),
            RereadOutcome::NotABlockDevice
        );
        assert_eq!(disk.identity(), DiskIdentity::default());
        let disk = disk.with_logical_sector_size(4096).unwrap();
        assert_eq!(disk.logical_sector_size(), 4096);
        assert!(disk.with_logical_sector_size(1000).is_err());
    }

    #[test]
    fn read_write_round_trip_and_sync() {
        let (_d, p) = image(64 << 10);
        let disk = Disk::open(&p, OpenMode::ReadWriteExclusive).unwrap();
        disk.write_all_at(b"lifeboat", 1000).unwrap();
        disk.sync().unwrap();
        let mut b = [0u8; 8];
        disk.read_exact_at(&mut b, 1000).unwrap();
        assert_eq!(&b, b"lifeboat");
        assert!(disk.write_all_at(b"x", 64 << 10).is_err());
    }

    #[test]
    fn direct_io_checks_alignment_and_bounces_for_read_at() {
        let (_d, p) = image(256 << 10);
        let disk = Disk::open_direct(&p, OpenMode::ReadWrite).unwrap();
        let a = disk.direct_alignment() as usize;
        let mut buf = AlignedBuf::new(a * 2, a);
        buf.iter_mut().for_each(|x| *x = 0xAB);
        disk.write_all_at(&buf, a as u64).unwrap();
        let mut back = AlignedBuf::new(a * 2, a);
        disk.read_exact_at(&mut back, a as u64).unwrap();
        assert!(back.iter().all(|x| *x == 0xAB));
        if disk.is_direct() {
            let e = disk.read_exact_at(&mut back[..a], 1).unwrap_err();
            assert!(
                matches!(e, BlockDevError::Misaligned { what: "offset", .. }),
                "{e}"
            );
            let e = disk.read_exact_at(&mut back[..a - 1], 0).unwrap_err();
            assert!(
                matches!(e, BlockDevError::Misaligned { what: "length", .. }),
                "{e}"
            );
            let e = disk.write_all_at(&buf[1..=a], 0).unwrap_err();
            assert!(
                matches!(
                    e,
                    BlockDevError::Misaligned {
                        what: "buffer address",
                        ..
                    }
                ),
                "{e}"
            );
        }
        // The ReadAt view works for any range.
        let mut odd = [0u8; 7];
        ReadAt::read_exact_at(&disk, &mut odd, a as u64 - 3).unwrap();
        let want: Vec<u8> = ((a - 3)..a).map(|i| (i % 251) as u8).collect();
        assert_eq!(&odd[..3], &want[..]);
        assert_eq!(&odd[3..], &[0xAB; 4]);
        assert_eq!(ReadAt::len(&disk), 256 << 10);
        let e = ReadAt::read_exact_at(&disk, &mut odd, (256 << 10) - 3).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn open_refuses_directories_and_missing_paths() {
        let d = tempfile::tempdir().unwrap();
        assert!(matches!(
            Disk::open(d.path(), OpenMode::Read),
            Err(BlockDevError::NotADisk { .. })
        ));
        let e = Disk::open(d.path().join("nope"), OpenMode::Read).unwrap_err();
        assert!(matches!(e, BlockDevError::Stat { .. }));
        assert!(e.to_string().contains("nope"));
    }

    #[test]
    fn image_file_matches_loop_backing_refs() {
        let (_d, p) = image(4096);
        let disk = Disk::open(&p, OpenMode::Read).unwrap();
        let r = DiskRef {
            name: "loop9".into(),
            dev: (7, 9),
            backing_file: Some(p.clone()),
            partitions: Vec::new(),
        };
        assert!(disk.is_one_of(std::slice::from_ref(&r)));
        let other = DiskRef {
            backing_file: Some(p.with_file_name("other.img")),
            ..r
        };
        assert!(!disk.is_one_of(&[other]));
    }
}

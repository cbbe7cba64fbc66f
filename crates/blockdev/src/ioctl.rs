//! The crate's only unsafe code: the three block-device `ioctl`s it needs, each wrapped in a
//! safe function that takes an open [`File`].

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Direction bits and width of the size field in an ioctl request number; they differ on the
/// few architectures that kept their historic layout.
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
mod layout {
    pub const NONE: u64 = 1;
    pub const READ: u64 = 2;
    pub const SIZE_BITS: u64 = 13;
}
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
mod layout {
    pub const NONE: u64 = 0;
    pub const READ: u64 = 2;
    pub const SIZE_BITS: u64 = 14;
}

/// The kernel's `_IOC(dir, type, nr, size)`.
const fn ioc(dir: u64, ty: u64, nr: u64, size: u64) -> u64 {
    (dir << (16 + layout::SIZE_BITS)) | (size << 16) | (ty << 8) | nr
}

/// `_IOR(0x12, 114, size_t)`: size of the device in bytes (the kernel writes a u64).
const BLKGETSIZE64: u64 = ioc(layout::READ, 0x12, 114, std::mem::size_of::<usize>() as u64);
/// `_IO(0x12, 104)`: logical sector size (the kernel writes an int).
const BLKSSZGET: u64 = ioc(layout::NONE, 0x12, 104, 0);
/// `_IO(0x12, 123)`: physical sector size (the kernel writes an unsigned int).
const BLKPBSZGET: u64 = ioc(layout::NONE, 0x12, 123, 0);
/// `_IO(0x12, 95)`: re-read the partition table.
const BLKRRPART: u64 = ioc(layout::NONE, 0x12, 95, 0);

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Size in bytes of the block device open as `f` (`BLKGETSIZE64`).
pub(crate) fn size_bytes(f: &File) -> io::Result<u64> {
    let mut v: u64 = 0;
    // SAFETY: `f` is an open descriptor for the whole call; BLKGETSIZE64 writes exactly one
    // u64 through the pointer, which points to a live, properly aligned local.
    let ret = unsafe {
        libc::ioctl(
            f.as_raw_fd(),
            BLKGETSIZE64 as libc::Ioctl,
            &mut v as *mut u64,
        )
    };
    check(ret).map(|()| v)
}

/// Logical sector size of the block device open as `f` (`BLKSSZGET`).
pub(crate) fn logical_sector_size(f: &File) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    // SAFETY: `f` is open; BLKSSZGET writes one int through the pointer to a live local.
    let ret = unsafe {
        libc::ioctl(
            f.as_raw_fd(),
            BLKSSZGET as libc::Ioctl,
            &mut v as *mut libc::c_int,
        )
    };
    check(ret)?;
    u32::try_from(v).map_err(|_| io::Error::other(format!("kernel reported sector size {v}")))
}

/// Physical sector size of the block device open as `f` (`BLKPBSZGET`).
pub(crate) fn physical_sector_size(f: &File) -> io::Result<u32> {
    let mut v: libc::c_uint = 0;
    // SAFETY: `f` is open; BLKPBSZGET writes one unsigned int through the pointer to a live
    // local.
    let ret = unsafe {
        libc::ioctl(
            f.as_raw_fd(),
            BLKPBSZGET as libc::Ioctl,
            &mut v as *mut libc::c_uint,
        )
    };
    check(ret).map(|()| v)
}

/// Asks the kernel to re-read the partition table of the block device open as `f`
/// (`BLKRRPART`).
pub(crate) fn reread_partitions(f: &File) -> io::Result<()> {
    // SAFETY: `f` is open; BLKRRPART takes no argument and touches no user memory.
    let ret = unsafe { libc::ioctl(f.as_raw_fd(), BLKRRPART as libc::Ioctl) };
    check(ret)
}

/// `_IO(0x12, 127)`: zero a byte range of the device (the kernel reads two u64: start, len).
const BLKZEROOUT: u64 = ioc(layout::NONE, 0x12, 127, 0);

/// Zeroes `len` bytes at `offset` of the block device open as `f` (`BLKZEROOUT`; both must be
/// multiples of the logical sector size). Devices with WRITE ZEROES or thin provisioning do
/// this without transferring the zeros.
pub(crate) fn zero_out(f: &File, offset: u64, len: u64) -> io::Result<()> {
    let range: [u64; 2] = [offset, len];
    // SAFETY: `f` is open; BLKZEROOUT reads two u64 through the pointer, which points to a
    // live, properly aligned local array of exactly that size.
    let ret = unsafe { libc::ioctl(f.as_raw_fd(), BLKZEROOUT as libc::Ioctl, range.as_ptr()) };
    check(ret)
}

/// Deallocates `len` bytes at `offset` of the regular file `f` without changing its size;
/// later reads of the range return zeros (`fallocate(PUNCH_HOLE | KEEP_SIZE)`).
pub(crate) fn punch_hole(f: &File, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(off), Ok(l)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: `f` is open; fallocate takes plain integers and touches no memory of ours.
    let ret = unsafe {
        libc::fallocate(
            f.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off,
            l,
        )
    };
    check(ret)
}

/// The first offset at or after `offset` of the regular file `f` that holds data
/// (`lseek(SEEK_DATA)`); `None` when only a hole follows.
pub(crate) fn next_data(f: &File, offset: u64) -> io::Result<Option<u64>> {
    let Ok(off) = libc::off_t::try_from(offset) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // SAFETY: `f` is open; lseek takes plain integers and touches no memory of ours.
    let ret = unsafe { libc::lseek(f.as_raw_fd(), off, libc::SEEK_DATA) };
    if ret < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENXIO) {
            Ok(None)
        } else {
            Err(e)
        };
    }
    Ok(Some(ret as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn request_numbers_match_the_kernel_headers() {
        assert_eq!(BLKGETSIZE64, 0x8008_1272);
        assert_eq!(BLKSSZGET, 0x1268);
        assert_eq!(BLKSSZGET as libc::Ioctl, libc::BLKSSZGET);
        assert_eq!(BLKPBSZGET as libc::Ioctl, libc::BLKPBSZGET);
        assert_eq!(BLKRRPART, 0x125f);
    }
}

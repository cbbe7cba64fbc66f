//! Memory aligned for direct I/O, without unsafe code.

use std::ops::{Deref, DerefMut};

/// A zero-filled byte buffer whose first byte sits at a multiple of `align`, as direct I/O
/// (`O_DIRECT`) needs. It over-allocates a `Vec<u8>` and exposes the aligned window.
pub struct AlignedBuf {
    storage: Vec<u8>,
    start: usize,
    len: usize,
    align: usize,
}

impl AlignedBuf {
    /// A buffer of `len` zero bytes aligned to `align` bytes. `align` is rounded up to a power
    /// of two (0 counts as 1).
    pub fn new(len: usize, align: usize) -> Self {
        let align = align.max(1).next_power_of_two();
        let storage = vec![0u8; len + align - 1];
        let addr = storage.as_ptr() as usize;
        let start = (align - addr % align) % align;
        AlignedBuf {
            storage,
            start,
            len,
            align,
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the buffer holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The alignment in bytes.
    pub fn align(&self) -> usize {
        self.align
    }

    /// The aligned bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.storage[self.start..self.start + self.len]
    }

    /// The aligned bytes, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.start + self.len]
    }
}

impl Clone for AlignedBuf {
    /// A new allocation is aligned anew (a derived clone would keep a stale offset).
    fn clone(&self) -> Self {
        let mut b = AlignedBuf::new(self.len, self.align);
        b.as_mut_slice().copy_from_slice(self.as_slice());
        b
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("len", &self.len)
            .field("align", &self.align)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_aligned_and_sized() {
        for align in [0usize, 1, 3, 512, 4096] {
            for len in [0usize, 1, 512, 8192] {
                let mut b = AlignedBuf::new(len, align);
                assert_eq!(b.len(), len);
                assert_eq!(b.as_ptr() as usize % b.align(), 0);
                assert!(b.align().is_power_of_two());
                b.iter_mut().for_each(|x| *x = 7);
                assert!(b.as_slice().iter().all(|x| *x == 7));
                let c = b.clone();
                assert_eq!(c.as_ptr() as usize % c.align(), 0, "clones stay aligned");
            }
        }
    }
}

//! The NTFS scanner of lifeboat.
#![forbid(unsafe_code)]

/// Scanner of ntfs volumes (being written; recognises nothing yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct NtfsScanner;

impl lifeboat_fs::Scanner for NtfsScanner {
    fn name(&self) -> &'static str {
        "ntfs"
    }
    fn probe(&self, _volume: &dyn lifeboat_fs::ReadAt) -> bool {
        false
    }
    fn open<'a>(
        &self,
        _volume: &'a dyn lifeboat_fs::ReadAt,
    ) -> Result<Box<dyn lifeboat_fs::UsedBlocks + 'a>, lifeboat_fs::FsError> {
        Err(lifeboat_fs::FsError::NotRecognised {
            fs: "ntfs",
            reason: "not implemented yet".into(),
        })
    }
}

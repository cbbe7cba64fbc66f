//! The FAT12/16/32 and exFAT scanners of lifeboat.
#![forbid(unsafe_code)]

/// Scanner of fat volumes (being written; recognises nothing yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct FatScanner;

impl lifeboat_fs::Scanner for FatScanner {
    fn name(&self) -> &'static str {
        "fat"
    }
    fn probe(&self, _volume: &dyn lifeboat_fs::ReadAt) -> bool {
        false
    }
    fn open<'a>(
        &self,
        _volume: &'a dyn lifeboat_fs::ReadAt,
    ) -> Result<Box<dyn lifeboat_fs::UsedBlocks + 'a>, lifeboat_fs::FsError> {
        Err(lifeboat_fs::FsError::NotRecognised {
            fs: "fat",
            reason: "not implemented yet".into(),
        })
    }
}

/// Scanner of exfat volumes (being written; recognises nothing yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExfatScanner;

impl lifeboat_fs::Scanner for ExfatScanner {
    fn name(&self) -> &'static str {
        "exfat"
    }
    fn probe(&self, _volume: &dyn lifeboat_fs::ReadAt) -> bool {
        false
    }
    fn open<'a>(
        &self,
        _volume: &'a dyn lifeboat_fs::ReadAt,
    ) -> Result<Box<dyn lifeboat_fs::UsedBlocks + 'a>, lifeboat_fs::FsError> {
        Err(lifeboat_fs::FsError::NotRecognised {
            fs: "exfat",
            reason: "not implemented yet".into(),
        })
    }
}

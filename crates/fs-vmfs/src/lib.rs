//! The VMFS5/VMFS6 scanner of lifeboat.
#![forbid(unsafe_code)]

/// Scanner of vmfs volumes (being written; recognises nothing yet).
#[derive(Debug, Clone, Copy, Default)]
pub struct VmfsScanner;

impl lifeboat_fs::Scanner for VmfsScanner {
    fn name(&self) -> &'static str {
        "vmfs"
    }
    fn probe(&self, _volume: &dyn lifeboat_fs::ReadAt) -> bool {
        false
    }
    fn open<'a>(
        &self,
        _volume: &'a dyn lifeboat_fs::ReadAt,
    ) -> Result<Box<dyn lifeboat_fs::UsedBlocks + 'a>, lifeboat_fs::FsError> {
        Err(lifeboat_fs::FsError::NotRecognised {
            fs: "vmfs",
            reason: "not implemented yet".into(),
        })
    }
}

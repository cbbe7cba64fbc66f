//! The files of an image directory, and the one place that maps them to file names and back.

use std::fmt;

/// A file lifeboat writes into an image directory. Backends store it under [`FileKind::name`];
/// a listed name that [`FileKind::parse`] does not know is a file lifeboat did not write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    /// `.lifeboat-image`, written when the image directory is created, so that listings and
    /// `delete --incomplete` only ever consider directories lifeboat made.
    Marker,
    /// `manifest.json`, written last and atomically: its presence marks a complete image.
    Manifest,
    /// Volume `n` of the container stream: `data.lbi.000`, `data.lbi.001`, …
    Volume(usize),
    /// `.lifeboat-image.tmp`: the marker being written by [`crate::Backend::put_atomic`].
    MarkerTemp,
    /// `.manifest.json.tmp`: the manifest being written by [`crate::Backend::put_atomic`].
    ManifestTemp,
    /// `.lifeboat-lease`: the lease of the save writing the image ([`crate::Lease`]), created
    /// exclusively with the image and removed after its manifest is committed.
    Lease,
    /// `.lifeboat-lease.tmp`: the lease being rewritten by [`crate::Backend::put_atomic`].
    LeaseTemp,
}

/// Name of the manifest file ([`FileKind::Manifest`]).
pub const MANIFEST_FILE: &str = "manifest.json";

/// Name of the marker file ([`FileKind::Marker`]).
pub const MARKER_FILE: &str = ".lifeboat-image";

/// Name of the lease file ([`FileKind::Lease`]).
pub const LEASE_FILE: &str = ".lifeboat-lease";

const VOLUME_PREFIX: &str = "data.lbi.";

impl FileKind {
    /// The file name on every backend.
    pub fn name(self) -> String {
        match self {
            FileKind::Marker => MARKER_FILE.to_string(),
            FileKind::Manifest => MANIFEST_FILE.to_string(),
            FileKind::Volume(n) => format!("{VOLUME_PREFIX}{n:03}"),
            FileKind::MarkerTemp => FileKind::Marker.temp_name(),
            FileKind::ManifestTemp => FileKind::Manifest.temp_name(),
            FileKind::Lease => LEASE_FILE.to_string(),
            FileKind::LeaseTemp => FileKind::Lease.temp_name(),
        }
    }

    /// The name of the temporary file a backend without an atomic whole-file write fills
    /// before renaming it to [`FileKind::name`] (`.manifest.json.tmp`).
    pub fn temp_name(self) -> String {
        format!(".{}.tmp", self.name())
    }

    /// The kind of a listed file name; `None` for a file lifeboat did not write. Only the
    /// exact names of [`FileKind::name`] are known (`data.lbi.0001` is not volume 1).
    pub fn parse(name: &str) -> Option<FileKind> {
        let kind = match name {
            MARKER_FILE => FileKind::Marker,
            MANIFEST_FILE => FileKind::Manifest,
            LEASE_FILE => FileKind::Lease,
            _ if name == FileKind::Lease.temp_name() => FileKind::LeaseTemp,
            _ if name == FileKind::Marker.temp_name() => FileKind::MarkerTemp,
            _ if name == FileKind::Manifest.temp_name() => FileKind::ManifestTemp,
            _ => {
                let n = name.strip_prefix(VOLUME_PREFIX)?;
                if !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                FileKind::Volume(n.parse().ok()?)
            }
        };
        (kind.name() == name).then_some(kind)
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_kinds_map_both_ways() {
        for k in [
            FileKind::Marker,
            FileKind::Manifest,
            FileKind::Volume(0),
            FileKind::Volume(7),
            FileKind::Volume(1234),
            FileKind::MarkerTemp,
            FileKind::ManifestTemp,
            FileKind::Lease,
            FileKind::LeaseTemp,
        ] {
            assert_eq!(FileKind::parse(&k.name()), Some(k), "{k}");
        }
        assert_eq!(FileKind::Volume(7).name(), "data.lbi.007");
        assert_eq!(FileKind::Manifest.temp_name(), ".manifest.json.tmp");
        for foreign in [
            "notes.txt",
            "data.lbi.",
            "data.lbi.01",
            "data.lbi.0001",
            "data.lbi.+01",
            "data.lbi.99999999999999999999999",
            ".data.lbi.000.tmp",
            "manifest.json.tmp",
            "",
        ] {
            assert_eq!(FileKind::parse(foreign), None, "{foreign:?}");
        }
    }
}

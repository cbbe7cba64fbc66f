//! The used-cluster walk: locate `$Bitmap` through `$MFT`, then stream the bitmap in large
//! sequential reads with bounded memory.
//!
//! Opening makes two passes over the bitmap: the first counts the used clusters (so
//! [`FsInfo::used_bytes`] is exact before streaming), the second yields the extents. Used bytes
//! are the used clusters times the cluster size, plus the backup boot sector: the sector after
//! the last one the boot sector counts (where mkntfs and Windows put it), and also the last
//! sector of the volume when that lies further on (where ntfsresize puts it after a resize).

use lifeboat_fs::bitmap::{count_set, next_run, test};
use lifeboat_fs::bytes::{u16_at, u16s};
use lifeboat_fs::{
    read_exact, Extent, ExtentSource, FsError, FsInfo, MergedExtents, ReadAt, Scanner,
    SharedVolume, UsedBlocks,
};

use crate::boot_sector::{BootSector, BOOT_SECTOR_SIZE};
use crate::index::{parse_index_record, parse_root, NameEntry};
use crate::mft_record::{
    apply_fixups, attr_type, parse_attribute_list, AttrForm, Attribute, MftRecord,
};
use crate::runlist::{decode, Run};
use crate::NtfsError;

/// Largest single bitmap read.
pub const BITMAP_CHUNK_BYTES: u64 = 4 << 20;
/// Most runs kept for one stream (`$MFT`, `$Bitmap`, an attribute list, an index).
pub const MAX_RUNS: usize = 1 << 16;
/// Largest `$ATTRIBUTE_LIST` value read.
const MAX_ATTRIBUTE_LIST_BYTES: u64 = 1 << 20;
/// Most attribute list entries followed for one attribute.
const MAX_LIST_ENTRIES: usize = 1 << 14;
/// Largest root-directory index allocation searched for a hibernation file.
const MAX_ROOT_INDEX_BYTES: u64 = 16 << 20;

/// Bytes between the end of the filesystem and the last sector of the volume from which on
/// the unsaved gap is worth a warning (smaller gaps come from cluster rounding and alignment).
const SLACK_WARNING_BYTES: u64 = 1 << 20;

/// MFT record numbers of the system files used.
pub mod record {
    /// `$MFT`.
    pub const MFT: u64 = 0;
    /// `$LogFile`.
    pub const LOG_FILE: u64 = 2;
    /// `$Volume`.
    pub const VOLUME: u64 = 3;
    /// The root directory.
    pub const ROOT: u64 = 5;
    /// `$Bitmap`.
    pub const BITMAP: u64 = 6;
}

/// `$VOLUME_INFORMATION` flag: the volume is dirty (chkdsk will run at the next mount).
pub const VOLUME_IS_DIRTY: u16 = 0x0001;

fn corrupt(reason: impl Into<String>) -> FsError {
    NtfsError::Inconsistent(reason.into()).into()
}

/// Reads and decodes the boot sector of `volume`.
pub fn read_boot_sector(volume: &dyn ReadAt) -> Result<BootSector, FsError> {
    if volume.len() < BOOT_SECTOR_SIZE as u64 {
        return Err(NtfsError::TooShort {
            what: "volume",
            need: BOOT_SECTOR_SIZE,
            got: volume.len() as usize,
        }
        .into());
    }
    let mut b = [0u8; BOOT_SECTOR_SIZE];
    read_exact(volume, &mut b, 0)?;
    Ok(BootSector::parse(&b)?)
}

/// The content of an attribute, gathered across extension records when needed.
#[derive(Debug, Clone)]
pub enum Stream {
    /// A resident value.
    Resident(Vec<u8>),
    /// A non-resident value.
    NonResident {
        /// The runs, in VCN order, contiguous from VCN 0.
        runs: Vec<Run>,
        /// Logical size in bytes.
        data_size: u64,
        /// Bytes initialised on disk (the rest reads as zeros).
        initialized_size: u64,
        /// Attribute flags of the first extent.
        flags: u16,
    },
}

/// An opened NTFS volume: boot sector plus the `$MFT` runs, able to read records and streams.
pub struct Ntfs<V> {
    volume: V,
    boot: BootSector,
    mft_runs: Vec<Run>,
}

impl<V: ReadAt> Ntfs<V> {
    /// Reads the boot sector and `$MFT` record 0.
    pub fn open(volume: V) -> Result<Self, FsError> {
        let boot = read_boot_sector(&volume)?;
        if boot.total_bytes() > volume.len() {
            return Err(corrupt(format!(
                "the filesystem ({} bytes including the backup boot sector) does not fit in \
                 the volume of {} bytes",
                boot.total_bytes(),
                volume.len()
            )));
        }
        let rs = boot.record_size;
        let mut rec0 = vec![0u8; rs as usize];
        read_exact(&volume, &mut rec0, boot.mft_lcn * boot.cluster_size)?;
        apply_fixups(&mut rec0, b"FILE", "MFT record 0")?;
        let r = MftRecord::parse(&rec0, "MFT record 0")?;
        if !r.in_use() || r.base_record != 0 {
            return Err(corrupt("MFT record 0 ($MFT) is not an in-use base record"));
        }
        let data = r
            .find(attr_type::DATA, &[])?
            .ok_or_else(|| corrupt("$MFT has no $DATA attribute"))?;
        let mut ntfs = Ntfs {
            volume,
            boot,
            mft_runs: Vec::new(),
        };
        let AttrForm::NonResident {
            lowest_vcn: 0,
            mapping_pairs,
            ..
        } = data.form
        else {
            return Err(corrupt("$MFT's $DATA is not non-resident from VCN 0"));
        };
        ntfs.mft_runs = ntfs.decode_runs(mapping_pairs, 0, "$MFT")?;
        if ntfs.mft_runs.iter().any(|r| r.lcn.is_none()) {
            return Err(corrupt("$MFT has a sparse run"));
        }
        if ntfs.mft_runs.first().and_then(|r| r.lcn) != Some(ntfs.boot.mft_lcn) {
            return Err(corrupt(
                "$MFT's first run does not start at the cluster named by the boot sector",
            ));
        }
        Ok(ntfs)
    }

    /// The boot sector.
    pub fn boot(&self) -> &BootSector {
        &self.boot
    }

    /// Decodes mapping pairs, checking every run lies inside the volume.
    fn decode_runs(&self, mp: &[u8], lowest_vcn: u64, what: &str) -> Result<Vec<Run>, FsError> {
        let clusters = self.boot.clusters();
        let mut out = Vec::new();
        for r in decode(mp, lowest_vcn) {
            let r = r.map_err(|e| corrupt(format!("{what}: {e}")))?;
            if let Some(l) = r.lcn {
                if l.checked_add(r.len).is_none_or(|e| e > clusters) {
                    return Err(corrupt(format!(
                        "{what}: run of {} clusters at cluster {l} passes the end of the \
                         volume ({clusters} clusters)",
                        r.len
                    )));
                }
            }
            if out.len() >= MAX_RUNS {
                return Err(
                    NtfsError::TooComplex(format!("{what} has more than {MAX_RUNS} runs")).into(),
                );
            }
            out.push(r);
        }
        Ok(out)
    }

    /// Reads `buf.len()` bytes at `offset` of a non-resident stream (sparse runs and bytes
    /// past `initialized` read as zeros; bytes past the runs are an error).
    pub fn read_runs(
        &self,
        runs: &[Run],
        initialized: u64,
        offset: u64,
        buf: &mut [u8],
        what: &str,
    ) -> Result<(), FsError> {
        let cs = self.boot.cluster_size;
        if offset.checked_add(buf.len() as u64).is_none() {
            return Err(corrupt(format!("{what}: read at byte {offset} overflows")));
        }
        let mut done = 0usize;
        let mut i = runs.partition_point(|r| (r.vcn + r.len).saturating_mul(cs) <= offset);
        while done < buf.len() {
            let pos = offset + done as u64;
            let Some(r) = runs.get(i).filter(|r| r.vcn.saturating_mul(cs) <= pos) else {
                return Err(corrupt(format!(
                    "{what}: byte {pos} of the stream lies outside its runs"
                )));
            };
            let run_end = (r.vcn + r.len).saturating_mul(cs);
            let n = ((run_end - pos) as usize).min(buf.len() - done);
            let piece = &mut buf[done..done + n];
            match r.lcn {
                Some(l) => read_exact(&self.volume, piece, l * cs + (pos - r.vcn * cs))?,
                None => piece.fill(0),
            }
            if pos + n as u64 > initialized {
                let from = initialized.saturating_sub(pos) as usize;
                piece[from..].fill(0);
            }
            done += n;
            i += 1;
        }
        Ok(())
    }

    /// Reads and fixes up MFT record `n` into `buf`.
    pub fn read_record(&self, n: u64, buf: &mut Vec<u8>) -> Result<(), FsError> {
        let rs = self.boot.record_size;
        buf.clear();
        buf.resize(rs as usize, 0);
        let what = format!("MFT record {n}");
        let off = n
            .checked_mul(rs)
            .ok_or_else(|| corrupt(format!("{what}: number out of range")))?;
        self.read_runs(
            &self.mft_runs,
            u64::MAX,
            off,
            buf,
            "$MFT (base record runs)",
        )?;
        apply_fixups(buf, b"FILE", &what)?;
        Ok(())
    }

    /// The attribute `type_code` named `name` of base record `n`, gathered across the
    /// extension records of its `$ATTRIBUTE_LIST`; `None` when absent.
    pub fn stream(&self, n: u64, type_code: u32, name: &[u8]) -> Result<Option<Stream>, FsError> {
        let mut base = Vec::new();
        self.read_record(n, &mut base)?;
        let what = format!("MFT record {n}");
        let r = MftRecord::parse(&base, &what)?;
        if !r.in_use() || r.base_record != 0 {
            return Err(corrupt(format!("{what} is not an in-use base record")));
        }
        let list = r.find(attr_type::ATTRIBUTE_LIST, &[])?;
        let Some(list) = list else {
            return match r.find(type_code, name)? {
                None => Ok(None),
                Some(a) => {
                    let s = self.start_stream(&a, &what)?;
                    if let Stream::NonResident {
                        runs, data_size, ..
                    } = &s
                    {
                        self.check_covers(runs, *data_size, &what)?;
                    }
                    Ok(Some(s))
                }
            };
        };
        // Gather the list's value.
        let value = match list.form {
            AttrForm::Resident { value } => value.to_vec(),
            AttrForm::NonResident {
                lowest_vcn: 0,
                data_size,
                initialized_size,
                mapping_pairs,
                ..
            } => {
                if data_size > MAX_ATTRIBUTE_LIST_BYTES {
                    return Err(NtfsError::TooComplex(format!(
                        "{what}: attribute list of {data_size} bytes"
                    ))
                    .into());
                }
                let runs = self.decode_runs(mapping_pairs, 0, "attribute list")?;
                let mut v = vec![0u8; data_size as usize];
                self.read_runs(&runs, initialized_size, 0, &mut v, "attribute list")?;
                v
            }
            AttrForm::NonResident { .. } => {
                return Err(corrupt(format!("{what}: attribute list not from VCN 0")))
            }
        };
        let mut entries: Vec<_> = parse_attribute_list(&value, Some(type_code), MAX_LIST_ENTRIES)?
            .into_iter()
            .filter(|e| e.name == name)
            .collect();
        if entries.is_empty() {
            return Ok(None);
        }
        entries.sort_by_key(|e| e.lowest_vcn);
        let mut stream: Option<Stream> = None;
        let mut ext = Vec::new();
        for e in &entries {
            let (bytes, ewhat) = if e.record == n {
                (&base, what.clone())
            } else {
                self.read_record(e.record, &mut ext)?;
                (&ext, format!("MFT record {} (extension of {n})", e.record))
            };
            let rec = MftRecord::parse(bytes, &ewhat)?;
            if e.record != n && (!rec.in_use() || rec.base_record & 0x0000_FFFF_FFFF_FFFF != n) {
                return Err(corrupt(format!("{ewhat} does not belong to record {n}")));
            }
            let mut found: Option<Attribute> = None;
            for a in rec.attributes() {
                let a = a?;
                if a.type_code == type_code && a.name == name {
                    let lv = match a.form {
                        AttrForm::NonResident { lowest_vcn, .. } => lowest_vcn,
                        AttrForm::Resident { .. } => 0,
                    };
                    if lv == e.lowest_vcn {
                        found = Some(a);
                        break;
                    }
                }
            }
            let a = found.ok_or_else(|| {
                corrupt(format!(
                    "{ewhat}: the attribute extent named by the attribute list is missing"
                ))
            })?;
            match (&mut stream, a.form) {
                (None, _) => {
                    stream = Some(self.start_stream(&a, &ewhat)?);
                }
                (
                    Some(Stream::NonResident { runs, .. }),
                    AttrForm::NonResident {
                        lowest_vcn,
                        mapping_pairs,
                        ..
                    },
                ) => {
                    let next = runs.last().map_or(0, |r| r.vcn + r.len);
                    if lowest_vcn != next {
                        return Err(corrupt(format!(
                            "{ewhat}: attribute extent starts at VCN {lowest_vcn}, expected {next}"
                        )));
                    }
                    let more = self.decode_runs(mapping_pairs, lowest_vcn, &ewhat)?;
                    if runs.len() + more.len() > MAX_RUNS {
                        return Err(NtfsError::TooComplex(format!(
                            "{what}: more than {MAX_RUNS} runs"
                        ))
                        .into());
                    }
                    runs.extend(more);
                }
                _ => {
                    return Err(corrupt(format!(
                        "{ewhat}: resident attribute split across records"
                    )))
                }
            }
        }
        if let Some(Stream::NonResident {
            runs, data_size, ..
        }) = &stream
        {
            self.check_covers(runs, *data_size, &what)?;
        }
        Ok(stream)
    }

    /// A stream from its first (VCN 0) attribute extent.
    fn start_stream(&self, a: &Attribute, what: &str) -> Result<Stream, FsError> {
        match a.form {
            AttrForm::Resident { value } => Ok(Stream::Resident(value.to_vec())),
            AttrForm::NonResident {
                lowest_vcn,
                data_size,
                initialized_size,
                mapping_pairs,
                ..
            } => {
                if lowest_vcn != 0 {
                    return Err(corrupt(format!(
                        "{what}: first attribute extent starts at VCN {lowest_vcn}"
                    )));
                }
                if initialized_size > data_size {
                    return Err(corrupt(format!(
                        "{what}: initialised size {initialized_size} exceeds data size {data_size}"
                    )));
                }
                Ok(Stream::NonResident {
                    runs: self.decode_runs(mapping_pairs, 0, what)?,
                    data_size,
                    initialized_size,
                    flags: a.flags,
                })
            }
        }
    }

    /// The runs must cover the data size.
    fn check_covers(&self, runs: &[Run], data_size: u64, what: &str) -> Result<(), FsError> {
        let covered = runs.last().map_or(0, |r| r.vcn + r.len);
        let need = data_size.div_ceil(self.boot.cluster_size);
        if covered < need {
            return Err(corrupt(format!(
                "{what}: runs cover {covered} clusters, the data needs {need}"
            )));
        }
        Ok(())
    }

    /// Reads the first `len` bytes of a stream (bounded by the caller).
    fn read_stream_head(&self, s: &Stream, len: u64, what: &str) -> Result<Vec<u8>, FsError> {
        match s {
            Stream::Resident(v) => Ok(v[..(len as usize).min(v.len())].to_vec()),
            Stream::NonResident {
                runs,
                data_size,
                initialized_size,
                ..
            } => {
                let n = len.min(*data_size) as usize;
                let mut v = vec![0u8; n];
                self.read_runs(runs, *initialized_size, 0, &mut v, what)?;
                Ok(v)
            }
        }
    }
}

/// What `$Volume` says.
#[derive(Debug, Clone, Default)]
pub struct VolumeInfo {
    /// `$VOLUME_NAME`, if any.
    pub label: Option<String>,
    /// NTFS version (major, minor).
    pub version: (u8, u8),
    /// `$VOLUME_INFORMATION` flags.
    pub flags: u16,
}

/// Reads `$Volume` (record 3).
pub fn read_volume_info(ntfs: &Ntfs<impl ReadAt>) -> Result<VolumeInfo, FsError> {
    let mut buf = Vec::new();
    ntfs.read_record(record::VOLUME, &mut buf)?;
    let r = MftRecord::parse(&buf, "MFT record 3 ($Volume)")?;
    if !r.in_use() {
        return Err(corrupt("MFT record 3 ($Volume) is not in use"));
    }
    let mut out = VolumeInfo::default();
    let mut have_info = false;
    for a in r.attributes() {
        let a = a?;
        match (a.type_code, a.form) {
            (attr_type::VOLUME_NAME, AttrForm::Resident { value }) => {
                let units: Vec<u16> = u16s(value).collect();
                let s = String::from_utf16_lossy(&units);
                if !s.is_empty() {
                    out.label = Some(s);
                }
            }
            (attr_type::VOLUME_INFORMATION, AttrForm::Resident { value }) if value.len() >= 12 => {
                out.version = (value[8], value[9]);
                out.flags = u16_at(value, 10).map_err(NtfsError::from)?;
                have_info = true;
            }
            _ => {}
        }
    }
    if !have_info {
        return Err(corrupt("$Volume has no readable $VOLUME_INFORMATION"));
    }
    if !(1..=3).contains(&out.version.0) {
        return Err(NtfsError::Unsupported(format!(
            "NTFS version {}.{}",
            out.version.0, out.version.1
        ))
        .into());
    }
    Ok(out)
}

/// Looks for `hiberfil.sys` in the root directory and reads the first 4 bytes of its data:
/// true when they say the system is hibernated (`hibr`, any case), false when the file is
/// absent or not a hibernation image. Only index records marked in use by the index's
/// `$BITMAP` are read. Errors say the check could not be made.
pub fn hibernated(ntfs: &Ntfs<impl ReadAt>) -> Result<bool, FsError> {
    let want = "hiberfil.sys";
    let root_what = "root directory";
    let mut names: Vec<NameEntry> = Vec::new();
    if let Some(Stream::Resident(v)) = ntfs.stream(record::ROOT, attr_type::INDEX_ROOT, &I30)? {
        names.extend(
            parse_root(&v)?
                .into_iter()
                .filter(|e| e.name.eq_ignore_ascii_case(want)),
        );
    } else {
        return Err(corrupt("root directory has no resident $INDEX_ROOT $I30"));
    }
    if names.is_empty() {
        if let Some(Stream::NonResident {
            runs,
            data_size,
            initialized_size,
            ..
        }) = ntfs.stream(record::ROOT, attr_type::INDEX_ALLOCATION, &I30)?
        {
            if data_size > MAX_ROOT_INDEX_BYTES {
                return Err(NtfsError::TooComplex(format!(
                    "root directory index of {data_size} bytes"
                ))
                .into());
            }
            let irs = ntfs.boot().index_record_size;
            // Which index records are in use: the $I30 $BITMAP attribute.
            let in_use = match ntfs.stream(record::ROOT, attr_type::BITMAP, &I30)? {
                Some(s) => ntfs.read_stream_head(&s, (data_size / irs).div_ceil(8), root_what)?,
                None => return Err(corrupt("root directory index has no $BITMAP")),
            };
            let mut rec = vec![0u8; irs as usize];
            let mut k = 0u64;
            while (k + 1) * irs <= data_size && names.is_empty() {
                let off = k * irs;
                k += 1;
                if !test(&in_use, k - 1) {
                    continue;
                }
                ntfs.read_runs(&runs, initialized_size, off, &mut rec, root_what)?;
                apply_fixups(&mut rec, b"INDX", "root directory index record")?;
                names.extend(
                    parse_index_record(&rec)?
                        .into_iter()
                        .filter(|e| e.name.eq_ignore_ascii_case(want)),
                );
            }
        }
    }
    let Some(e) = names.first() else {
        return Ok(false);
    };
    let Some(data) = ntfs.stream(e.record, attr_type::DATA, &[])? else {
        return Ok(false);
    };
    let head = ntfs.read_stream_head(&data, 4, want)?;
    Ok(head.len() == 4 && head.eq_ignore_ascii_case(b"hibr"))
}

/// `$I30` in UTF-16LE.
const I30: [u8; 8] = [b'$', 0, b'I', 0, b'3', 0, b'0', 0];

/// The NTFS scanner.
#[derive(Debug, Clone, Copy, Default)]
pub struct NtfsScanner;

impl NtfsScanner {
    /// Like [`Scanner::open`], returning the concrete stream type.
    pub fn open_ntfs<V: ReadAt>(&self, volume: V) -> Result<NtfsUsedBlocks<V>, FsError> {
        NtfsUsedBlocks::open(volume)
    }
}

impl Scanner for NtfsScanner {
    fn name(&self) -> &'static str {
        "ntfs"
    }

    fn probe(&self, volume: &dyn ReadAt) -> bool {
        read_boot_sector(volume).is_ok_and(|b| b.total_bytes() <= volume.len())
    }

    fn open(&self, volume: SharedVolume) -> Result<Box<dyn UsedBlocks>, FsError> {
        Ok(Box::new(NtfsUsedBlocks::open(volume)?))
    }
}

/// Reads the bitmap in chunks of at most [`BITMAP_CHUNK_BYTES`].
struct BitmapReader<V> {
    ntfs: Ntfs<V>,
    runs: Vec<Run>,
    initialized: u64,
    /// Meaningful bits (the cluster count).
    nbits: u64,
    buf: Vec<u8>,
    /// First bit of `buf`.
    buf_bit: u64,
    /// Bits loaded in `buf`.
    buf_bits: u64,
}

impl<V: ReadAt> BitmapReader<V> {
    /// Drops the loaded chunk, so that a stream kept between two passes holds no part of
    /// the bitmap.
    fn release(&mut self) {
        self.buf = Vec::new();
        self.buf_bit = 0;
        self.buf_bits = 0;
    }

    /// Makes bit `bit` available; returns the chunk and the bit offset of its start.
    fn load(&mut self, bit: u64) -> Result<(), FsError> {
        if bit >= self.buf_bit && bit < self.buf_bit + self.buf_bits {
            return Ok(());
        }
        let byte = bit / 8;
        let total_bytes = self.nbits.div_ceil(8);
        let n = (total_bytes - byte).min(BITMAP_CHUNK_BYTES);
        self.buf.resize(n as usize, 0);
        self.buf_bits = 0;
        self.ntfs
            .read_runs(&self.runs, self.initialized, byte, &mut self.buf, "$Bitmap")?;
        self.buf_bit = byte * 8;
        self.buf_bits = (n * 8).min(self.nbits - self.buf_bit);
        Ok(())
    }
}

/// The raw used extents of an NTFS volume: the runs of `$Bitmap`, then the backup boot
/// sector locations.
struct NtfsSource<V> {
    boot: BootSector,
    reader: BitmapReader<V>,
    next_bit: u64,
    /// Backup boot sector locations, in increasing order.
    backups: Vec<Extent>,
    /// The first of `backups` still to yield.
    next_backup: usize,
}

impl<V: ReadAt> ExtentSource for NtfsSource<V> {
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
        let cs = self.boot.cluster_size;
        while self.next_bit < self.reader.nbits {
            self.reader.load(self.next_bit)?;
            let r = &self.reader;
            let from = self.next_bit - r.buf_bit;
            match next_run(&r.buf, r.buf_bits, from) {
                Some((s, e)) => {
                    let (s, e) = (r.buf_bit + s, r.buf_bit + e);
                    self.next_bit = e;
                    return Ok(Some(Extent::new(s * cs, (e - s) * cs)));
                }
                None => self.next_bit = r.buf_bit + r.buf_bits,
            }
        }
        let backup = self.backups.get(self.next_backup).copied();
        self.next_backup += usize::from(backup.is_some());
        Ok(backup)
    }

    fn rewind(&mut self) {
        self.reader.release();
        self.next_bit = 0;
        self.next_backup = 0;
    }
}

/// The stream of used extents of an NTFS volume.
pub struct NtfsUsedBlocks<V> {
    info: FsInfo,
    extents: MergedExtents<NtfsSource<V>>,
}

impl<V: ReadAt> NtfsUsedBlocks<V> {
    fn open(volume: V) -> Result<Self, FsError> {
        let volume_len = volume.len();
        let ntfs = Ntfs::open(volume)?;
        let boot = ntfs.boot().clone();
        let vol = read_volume_info(&ntfs)?;
        let clusters = boot.clusters();
        let need_bytes = clusters.div_ceil(8);
        let (runs, initialized) = match ntfs.stream(record::BITMAP, attr_type::DATA, &[])? {
            None => return Err(corrupt("$Bitmap has no $DATA attribute")),
            Some(Stream::Resident(_)) => {
                return Err(NtfsError::Unsupported("resident $Bitmap".into()).into())
            }
            Some(Stream::NonResident {
                runs,
                initialized_size,
                flags,
                ..
            }) => {
                if flags != 0 {
                    return Err(NtfsError::Unsupported(format!(
                        "$Bitmap data has attribute flags {flags:#06x} (compressed, \
                         encrypted or sparse)"
                    ))
                    .into());
                }
                if runs.iter().any(|r| r.lcn.is_none()) {
                    return Err(corrupt("$Bitmap has a sparse run"));
                }
                if initialized_size < need_bytes {
                    return Err(corrupt(format!(
                        "$Bitmap holds {initialized_size} initialised bytes, {clusters} \
                         clusters need {need_bytes}"
                    )));
                }
                (runs, initialized_size)
            }
        };
        let mut warnings = Vec::new();
        if vol.flags & VOLUME_IS_DIRTY != 0 {
            warnings.push(
                "the volume is marked dirty (not shut down cleanly, or chkdsk is scheduled); \
                 imaged as it is, run chkdsk after restoring"
                    .to_string(),
            );
        }
        match hibernated(&ntfs) {
            Ok(true) => warnings.push(
                "Windows is hibernated on this volume (hiberfil.sys holds a hibernation \
                 image, e.g. from fast startup); imaged as it is on disk: data only in the \
                 hibernated memory is not part of it"
                    .to_string(),
            ),
            Ok(false) => {}
            Err(e) => warnings.push(format!("could not check for hibernation: {e}")),
        }
        let bps = u64::from(boot.bytes_per_sector);
        let mut tail = vec![Extent::new(boot.backup_offset(), bps)];
        let last = (volume_len / bps - 1) * bps;
        if last > boot.backup_offset() {
            tail.push(Extent::new(last, bps));
        }
        let unsaved = last.saturating_sub(boot.total_bytes());
        if unsaved >= SLACK_WARNING_BYTES {
            warnings.push(format!(
                "the filesystem ends at byte {}, {unsaved} bytes before the last sector of \
                 the volume; those bytes are not saved",
                boot.total_bytes(),
            ));
        }
        let mut reader = BitmapReader {
            ntfs,
            runs,
            initialized,
            nbits: clusters,
            buf: Vec::new(),
            buf_bit: 0,
            buf_bits: 0,
        };
        // Pass 1: count the used clusters.
        let mut used = 0u64;
        let mut bit = 0;
        while bit < clusters {
            reader.load(bit)?;
            let r = &reader;
            if bit == 0 && !test(&r.buf, 0) {
                return Err(corrupt(
                    "$Bitmap does not mark cluster 0 (the boot sector) in use",
                ));
            }
            let mft_bit = boot.mft_lcn;
            if (r.buf_bit..r.buf_bit + r.buf_bits).contains(&mft_bit)
                && !test(&r.buf, mft_bit - r.buf_bit)
            {
                return Err(corrupt(
                    "$Bitmap does not mark the first cluster of $MFT in use",
                ));
            }
            used += count_set(&r.buf, r.buf_bits);
            bit = r.buf_bit + r.buf_bits;
        }
        reader.release();
        let info = FsInfo {
            fs_type: "ntfs".to_string(),
            label: vol.label,
            uuid: Some(boot.serial_string()),
            block_size: boot.cluster_size as u32,
            total_bytes: boot.total_bytes(),
            used_bytes: used * boot.cluster_size + tail.iter().map(|e| e.len).sum::<u64>(),
            files: None,
            warnings,
            ..FsInfo::default()
        };
        let extents = MergedExtents::new(NtfsSource {
            boot,
            reader,
            next_bit: 0,
            backups: tail,
            next_backup: 0,
        });
        Ok(NtfsUsedBlocks { info, extents })
    }

    /// The boot sector.
    pub fn boot_sector(&self) -> &BootSector {
        &self.extents.source().boot
    }

    /// The sectors kept as possible backup boot sector locations: the sector after the last
    /// counted one, and the last sector of the volume when that lies further on.
    pub fn backup_sectors(&self) -> &[Extent] {
        &self.extents.source().backups
    }

    /// Bytes of buffers this stream holds (bounded whatever the volume size).
    pub fn memory_bytes(&self) -> usize {
        let r = &self.extents.source().reader;
        r.buf.capacity()
            + r.runs.capacity() * std::mem::size_of::<Run>()
            + r.ntfs.mft_runs.capacity() * std::mem::size_of::<Run>()
    }
}

impl<V: ReadAt> UsedBlocks for NtfsUsedBlocks<V> {
    fn info(&self) -> &FsInfo {
        &self.info
    }

    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        self.extents.next_extent()
    }
}

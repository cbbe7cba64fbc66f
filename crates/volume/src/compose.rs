//! A member's used extents: its metadata, plus the used extents of every logical volume on it,
//! found by the filesystem scanners through the volume's mapped view and mapped back.

use crate::{Area, Content, MemberLayout, Scan};
use lifeboat_fs::{Extent, ExtentMerger, FsError, FsInfo, InnerVolume, SharedVolume, UsedBlocks};

/// Why a member's layout cannot be followed (its parts overlap or leave the member).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// Two parts of the member's layout overlap.
    #[error(
        "{first} (bytes {first_start}..{first_end} of the member) overlaps {second} (from \
         byte {second_start})"
    )]
    Overlap {
        /// What the first part is.
        first: String,
        /// Its first byte.
        first_start: u64,
        /// One past its last byte.
        first_end: u64,
        /// What the second part is.
        second: String,
        /// Its first byte.
        second_start: u64,
    },
    /// A part lies (partly) beyond the end of the member.
    #[error("{what} ends at byte {end}, beyond the member's {len} bytes")]
    BeyondEnd {
        /// What the part is.
        what: String,
        /// One past its last byte.
        end: u64,
        /// The member's size.
        len: u64,
    },
    /// An area whose stripe geometry cannot be followed.
    #[error("{what}: stripe geometry cannot be followed ({area:?})")]
    BadArea {
        /// Which logical volume.
        what: String,
        /// The area.
        area: Area,
    },
}

/// One part of the member, in member order.
#[derive(Debug, Clone)]
enum Item {
    /// Metadata: stored whole.
    Kept(Extent),
    /// An area of a logical volume.
    Area(Area),
}

impl Item {
    fn start(&self) -> u64 {
        match self {
            Item::Kept(e) => e.offset,
            Item::Area(a) => a.member_offset,
        }
    }
    fn end(&self) -> u64 {
        match self {
            Item::Kept(e) => e.end(),
            Item::Area(a) => a.member_end(),
        }
    }
}

/// A logical volume's used-extent stream, read forward across the areas that hold it.
struct Cursor {
    stream: Box<dyn UsedBlocks>,
    pending: Option<Extent>,
    /// Logical bytes before this have been handed out (or skipped).
    consumed_to: u64,
}

impl Cursor {
    /// The next used logical extent within `[lo, hi)`, clipped; extents before `lo` are
    /// skipped, the part beyond `hi` is kept for the next area.
    fn next_within(&mut self, lo: u64, hi: u64) -> Result<Option<Extent>, FsError> {
        loop {
            let e = match self.pending.take() {
                Some(e) => e,
                None => match self.stream.next_extent()? {
                    Some(e) => e,
                    None => return Ok(None),
                },
            };
            if e.end() <= lo {
                continue;
            }
            if e.offset >= hi {
                self.pending = Some(e);
                return Ok(None);
            }
            let start = e.offset.max(lo);
            let end = e.end().min(hi);
            if e.end() > hi {
                self.pending = Some(Extent::new(hi, e.end() - hi));
            }
            self.consumed_to = end;
            return Ok(Some(Extent::new(start, end - start)));
        }
    }
}

struct Volume {
    content: Content,
    cursor: Option<Cursor>,
}

/// The used extents of one member, in member order.
pub struct MemberUsedBlocks {
    info: FsInfo,
    items: Vec<Item>,
    volumes: Vec<Volume>,
    scan: Scan,
    next_item: usize,
    /// The area being read (index into `items`).
    in_area: Option<usize>,
    merger: ExtentMerger,
    ended: bool,
}

impl std::fmt::Debug for MemberUsedBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemberUsedBlocks")
            .field("info", &self.info)
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

fn describe(item: &Item, layout: &MemberLayout) -> String {
    match item {
        Item::Kept(_) => format!("{} metadata", layout.kind),
        Item::Area(a) => layout
            .volumes
            .get(a.lv)
            .map_or_else(|| format!("volume #{}", a.lv), |v| v.name.clone()),
    }
}

/// Opens the used-extent stream of a member from its layout: the metadata extents whole, the
/// areas of logical volumes copied raw (those whose content is [`Content::Raw`]) whole, and of
/// every other logical volume the used extents that `scan` finds in its content, mapped back
/// onto this member. Memory does not grow with the volumes: one pending extent per logical
/// volume.
///
/// Fails (so that the caller copies the member whole) when the layout's parts overlap or leave
/// the member, or an area's geometry cannot be followed.
pub fn member_used(
    member: &SharedVolume,
    layout: MemberLayout,
    scan: Scan,
) -> Result<MemberUsedBlocks, FsError> {
    let len = member.len();
    let kind = layout.kind;
    let corrupt = |e: LayoutError| FsError::corrupt(kind, e);
    let mut items: Vec<Item> = layout
        .kept
        .iter()
        .filter(|e| e.len > 0)
        .map(|e| Item::Kept(*e))
        .chain(
            layout
                .areas
                .iter()
                .filter(|a| a.lv_len > 0)
                .map(|a| Item::Area(*a)),
        )
        .collect();
    items.sort_by_key(|i| (i.start(), i.end()));
    for item in &items {
        if let Item::Area(a) = item {
            if !a.is_valid() || a.lv >= layout.volumes.len() {
                return Err(corrupt(LayoutError::BadArea {
                    what: describe(item, &layout),
                    area: *a,
                }));
            }
        }
        if item.end() > len {
            return Err(corrupt(LayoutError::BeyondEnd {
                what: describe(item, &layout),
                end: item.end(),
                len,
            }));
        }
    }
    for w in items.windows(2) {
        if w[1].start() < w[0].end() {
            return Err(corrupt(LayoutError::Overlap {
                first: describe(&w[0], &layout),
                first_start: w[0].start(),
                first_end: w[0].end(),
                second: describe(&w[1], &layout),
                second_start: w[1].start(),
            }));
        }
    }

    // Open each mapped volume once for what its scanner learns; that stream then serves the
    // first area of the volume on this member.
    let mut volumes = Vec::new();
    let mut inner = Vec::new();
    let mut warnings = layout.warnings.clone();
    for (i, lv) in layout.volumes.iter().enumerate() {
        let here: Vec<&Area> = layout.areas.iter().filter(|a| a.lv == i).collect();
        let (cursor, raw, info) = match &lv.content {
            Content::Mapped(view) => {
                let (stream, raw) = scan(view.clone());
                let info = stream.info().clone();
                let cursor = Cursor {
                    stream,
                    pending: None,
                    consumed_to: 0,
                };
                (Some(cursor), raw, info)
            }
            Content::Raw(reason) => {
                warnings.push(format!("{}: {reason}", lv.name));
                let info = FsInfo {
                    fs_type: "unknown".into(),
                    total_bytes: lv.size,
                    used_bytes: lv.size,
                    warnings: vec![reason.clone()],
                    ..FsInfo::default()
                };
                (None, true, info)
            }
        };
        if raw {
            if let (Content::Mapped(_), Some(w)) = (&lv.content, info.warnings.first()) {
                warnings.push(format!("{}: {w}", lv.name));
            }
        }
        if !here.is_empty() {
            inner.push(InnerVolume {
                name: lv.name.clone(),
                layout: lv.layout.clone(),
                size: lv.size,
                raw,
                info,
            });
        }
        volumes.push(Volume {
            content: lv.content.clone(),
            cursor,
        });
    }

    let mut me = MemberUsedBlocks {
        info: FsInfo {
            fs_type: kind.to_string(),
            label: layout.label.clone(),
            uuid: layout.uuid.clone(),
            block_size: 512,
            total_bytes: len,
            used_bytes: 0,
            files: None,
            warnings,
            volumes: inner,
            unallocated_bytes: layout.unallocated_bytes,
        },
        items,
        volumes,
        scan,
        next_item: 0,
        in_area: None,
        merger: ExtentMerger::new(),
        ended: false,
    };
    me.info.used_bytes = me.count_used(&layout)?;
    Ok(me)
}

impl MemberUsedBlocks {
    /// The bytes the stream will yield. A logical volume that lies wholly on this member
    /// yields exactly what its scanner counted; when one lies partly elsewhere, the stream is
    /// read once to count (then opened again).
    fn count_used(&mut self, layout: &MemberLayout) -> Result<u64, FsError> {
        let mut sum = 0u64;
        let mut must_count = false;
        for item in &self.items {
            match item {
                Item::Kept(e) => sum += e.len,
                Item::Area(a) => {
                    if matches!(self.volumes[a.lv].content, Content::Raw(_)) {
                        sum += a.member_len();
                    }
                }
            }
        }
        for (i, lv) in layout.volumes.iter().enumerate() {
            if !matches!(lv.content, Content::Mapped(_)) {
                continue;
            }
            let here: u64 = layout
                .areas
                .iter()
                .filter(|a| a.lv == i)
                .map(|a| a.member_len())
                .sum();
            if here == 0 {
                continue;
            }
            // Whole on this member: every area's bytes sum to the volume's size.
            if here >= lv.size {
                sum += self.volumes[i]
                    .cursor
                    .as_ref()
                    .map_or(0, |c| c.stream.info().used_bytes);
            } else {
                must_count = true;
            }
        }
        if !must_count {
            return Ok(sum);
        }
        let mut n = 0u64;
        while let Some(e) = self.next_extent()? {
            n += e.len;
        }
        self.rewind();
        Ok(n)
    }

    /// Starts again from the first extent (volumes are scanned again).
    fn rewind(&mut self) {
        for v in &mut self.volumes {
            v.cursor = None;
        }
        self.next_item = 0;
        self.in_area = None;
        self.merger = ExtentMerger::new();
        self.ended = false;
    }

    /// The next raw (unmerged) extent on the member.
    fn next_raw(&mut self) -> Result<Option<Extent>, FsError> {
        loop {
            if let Some(i) = self.in_area {
                let Item::Area(a) = self.items[i].clone() else {
                    unreachable!("in_area always points at an area")
                };
                let lo = a.lv_start;
                let hi = a.lv_start + a.lv_len;
                let cursor = self.volumes[a.lv]
                    .cursor
                    .as_mut()
                    .expect("an area being read has a cursor");
                match cursor.next_within(lo, hi)? {
                    Some(e) => {
                        if let Some((off, len)) = a.map(e.offset, e.len) {
                            return Ok(Some(Extent::new(off, len)));
                        }
                        continue;
                    }
                    None => {
                        cursor.consumed_to = cursor.consumed_to.max(hi);
                        self.in_area = None;
                    }
                }
            }
            let Some(item) = self.items.get(self.next_item).cloned() else {
                return Ok(None);
            };
            let i = self.next_item;
            self.next_item += 1;
            match item {
                Item::Kept(e) => return Ok(Some(e)),
                Item::Area(a) => {
                    let vol = &mut self.volumes[a.lv];
                    match &vol.content {
                        Content::Raw(_) => {
                            return Ok(Some(Extent::new(a.member_offset, a.member_len())));
                        }
                        Content::Mapped(view) => {
                            // A volume read forward goes on with the same stream; an area
                            // that starts before what was read (a later stripe of the same
                            // rows) scans the volume again.
                            let reusable = vol
                                .cursor
                                .as_ref()
                                .is_some_and(|c| c.consumed_to <= a.lv_start);
                            if !reusable {
                                let (stream, _) = (self.scan)(view.clone());
                                vol.cursor = Some(Cursor {
                                    stream,
                                    pending: None,
                                    consumed_to: 0,
                                });
                            }
                            self.in_area = Some(i);
                        }
                    }
                }
            }
        }
    }
}

impl UsedBlocks for MemberUsedBlocks {
    fn info(&self) -> &FsInfo {
        &self.info
    }

    fn next_extent(&mut self) -> Result<Option<Extent>, FsError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            match self.next_raw() {
                Ok(Some(e)) => {
                    if let Some(x) = self.merger.push(e) {
                        return Ok(Some(x));
                    }
                }
                Ok(None) => {
                    self.ended = true;
                    return Ok(self.merger.finish());
                }
                Err(e) => {
                    self.ended = true;
                    return Err(e);
                }
            }
        }
    }
}

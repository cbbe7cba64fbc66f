//! Directory indexes (`$I30`): the file-name entries of `$INDEX_ROOT` and of the index records
//! (`INDX`) of `$INDEX_ALLOCATION`. Used only to look a name up in the root directory.

use crate::NtfsError;
use lifeboat_fs::bytes::{u16_at, u16s, u32_at, u64_at};

/// Index entry flag: the entry points to a sub-node.
pub const ENTRY_SUBNODE: u16 = 0x0001;
/// Index entry flag: the last entry of the node (carries no key).
pub const ENTRY_LAST: u16 = 0x0002;

/// One file-name entry of a directory index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameEntry {
    /// MFT record number of the file (low 48 bits of the reference).
    pub record: u64,
    /// File-name namespace (0 POSIX, 1 Win32, 2 DOS, 3 Win32 and DOS).
    pub namespace: u8,
    /// The name, decoded from UTF-16 (unpaired surrogates replaced).
    pub name: String,
}

fn bad(what: &str, reason: String) -> NtfsError {
    NtfsError::BadRecord {
        what: what.to_string(),
        reason,
    }
}

/// Decodes the entries of an index node: `node` starts at the index header (16 bytes:
/// entries offset, bytes in use, bytes allocated, flags), offsets are relative to it.
pub fn parse_node(node: &[u8], what: &str) -> Result<Vec<NameEntry>, NtfsError> {
    if node.len() < 16 {
        return Err(bad(what, "index header passes the end".into()));
    }
    let first = u32_at(node, 0)? as usize;
    let in_use = u32_at(node, 4)? as usize;
    if in_use > node.len() || first < 16 || first > in_use {
        return Err(bad(
            what,
            format!("entries at {first}, {in_use} bytes in use: out of range"),
        ));
    }
    let mut out = Vec::new();
    let mut pos = first;
    loop {
        if in_use - pos < 16 {
            return Err(bad(what, format!("entry at {pos} passes the end")));
        }
        let e = &node[pos..in_use];
        let len = usize::from(u16_at(e, 8)?);
        let key_len = usize::from(u16_at(e, 10)?);
        let flags = u16_at(e, 12)?;
        if len < 16 || len % 8 != 0 || len > e.len() || 16 + key_len > len {
            return Err(bad(what, format!("entry at {pos} has length {len}")));
        }
        if flags & ENTRY_LAST != 0 {
            return Ok(out);
        }
        let key = &e[16..16 + key_len];
        if key.len() < 66 {
            return Err(bad(
                what,
                format!("entry at {pos}: file name key too short"),
            ));
        }
        let name_len = usize::from(key[64]) * 2;
        let name = key
            .get(66..66 + name_len)
            .ok_or_else(|| bad(what, format!("entry at {pos}: name passes the key")))?;
        let units: Vec<u16> = u16s(name).collect();
        out.push(NameEntry {
            record: u64_at(e, 0)? & 0x0000_FFFF_FFFF_FFFF,
            namespace: key[65],
            name: String::from_utf16_lossy(&units),
        });
        pos += len;
    }
}

/// The entries of an `$INDEX_ROOT` value.
pub fn parse_root(value: &[u8]) -> Result<Vec<NameEntry>, NtfsError> {
    let node = value
        .get(16..)
        .ok_or_else(|| bad("index root", "shorter than its header".into()))?;
    parse_node(node, "index root")
}

/// The entries of a fixed-up `INDX` record.
pub fn parse_index_record(rec: &[u8]) -> Result<Vec<NameEntry>, NtfsError> {
    if rec.len() < 0x28 || &rec[0..4] != b"INDX" {
        return Err(bad("index record", "not an INDX record".into()));
    }
    parse_node(&rec[0x18..], "index record")
}

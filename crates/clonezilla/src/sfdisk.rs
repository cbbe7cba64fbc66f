//! The `sfdisk --dump` text Clonezilla saves as `<disk>-pt.sf`.
//!
//! ```text
//! label: dos
//! label-id: 0x43fee53b
//! device: /dev/sda
//! unit: sectors
//! sector-size: 512
//!
//! /dev/sda1 : start=        2048, size=      122880, type=83, bootable
//! ```

use crate::error::{Error, Result};

/// The largest dump read (a GPT dump of 128 entries is about 20 KiB).
pub const MAX_DUMP_LEN: usize = 1 << 20;
/// The most partitions accepted.
pub const MAX_PARTITIONS: usize = 4096;

/// A partition table as `sfdisk --dump` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SfdiskTable {
    /// "dos" or "gpt".
    pub label: String,
    /// The disk identifier (MBR signature or GPT disk GUID).
    pub label_id: Option<String>,
    /// The device the dump was taken of.
    pub device: Option<String>,
    /// Bytes per sector (512 when the dump does not say).
    pub sector_size: u32,
    /// First usable LBA (GPT).
    pub first_lba: Option<u64>,
    /// Last usable LBA (GPT).
    pub last_lba: Option<u64>,
    /// The partitions, in the dump's order.
    pub partitions: Vec<SfdiskPartition>,
}

/// One partition line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SfdiskPartition {
    /// Device name as dumped ("/dev/sda1").
    pub device: String,
    /// Partition number, from the end of the device name.
    pub number: u32,
    /// First sector.
    pub start: u64,
    /// Sectors.
    pub size: u64,
    /// Type: an MBR type in hex ("83") or a GPT type GUID.
    pub kind: String,
    /// GPT partition GUID.
    pub uuid: Option<String>,
    /// GPT partition name.
    pub name: Option<String>,
    /// GPT attributes.
    pub attrs: Option<String>,
    /// MBR active flag.
    pub bootable: bool,
}

impl SfdiskPartition {
    /// An MBR extended partition (types 05, 0f, 85).
    pub fn is_extended(&self) -> bool {
        matches!(
            self.kind
                .trim_start_matches("0x")
                .to_ascii_lowercase()
                .as_str(),
            "5" | "05" | "f" | "0f" | "85"
        )
    }
}

impl SfdiskTable {
    /// True for a GPT dump.
    pub fn is_gpt(&self) -> bool {
        self.label == "gpt"
    }

    /// Parses a dump; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<SfdiskTable> {
        let err = |line: usize, reason: String| Error::BadText {
            file: file.to_string(),
            line,
            reason,
        };
        if text.len() > MAX_DUMP_LEN {
            return Err(err(0, format!("longer than {MAX_DUMP_LEN} bytes")));
        }
        let mut t = SfdiskTable {
            sector_size: 512,
            ..Default::default()
        };
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((dev, rest)) = line.split_once(" : ") {
                if t.partitions.len() >= MAX_PARTITIONS {
                    return Err(err(n, format!("more than {MAX_PARTITIONS} partitions")));
                }
                t.partitions
                    .push(parse_partition(dev.trim(), rest).map_err(|r| err(n, r))?);
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(err(n, format!("not understood: {line:?}")));
            };
            let value = value.trim();
            let num = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| err(n, format!("{key}: {v:?} is not a number")))
            };
            match key.trim() {
                "label" => t.label = value.to_string(),
                "label-id" => t.label_id = Some(value.to_string()),
                "device" => t.device = Some(value.to_string()),
                "unit" if value != "sectors" => {
                    return Err(err(n, format!("unit {value:?} (only sectors)")))
                }
                "sector-size" => {
                    let s = num(value)?;
                    if !(512..=65536).contains(&s) || !s.is_power_of_two() {
                        return Err(err(n, format!("sector size {s}")));
                    }
                    t.sector_size = s as u32;
                }
                "first-lba" => t.first_lba = Some(num(value)?),
                "last-lba" => t.last_lba = Some(num(value)?),
                // unit: sectors, table-length, grain, … carry nothing lifeboat needs.
                _ => {}
            }
        }
        if t.label != "dos" && t.label != "gpt" {
            return Err(err(0, format!("label {:?} (known: dos, gpt)", t.label)));
        }
        Ok(t)
    }
}

fn parse_partition(dev: &str, rest: &str) -> Result<SfdiskPartition, String> {
    let digits = dev.len() - dev.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let number = dev[dev.len() - digits..]
        .parse::<u32>()
        .map_err(|_| format!("{dev:?} does not end with a partition number"))?;
    let mut p = SfdiskPartition {
        device: dev.to_string(),
        number,
        ..Default::default()
    };
    let mut has = (false, false);
    for field in split_fields(rest) {
        let field = field.trim();
        if field.is_empty() {
            continue;
        }
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim().trim_matches('"').to_string()),
            None => (field, String::new()),
        };
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{k}={v:?} is not a number"))
        };
        match k {
            "start" => {
                p.start = num(&v)?;
                has.0 = true;
            }
            "size" => {
                p.size = num(&v)?;
                has.1 = true;
            }
            "type" | "Id" => p.kind = v,
            "uuid" => p.uuid = Some(v),
            "name" => p.name = Some(v),
            "attrs" => p.attrs = Some(v),
            "bootable" => p.bootable = true,
            _ => {}
        }
    }
    if !(has.0 && has.1) {
        return Err(format!("{dev}: start= and size= are required"));
    }
    if p.start.checked_add(p.size).is_none() {
        return Err(format!("{dev}: start + size overflows"));
    }
    Ok(p)
}

/// Splits on commas outside double quotes (GPT names may hold commas).
fn split_fields(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dos_and_gpt_dumps() {
        let t = SfdiskTable::parse(
            "sda-pt.sf",
            "label: dos\nlabel-id: 0x43fee53b\ndevice: /dev/loop0\nunit: sectors\nsector-size: 512\n\n\
             /dev/loop0p1 : start=        2048, size=      122880, type=83, bootable\n\
             /dev/loop0p3 : start=      227328, size=      182272, type=5\n",
        )
        .unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partitions[0].start, 2048);
        assert!(t.partitions[0].bootable && !t.partitions[0].is_extended());
        assert!(t.partitions[1].is_extended());
        let g = SfdiskTable::parse(
            "nvme0n1-pt.sf",
            "label: gpt\nfirst-lba: 34\nlast-lba: 409566\n\n\
             /dev/nvme0n1p1 : start=2048, size=4096, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, \
             uuid=0B4D3F3A-1111-2222-3333-444455556666, name=\"EFI, system\"\n",
        )
        .unwrap();
        assert!(g.is_gpt());
        assert_eq!(g.partitions[0].number, 1);
        assert_eq!(g.partitions[0].name.as_deref(), Some("EFI, system"));
    }

    #[test]
    fn bad_lines_are_named() {
        let e = SfdiskTable::parse("x-pt.sf", "label: dos\n/dev/sda1 : start=abc, size=1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("x-pt.sf line 2"), "{e}");
        assert!(SfdiskTable::parse("x", "label: sun\n").is_err());
    }
}

//! Fuzzes the rebuilding of a Clonezilla disk's boot areas (`DiskHead::build`): the sfdisk
//! dump, the saved MBR and first EBR, the GPT copies and parted's disk size all come from the
//! input. Nothing may panic, loop or allocate beyond the files given; a head that is built
//! answers reads anywhere inside the disk (and refuses reads past its end), its MBR and EBRs
//! carry the boot signature, and lifeboat's table parser reads it without panicking.
//!
//! Input: byte 0 picks the label (even: dos, odd: gpt), bytes 1..9 the disk size in sectors
//! (as parted reports it), bytes 9..521 the `-mbr` file, 521..1033 the first `-ebr` (or, for
//! gpt, the start of `-gpt-1st`), the rest the `-pt.sf` text.
#![no_main]

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use lifeboat_clonezilla::{CloneImage, DiskHead, ImageFiles};

struct Mem(BTreeMap<String, Vec<u8>>);

impl ImageFiles for Mem {
    fn location(&self) -> String {
        "fuzz".into()
    }
    fn names(&self) -> io::Result<Vec<String>> {
        Ok(self.0.keys().cloned().collect())
    }
    fn open(&self, name: &str) -> io::Result<Box<dyn Read + Send>> {
        let b = self.0.get(name).cloned().ok_or(io::ErrorKind::NotFound)?;
        Ok(Box::new(io::Cursor::new(b)))
    }
    fn len(&self, name: &str) -> io::Result<u64> {
        Ok(self.0.get(name).ok_or(io::ErrorKind::NotFound)?.len() as u64)
    }
}

struct Head(DiskHead);

impl lifeboat_fs::ReadAt for Head {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_at(buf, offset)
    }
    fn len(&self) -> u64 {
        self.0.size
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 1033 {
        return;
    }
    let gpt = data[0] & 1 == 1;
    // At most 2^40 sectors: the head is sparse, its size is only a number.
    let sectors = u64::from_le_bytes(data[1..9].try_into().unwrap()) & ((1 << 40) - 1);
    let mut files = BTreeMap::new();
    let text = String::from_utf8_lossy(&data[1033..]).into_owned();
    let label = if gpt { "gpt" } else { "dos" };
    let dump = format!("label: {label}\nunit: sectors\n\n{text}");
    files.insert("disk".to_string(), b"sda".to_vec());
    files.insert("parts".to_string(), Vec::new());
    files.insert("clonezilla-img".to_string(), Vec::new());
    files.insert("sda-pt.sf".to_string(), dump.into_bytes());
    files.insert(
        "sda-pt.parted".to_string(),
        format!("Disk /dev/sda: {sectors}s\n").into_bytes(),
    );
    files.insert("sda-mbr".to_string(), data[9..521].to_vec());
    if gpt {
        let mut first = data[9..521].to_vec();
        first.extend_from_slice(&data[521..1033]);
        files.insert("sda-gpt-1st".to_string(), first);
        files.insert("sda-gpt-2nd".to_string(), data[521..1033].to_vec());
    } else {
        for n in 1..=4 {
            files.insert(format!("sda{n}-ebr"), data[521..1033].to_vec());
        }
    }
    let Ok(img) = CloneImage::open(Arc::new(Mem(files))) else {
        return;
    };
    let Some(disk) = img.disks.first() else {
        return;
    };
    let Ok(head) = DiskHead::build(&img, disk) else {
        return;
    };
    let size = head.size;
    let mut buf = vec![0u8; 4096];
    if size >= 4096 {
        head.read_at(&mut buf, 0).expect("a read inside the disk");
        head.read_at(&mut buf, size - 4096)
            .expect("a read inside the disk");
    }
    assert!(head.read_at(&mut buf, size).is_err() || buf.is_empty());
    let ss = head.sector_size;
    let head = Head(head);
    let _ = lifeboat_parttable::read_layout(&head, ss);
});

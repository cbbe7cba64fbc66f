//! Prints the partition layout of a disk or disk image.
//!
//! ```text
//! cargo run -p lifeboat-parttable --example show_layout -- disk.img [512|4096]
//! ```

use lifeboat_parttable::read_layout;
use std::fs::File;
use std::io::{Seek, SeekFrom};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: show_layout DISK_OR_IMAGE [SECTOR_SIZE]");
        std::process::exit(2);
    };
    let sector_size: u32 = args.next().and_then(|s| s.parse().ok()).unwrap_or(512);
    let opened = File::open(&path).and_then(|mut f| {
        let len = f.seek(SeekFrom::End(0))?;
        Ok((f, len))
    });
    let disk = match opened {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: cannot open {path}: {e}");
            std::process::exit(1);
        }
    };
    let layout = match read_layout(&disk, sector_size) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {path}: {e}");
            std::process::exit(1);
        }
    };
    println!(
        "{path}: {:?} table, {} bytes, {}-byte sectors, id {}",
        layout.kind,
        layout.disk_size,
        layout.sector_size,
        layout.disk_id.as_deref().unwrap_or("-")
    );
    for p in &layout.partitions {
        println!(
            "  #{:<3} {:<8?} start {:>14} size {:>14} {:<38} {:<28} {}{}",
            p.number,
            p.kind,
            p.start,
            p.size,
            p.type_code,
            p.type_name,
            p.name,
            if p.bootable { " (bootable)" } else { "" }
        );
    }
    for r in &layout.boot_regions {
        println!("  region {:>14} +{:<10} {}", r.offset, r.len, r.what);
    }
    for w in &layout.warnings {
        println!("  warning: {w}");
    }
}

//! Lists the whole disks of this machine, or describes one disk or image file.
//!
//! ```text
//! cargo run -p lifeboat-blockdev --example lsblk            # all disks
//! cargo run -p lifeboat-blockdev --example lsblk /dev/sda   # one disk or image file
//! ```

use lifeboat_blockdev::{disks_holding_path, in_use, list_disks, Disk, OpenMode};
use std::path::Path;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), lifeboat_blockdev::BlockDevError> {
    if let Some(path) = std::env::args().nth(1) {
        let disk = Disk::open(&path, OpenMode::Read)?;
        println!("{path}: {} bytes", disk.size());
        println!(
            "  sectors: logical {} physical {}; block device: {}; dev: {:?}",
            disk.logical_sector_size(),
            disk.physical_sector_size(),
            disk.is_block_device(),
            disk.dev()
        );
        println!("  identity: {:?}", disk.identity());
        for u in in_use(Path::new(&path))? {
            println!("  busy: {u}");
        }
        let here = disks_holding_path(Path::new("."))?;
        if disk.is_one_of(&here) {
            println!("  holds the current directory: do not restore onto it");
        }
        return Ok(());
    }
    for d in list_disks()? {
        println!(
            "{:<10} {:>14} {:>4}/{:<4} {:<7} {:<6} {} {}",
            d.path.display(),
            d.size,
            d.logical_sector_size,
            d.physical_sector_size,
            d.kind,
            d.transport.as_deref().unwrap_or("-"),
            d.model.as_deref().unwrap_or("-"),
            d.serial.as_deref().unwrap_or("-"),
        );
        if let Some(b) = &d.loop_backing_file {
            println!("    backing file {}", b.display());
        }
        for m in &d.mountpoints {
            println!("    mounted on {}", m.display());
        }
        for p in &d.partitions {
            println!(
                "    {:<12} #{:<3} start {:>14} size {:>14} {}",
                p.path.display(),
                p.number,
                p.start,
                p.size,
                p.mountpoints
                    .iter()
                    .map(|m| m.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    Ok(())
}

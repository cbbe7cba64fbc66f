//! Describes a Clonezilla image directory, or one partclone image file, and verifies it.
//!
//!     cargo run -p lifeboat-clonezilla --example show_image -- /home/partimag/IMAGE
//!     cargo run -p lifeboat-clonezilla --example show_image -- sda1.ext4-ptcl-img.zst
use std::sync::Arc;

use lifeboat_clonezilla::{compress, CloneImage, Limits, LocalDir, PartContent, PartcloneReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: show_image DIR|FILE")?;
    if std::path::Path::new(&path).is_dir() {
        let img = CloneImage::open(Arc::new(LocalDir::new(&path)))?;
        for d in &img.disks {
            let table = d.table.as_ref().map_or("no table".to_string(), |t| {
                format!("{} table, {} partitions", t.label, t.partitions.len())
            });
            println!("disk {}: {table}", d.name);
        }
        for p in &img.parts {
            match &p.content {
                PartContent::Swap { uuid, .. } => println!("{}: swap {uuid:?}", p.name),
                PartContent::Raw => println!("{}: raw, {} file(s)", p.name, p.pieces.len()),
                PartContent::Partclone { fs } => {
                    let mut r = img.partclone(p, Limits::default())?;
                    let h = r.header().clone();
                    let n = r.verify_rest()?;
                    println!(
                        "{}: {fs}, partclone {:?}, {} of {} blocks of {} bytes, verified",
                        p.name, h.format, n, h.total_blocks, h.block_size
                    );
                }
            }
        }
    } else {
        let (c, r) = compress::open(&path, std::fs::File::open(&path)?)?;
        let mut r = PartcloneReader::new(r, Limits::default())?;
        println!("{c}-compressed {:#?}", r.header());
        println!("{} used blocks, verified", r.verify_rest()?);
    }
    Ok(())
}

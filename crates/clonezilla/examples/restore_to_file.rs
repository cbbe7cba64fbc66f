//! Writes the partition a (compressed, possibly split) partclone image holds into a regular
//! file: each stored block at its offset, unused blocks left as they are (holes in a new
//! file), like `partclone.<fs> -r`. For measuring the reader (benches/clonezilla.sh); lifeboat
//! restores disks through its engine, with its safety checks, never through this example.
//!
//!     cargo run --release -p lifeboat-clonezilla --example restore_to_file -- IMAGE.zst OUT
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;

use lifeboat_clonezilla::ahead::ReadAhead;
use lifeboat_clonezilla::{compress, Limits, PartcloneReader};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [image, out] = &args[..] else {
        return Err("usage: restore_to_file IMAGE OUT (OUT: a regular file)".into());
    };
    let pieces: Box<dyn Read + Send> = Box::new(File::open(image)?);
    let (_, r) = compress::open(image, pieces)?;
    let mut pc = PartcloneReader::new(ReadAhead::new(r)?, Limits::default())?;
    let target = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(out)?;
    if !target.metadata()?.is_file() {
        return Err(format!("{out} is not a regular file").into());
    }
    let bs = u64::from(pc.header().block_size);
    target.set_len(target.metadata()?.len().max(pc.header().device_size))?;
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    while let Some(run) = pc.read_run(&mut buf, 4 << 20)? {
        target.write_all_at(&buf, run.first_block * bs)?;
        bytes += buf.len() as u64;
    }
    target.sync_all()?;
    eprintln!("{bytes} bytes of used blocks written, checksums verified");
    Ok(())
}

//! Prints a summary of the used extents of an XFS image file (or block device).
//!
//! Usage: `cargo run -p lifeboat-fs-xfs --example xfs_scan -- IMAGE [--list]`

use std::error::Error;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::process::ExitCode;
use std::time::Instant;

use lifeboat_fs::{tally, Scanner, UsedBlocks};
use lifeboat_fs_xfs::XfsScanner;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: scan IMAGE [--list]");
        return ExitCode::from(2);
    };
    match scan(path, args.iter().any(|a| a == "--list")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn scan(path: &str, list: bool) -> Result<(), Box<dyn Error>> {
    let mut file = File::open(path)?;
    // Seeking to the end also measures block devices, whose metadata length is zero.
    let len = file.seek(SeekFrom::End(0))?;
    let volume = (file, len);
    if !XfsScanner.probe(&volume) {
        eprintln!("{path}: no XFS superblock magic");
    }
    let start = Instant::now();
    let mut stream = XfsScanner.open_xfs(&volume)?;
    println!("{}", stream.info());
    let t = tally(&mut stream, |e| {
        if list {
            println!("  {:>16} +{}", e.offset, e.len);
        }
    })?;
    let sb = stream.superblock();
    println!("extents:     {t}");
    println!(
        "geometry:    v{}, {} AGs of {} blocks, {}-byte sectors (scanner buffers: {} bytes)",
        sb.version(),
        sb.agcount,
        sb.agblocks,
        sb.sector_size,
        stream.memory_bytes()
    );
    println!("scan time:   {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

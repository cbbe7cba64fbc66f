//! Prints a summary of the used extents of an NTFS image file.
//!
//! Usage: `cargo run -p lifeboat-fs-ntfs --example scan_ntfs -- IMAGE [--list]`

use std::error::Error;
use std::fs::File;
use std::process::ExitCode;
use std::time::Instant;

use lifeboat_fs::{tally, Scanner, UsedBlocks};
use lifeboat_fs_ntfs::NtfsScanner;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: scan_ntfs IMAGE [--list]");
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
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let volume = (file, len);
    if !NtfsScanner.probe(&volume) {
        eprintln!("{path}: not an NTFS volume this scanner understands");
    }
    let start = Instant::now();
    let mut stream = NtfsScanner.open_ntfs(&volume)?;
    let opened = start.elapsed();
    println!("{}", stream.info());
    let t = tally(&mut stream, |e| {
        if list {
            println!("  {:>16} +{}", e.offset, e.len);
        }
    })?;
    println!("extents:     {t}");
    println!("buffers:     {} bytes", stream.memory_bytes());
    println!("open time:   {:.3} s", opened.as_secs_f64());
    println!("scan time:   {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

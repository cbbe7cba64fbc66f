//! Prints what the VMFS scanner finds in a partition image: version, block size, label,
//! number of files, used bytes, and optionally every used extent.
//!
//! Usage: `cargo run -p lifeboat-fs-vmfs --example scan_vmfs -- PARTITION [--list]`

use std::error::Error;
use std::fs::File;
use std::process::ExitCode;

use lifeboat_fs::{tally, UsedBlocks};
use lifeboat_fs_vmfs::VmfsScanner;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: scan_vmfs PARTITION [--list]");
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
    let mut stream = VmfsScanner.open_vmfs(&volume)?;
    println!("{}", stream.info());
    let t = tally(&mut stream, |e| {
        if list {
            println!("  {:#x} +{:#x}", e.offset, e.len);
        }
    })?;
    println!("extents:     {t} in a {len}-byte partition");
    Ok(())
}

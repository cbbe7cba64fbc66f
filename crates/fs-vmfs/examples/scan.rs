//! Prints what the VMFS scanner finds in a partition image: version, block size, label,
//! number of files, used bytes, and optionally every used extent.
//!
//! Usage: `cargo run -p lifeboat-fs-vmfs --example scan -- PARTITION [--list]`

use std::fs::File;
use std::process::ExitCode;

use lifeboat_fs::UsedBlocks;
use lifeboat_fs_vmfs::VmfsScanner;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: scan PARTITION [--list]");
        return ExitCode::from(2);
    };
    let list = args.iter().any(|a| a == "--list");
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let volume = (file, len);
    let mut stream = match VmfsScanner.open_vmfs(&volume) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let info = stream.info().clone();
    println!(
        "{} label={:?} uuid={:?} block={} total={} used={} files={}",
        info.fs_type,
        info.label.unwrap_or_default(),
        info.uuid.unwrap_or_default(),
        info.block_size,
        info.total_bytes,
        info.used_bytes,
        stream.file_count()
    );
    let mut n = 0u64;
    loop {
        match stream.next_extent() {
            Ok(Some(e)) => {
                n += 1;
                if list {
                    println!("{:#x} +{:#x}", e.offset, e.len);
                }
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{n} extents of a {len}-byte partition");
    ExitCode::SUCCESS
}

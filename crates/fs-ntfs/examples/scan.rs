//! Prints a summary of the used extents of an NTFS image file.
//!
//! Usage: `cargo run -p lifeboat-fs-ntfs --example scan -- IMAGE [--list]`

use std::fs::File;
use std::process::ExitCode;

use lifeboat_fs::{Scanner, UsedBlocks};
use lifeboat_fs_ntfs::NtfsScanner;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: scan IMAGE [--list]");
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
    let scanner = NtfsScanner;
    if !scanner.probe(&volume) {
        eprintln!("{path}: not an NTFS volume this scanner understands");
    }
    let start = std::time::Instant::now();
    let mut stream = match scanner.open_ntfs(&volume) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let opened = start.elapsed();
    let info = stream.info().clone();
    println!("type:         {}", info.fs_type);
    println!("label:        {}", info.label.as_deref().unwrap_or("-"));
    println!("serial:       {}", info.uuid.as_deref().unwrap_or("-"));
    println!("cluster size: {}", info.block_size);
    println!("total bytes:  {}", info.total_bytes);
    println!(
        "used bytes:   {} ({:.2}%)",
        info.used_bytes,
        100.0 * info.used_bytes as f64 / info.total_bytes.max(1) as f64
    );
    for w in &info.warnings {
        println!("warning:      {w}");
    }
    let (mut n, mut sum, mut largest) = (0u64, 0u64, 0u64);
    loop {
        match stream.next_extent() {
            Ok(Some(e)) => {
                if list {
                    println!("  {:>16} +{}", e.offset, e.len);
                }
                n += 1;
                sum += e.len;
                largest = largest.max(e.len);
            }
            Ok(None) => break,
            Err(e) => {
                eprintln!("{path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("extents:      {n} (largest {largest} bytes, {sum} bytes in all)");
    println!("buffers:      {} bytes", stream.memory_bytes());
    println!("open time:    {:.3} s", opened.as_secs_f64());
    println!("scan time:    {:.3} s", start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}

//! Prints a summary of the used extents of a FAT12/16/32 or exFAT image file.
//!
//! Usage: `cargo run -p lifeboat-fs-fat --example scan_fat -- IMAGE [--list]`

use std::error::Error;
use std::fs::File;
use std::process::ExitCode;
use std::time::Instant;

use lifeboat_fs::{tally, Scanner};
use lifeboat_fs_fat::{ExfatScanner, FatScanner};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: scan_fat IMAGE [--list]");
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
    let scanner: &dyn Scanner = if ExfatScanner.probe(&volume) {
        &ExfatScanner
    } else if FatScanner.probe(&volume) {
        &FatScanner
    } else {
        return Err("neither FAT nor exFAT as far as this scanner understands".into());
    };
    let start = Instant::now();
    let mut stream = scanner.open(std::sync::Arc::new(volume))?;
    let opened = start.elapsed();
    println!("{}", stream.info());
    let t = tally(stream.as_mut(), |e| {
        if list {
            println!("  {:>16} +{}", e.offset, e.len);
        }
    })?;
    println!("extents:     {t}");
    println!(
        "scan time:   {:.3} s (open and count {:.3} s, stream {:.3} s)",
        start.elapsed().as_secs_f64(),
        opened.as_secs_f64(),
        (start.elapsed() - opened).as_secs_f64()
    );
    Ok(())
}

//! Walks an image stream front to back and prints what it holds: the disk records, the index,
//! the manifest, and how many chunks and bytes of disk data it carries.
//! Every record CRC, every chunk's data CRC and the index are verified on the way.
//!
//!     cargo run -p lifeboat-container --example walk -- REPO/IMAGE/data.lbi.000
//!     cat REPO/IMAGE/data.lbi.* | cargo run -p lifeboat-container --example walk -- -
use lifeboat_container::{DiskRecord, Record, StreamReader};
use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = std::env::args()
        .nth(1)
        .ok_or("usage: walk IMAGE-STREAM (a data.lbi.* file, or - for standard input)")?;
    let input: Box<dyn Read> = if arg == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(&arg)?)
    };
    let mut reader = StreamReader::new(std::io::BufReader::with_capacity(1 << 20, input))?;
    let mut data = Vec::new();
    let (mut chunks, mut bytes) = (0u64, 0u64);
    while let Some(record) = reader.next_record()? {
        match record {
            Record::DiskList { disks, .. } => println!("disk list: {disks} disks"),
            Record::Disk { index, json } => {
                let disk = DiskRecord::from_json(&json, reader.position())?;
                println!(
                    "disk {index}: {} bytes, {} partitions, table {}",
                    disk.size,
                    disk.table.partitions.len(),
                    disk.table.kind
                );
            }
            Record::Chunk(chunk) => {
                chunk.decode_into(&mut data)?;
                chunks += 1;
                bytes += data.len() as u64;
            }
            Record::Index { entries } => println!("index segment: {entries} entries"),
            Record::Directory { segments } => println!("index directory: {segments} segments"),
            Record::Manifest(json) => println!("manifest: {} bytes of JSON", json.len()),
            Record::Tail(_) => println!("tail: the stream is complete"),
        }
    }
    println!("{chunks} chunks, {bytes} bytes of disk data, all checksums right");
    Ok(())
}

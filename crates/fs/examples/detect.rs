//! Prints what a volume (a file or device given as the first argument) holds by signature.
//!
//!     cargo run -p lifeboat-fs --example detect -- /path/to/volume.img
use std::fs::File;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: detect VOLUME");
    let f = File::open(&path)?;
    let len = f.metadata()?.len();
    let vol = (f, len);
    match lifeboat_fs::identify_signature(&vol) {
        Some(sig) => println!("{path}: {}", sig.name()),
        None => println!("{path}: no signature recognised"),
    }
    Ok(())
}

//! Writes a test file through a repository's backend, reads it back and removes it again:
//! a quick check (and throughput measure) of a repository address.
//!
//!     LIFEBOAT_SMB_PASSWORD=… cargo run -p lifeboat-remote --example backend_roundtrip -- \
//!         smb://backup@fileserver/images 64
//!     cargo run -p lifeboat-remote --example backend_roundtrip -- nfs://nas/export 64
//!     cargo run -p lifeboat-remote --example backend_roundtrip -- /tmp 64
use lifeboat_remote::NoInteraction;
use lifeboat_repo::{FileKind, ImageName};
use std::io::Write;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .ok_or("usage: backend_roundtrip REPOSITORY [MIB]")?;
    let mib: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(16);
    let repo = lifeboat_remote::open(&addr, &NoInteraction)?;
    let b = repo.backend();
    let image = ImageName::new(&format!("roundtrip-{}", std::process::id()))?;
    b.create_image(&image)?;

    let block: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let t = Instant::now();
    let mut w = b.create(&image, FileKind::Volume(0))?;
    for _ in 0..mib {
        w.write_all(&block)?;
    }
    w.finish()?;
    let wt = t.elapsed().as_secs_f64();
    b.put_atomic(&image, FileKind::Manifest, b"{}")?;
    println!("files: {:?}", b.list_files(image.as_str())?);

    let t = Instant::now();
    let r = b.open(&image, FileKind::Volume(0))?;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..mib {
        r.read_exact_at(&mut buf, (i as u64) << 20)?;
        if buf != block {
            return Err(format!("MiB {i} read back differs").into());
        }
    }
    let rt = t.elapsed().as_secs_f64();
    drop(r);
    assert_eq!(b.get(&image, FileKind::Manifest, 16)?, b"{}");
    println!(
        "{mib} MiB written at {:.0} MiB/s, read back at {:.0} MiB/s, identical",
        mib as f64 / wt,
        mib as f64 / rt
    );
    for f in [FileKind::Volume(0), FileKind::Manifest] {
        b.delete_file(&image, f)?;
    }
    b.remove_image_dir(&image)?;
    Ok(())
}

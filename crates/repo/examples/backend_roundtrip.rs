//! Writes a test file through a repository's backend, reads it back and removes it again:
//! a quick check (and throughput measure) of a repository address.
//!
//!     LIFEBOAT_SMB_PASSWORD=… cargo run -p lifeboat-repo --features smb,nfs \
//!         --example backend_roundtrip -- smb://backup@fileserver/images 64
//!     cargo run -p lifeboat-repo --features nfs --example backend_roundtrip -- nfs://nas/export 64
use lifeboat_repo::remote::NoInteraction;
use lifeboat_repo::Repository;
use std::io::Write;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .ok_or("usage: backend_roundtrip REPOSITORY [MIB]")?;
    let mib: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(16);
    let repo = Repository::open_with(&addr, &NoInteraction)?;
    let b = repo.backend();
    let image = format!("roundtrip-{}", std::process::id());
    b.create_image(&image)?;

    let block: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let t = Instant::now();
    let mut w = b.create(&image, "data.bin")?;
    for _ in 0..mib {
        w.write_all(&block)?;
    }
    w.finish()?;
    let wt = t.elapsed().as_secs_f64();
    b.put_atomic(&image, "manifest.json", b"{}")?;
    println!("files: {:?}", b.list_files(&image)?);

    let t = Instant::now();
    let r = b.open(&image, "data.bin")?;
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..mib {
        r.read_exact_at(&mut buf, (i as u64) << 20)?;
        if buf != block {
            return Err(format!("MiB {i} read back differs").into());
        }
    }
    let rt = t.elapsed().as_secs_f64();
    drop(r);
    assert_eq!(b.get(&image, "manifest.json", 16)?, b"{}");
    println!(
        "{mib} MiB written at {:.0} MiB/s, read back at {:.0} MiB/s, identical",
        mib as f64 / wt,
        mib as f64 / rt
    );
    for f in ["data.bin", "manifest.json"] {
        b.delete_file(&image, f)?;
    }
    b.remove_image_dir(&image)?;
    Ok(())
}

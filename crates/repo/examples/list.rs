//! Lists the images of a repository directory.
//!
//!     cargo run -p lifeboat-repo --example list -- /mnt/usb/images
use lifeboat_repo::{ImageStatus, Repository};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: list REPO_DIR")?;
    let repo = Repository::open(&dir)?;
    for e in repo.list()? {
        match e.status {
            ImageStatus::Complete(m) => println!(
                "{}: complete, {} disk(s), saved {}",
                e.name,
                m.disks.len(),
                m.created
            ),
            ImageStatus::Incomplete(why) => println!("{}: INCOMPLETE ({why})", e.name),
        }
    }
    Ok(())
}

//! Saves a disk image file into a repository and restores it onto another file.
//!
//!     cargo run -p lifeboat-engine --example save_restore -- SOURCE.img REPO_DIR TARGET.img
use lifeboat_engine::{plan_restore, plan_save, Event, RestoreOptions, SaveOptions};
use lifeboat_repo::{ImageName, Repository};
use std::sync::atomic::AtomicBool;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [source, repo_dir, target] = &args[..] else {
        return Err("usage: save_restore SOURCE.img REPO_DIR TARGET.img".into());
    };
    let repo = Repository::open(repo_dir)?;
    let image = ImageName::new("example")?;
    let cancel = AtomicBool::new(false);
    let show = |e: Event| {
        if !matches!(e, Event::Progress { .. }) {
            println!("{}", serde_json::to_string(&e).unwrap());
        }
    };
    // Plan (nothing written yet: what will be saved), then execute.
    let plan = plan_save(&SaveOptions::new(image.clone(), vec![source.into()]))?;
    for p in &plan.disks()[0].table.partitions {
        println!(
            "partition {}: {} ({}), {} bytes used",
            p.number, p.filesystem, p.mode, p.used_bytes
        );
    }
    plan.execute(&repo, &show, &cancel)?;
    // Plan the restore (every safety check), show the targets, then execute.
    let plan = plan_restore(&repo, &RestoreOptions::new(image, vec![target.into()]))?;
    for t in plan.targets() {
        println!("{}", t.describe());
    }
    plan.execute(&show, &cancel)?;
    Ok(())
}

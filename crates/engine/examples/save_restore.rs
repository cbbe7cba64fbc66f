//! Saves a disk image file into a repository and restores it onto another file.
//!
//!     cargo run -p lifeboat-engine --example save_restore -- SOURCE.img REPO_DIR TARGET.img
use lifeboat_engine::{plan_restore, save, Event, RestoreOptions, SaveOptions};
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
    save(
        &repo,
        &SaveOptions::new(image.clone(), vec![source.into()]),
        &show,
        &cancel,
    )?;
    let plan = plan_restore(&repo, &RestoreOptions::new(image, vec![target.into()]))?;
    plan.execute(&show, &cancel)?;
    Ok(())
}

//! Steps 3 to 7: mode, image, disks, summary and confirmation, progress and result.

use super::disks::Purpose;
use super::repo::Chosen;
use super::{Cancelled, Console, Step};
use crate::confirm;
use crate::output::{human, human_duration, operation_name, Ui};
use anyhow::Result;
use lifeboat_engine::{
    Aftermath, DiskRef, EngineError, ErrorClass, Event, ImageKind, ImageName, ImageStatus,
    Manifest, RestoreOptions, SaveOptions,
};
use rust_i18n::t;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// What the operator can do once a repository is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    SaveDisks,
    RestoreDisks,
    SaveParts,
    RestoreParts,
    Check,
    List,
    ChangeRepo,
    Quit,
}

impl Mode {
    const ALL: [Mode; 8] = [
        Mode::SaveDisks,
        Mode::RestoreDisks,
        Mode::SaveParts,
        Mode::RestoreParts,
        Mode::Check,
        Mode::List,
        Mode::ChangeRepo,
        Mode::Quit,
    ];

    fn label(self) -> String {
        match self {
            Mode::SaveDisks => t!("mode.save_disks"),
            Mode::RestoreDisks => t!("mode.restore_disks"),
            Mode::SaveParts => t!("mode.save_parts"),
            Mode::RestoreParts => t!("mode.restore_parts"),
            Mode::Check => t!("mode.check"),
            Mode::List => t!("mode.list"),
            Mode::ChangeRepo => t!("mode.change_repo"),
            Mode::Quit => t!("mode.quit"),
        }
        .into()
    }
}

/// Quotes a word for a POSIX shell when needed.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The one-line command that does the same as the console did.
pub fn command_line(op: &str, repo: &str, image: &str, disks: &[PathBuf], parts: &[u32]) -> String {
    let mut w: Vec<String> = vec![
        "lifeboat".into(),
        op.into(),
        "--repo".into(),
        shell_quote(repo),
        "--image".into(),
        shell_quote(image),
    ];
    for d in disks {
        w.push("--disk".into());
        w.push(shell_quote(&d.display().to_string()));
    }
    for p in parts {
        w.push("--part".into());
        w.push(p.to_string());
    }
    if op.starts_with("restore") {
        w.push("--yes".into());
    }
    w.join(" ")
}

/// The proposed name of a new image: `YYYY-MM-DD-HH-img` (local time), with `-2`, `-3`, …
/// when taken.
pub fn proposed_name(now: chrono::DateTime<chrono::Local>, taken: &[String]) -> String {
    let base = now.format("%Y-%m-%d-%H-img").to_string();
    if !taken.contains(&base) {
        return base;
    }
    (2..)
        .map(|i| format!("{base}-{i}"))
        .find(|n| !taken.contains(n))
        .unwrap_or(base)
}

/// What the last operation reported, for the result screen.
#[derive(Default)]
struct Outcome {
    bytes: u64,
    image_bytes: u64,
}

impl Console<'_> {
    /// Repository, then the mode menu until the operator quits.
    pub(super) fn main_loop(&mut self) -> Result<()> {
        println!("{}", t!("console.banner"));
        let mut chosen = loop {
            match self.choose_repo()? {
                Step::Next(c) => break c,
                Step::Back => {
                    if self.confirm(&t!("console.quit_q"), true)? != Some(false) {
                        return Ok(());
                    }
                }
            }
        };
        loop {
            println!();
            let items: Vec<String> = Mode::ALL.iter().map(|m| m.label()).collect();
            let prompt = t!("mode.prompt", repo = chosen.spec);
            let mode = match self.select(&prompt, &items, 0)? {
                Some(i) => Mode::ALL[i],
                None => Mode::Quit,
            };
            let r = match mode {
                Mode::SaveDisks => self.save(&chosen, false),
                Mode::SaveParts => self.save(&chosen, true),
                Mode::RestoreDisks => self.restore(&chosen, false),
                Mode::RestoreParts => self.restore(&chosen, true),
                Mode::Check => self.check(&chosen),
                Mode::List => self.list(&chosen).map(|_| ()),
                Mode::ChangeRepo => {
                    if let Step::Next(c) = self.choose_repo()? {
                        chosen = c;
                    }
                    Ok(())
                }
                Mode::Quit => {
                    println!("{}", t!("console.bye"));
                    return Ok(());
                }
            };
            match r {
                Ok(()) => {}
                Err(e) if e.is::<Cancelled>() => return Err(e),
                Err(e) if crate::exit::class_of(&e) == ErrorClass::Cancelled => return Err(e),
                Err(e) => self.warn(&t!(
                    "console.failed",
                    error = crate::output::error_message(&e)
                )),
            }
        }
    }

    /// The disks that hold a local repository (they can be neither saved nor restored to).
    fn repo_disks(&self, chosen: &Chosen) -> Vec<DiskRef> {
        chosen
            .local
            .as_deref()
            .and_then(|p| lifeboat_engine::disks_holding_path(p).ok())
            .unwrap_or_default()
    }

    /// Lists the images (Clonezilla images too); returns the complete ones.
    fn list(&self, chosen: &Chosen) -> Result<Vec<(String, Manifest, u64)>> {
        let entries = chosen.repo.list()?;
        let clonezilla = lifeboat_engine::list_clonezilla(&chosen.repo)?;
        println!();
        if entries.is_empty() && clonezilla.is_empty() {
            println!("{}", t!("list.empty", repo = chosen.repo.location()));
            return Ok(Vec::new());
        }
        println!(
            "{:<30} {:<12} {:<20} {:>10}  {}",
            t!("list.col_image"),
            t!("list.col_status"),
            t!("list.col_created"),
            t!("list.col_size"),
            t!("list.col_disks")
        );
        let mut complete = Vec::new();
        for e in entries {
            match e.status {
                ImageStatus::Complete(m) => {
                    println!(
                        "{:<30} {:<12} {:<20} {:>10}  {}",
                        e.name,
                        t!("list.complete"),
                        m.created,
                        human(e.bytes),
                        sources(&m)
                    );
                    complete.push((e.name, *m, e.bytes));
                }
                ImageStatus::Incomplete(why) => println!(
                    "{:<30} {:<12} {:<20} {:>10}  {why}",
                    e.name,
                    t!("list.incomplete"),
                    "-",
                    human(e.bytes)
                ),
            }
        }
        // Clonezilla images are described as their import would be (their tables and
        // partition images read now), so that they are restored like any other.
        for c in clonezilla {
            let m = match &c.error {
                Some(why) => Err(why.clone()),
                None => lifeboat_engine::clonezilla_manifest(&chosen.repo, &c.name)
                    .map_err(|e| crate::output::error_message(&anyhow::Error::from(e))),
            };
            match m {
                Ok(m) => {
                    println!(
                        "{:<30} {:<12} {:<20} {:>10}  {}",
                        c.name,
                        "clonezilla",
                        "-",
                        human(c.bytes),
                        sources(&m)
                    );
                    complete.push((c.name, m, c.bytes));
                }
                Err(why) => println!(
                    "{:<30} {:<12} {:<20} {:>10}  {why}",
                    c.name,
                    "clonezilla",
                    "-",
                    human(c.bytes)
                ),
            }
        }
        Ok(complete)
    }

    /// Step 4 for a restore or check: one of the complete images (of `kind`, if given).
    fn choose_image(
        &self,
        chosen: &Chosen,
        kind: Option<ImageKind>,
    ) -> Result<Step<(ImageName, Manifest)>> {
        let images: Vec<(String, Manifest, u64)> = self
            .list(chosen)?
            .into_iter()
            .filter(|(_, m, _)| kind.is_none_or(|k| m.kind == k))
            .collect();
        if images.is_empty() {
            self.warn(&t!("image.none", repo = chosen.repo.location()));
            return Ok(Step::Back);
        }
        let items: Vec<String> = images
            .iter()
            .map(|(n, m, b)| {
                t!(
                    "image.item",
                    name = n,
                    created = m.created,
                    size = human(*b),
                    disks = sources(m)
                )
                .into()
            })
            .collect();
        let Some(i) = self.select(&t!("image.prompt_choose"), &items, 0)? else {
            return Ok(Step::Back);
        };
        let (n, m, _) = images.into_iter().nth(i).expect("index from the menu");
        let name = ImageName::new(&n)?;
        // An encrypted image's disks are known only inside it: unlock it now.
        let m = if m.is_sealed() {
            lifeboat_engine::image_manifest(&chosen.repo, &name, &self.passphrase)?
        } else {
            m
        };
        Ok(Step::Next((name, m)))
    }

    /// Step 4 for a save: a new, valid, unused name.
    fn new_image_name(&self, chosen: &Chosen) -> Result<Step<ImageName>> {
        let taken: Vec<String> = chosen.repo.list()?.into_iter().map(|e| e.name).collect();
        let proposal = proposed_name(chosen::now(), &taken);
        let taken2 = taken.clone();
        let Some(name) =
            self.input(
                &t!("image.prompt_name"),
                &proposal,
                move |s: &str| match ImageName::new(s.trim()) {
                    Err(e) => Err(t!("image.invalid", error = e.to_string()).into()),
                    Ok(_) if taken2.iter().any(|n| n == s.trim()) => {
                        Err(t!("image.exists", name = s.trim()).into())
                    }
                    Ok(_) => Ok(()),
                },
            )?
        else {
            return Ok(Step::Back);
        };
        Ok(Step::Next(ImageName::new(name.trim())?))
    }

    /// Partition numbers of a disk (or image file), with what is on them.
    fn partitions_of(&self, path: &Path) -> Result<Vec<(u32, String)>> {
        Ok(lifeboat_engine::source_partitions(path)?
            .into_iter()
            .map(|p| {
                (
                    p.number,
                    t!(
                        "parts.item",
                        n = p.number,
                        size = human(p.size),
                        fs = p.filesystem.as_deref().unwrap_or("-"),
                        kind = p.type_name
                    )
                    .into(),
                )
            })
            .collect())
    }

    fn choose_parts(&self, parts: &[(u32, String)]) -> Result<Step<Vec<u32>>> {
        if parts.is_empty() {
            self.warn(&t!("parts.none"));
            return Ok(Step::Back);
        }
        loop {
            let items: Vec<String> = parts.iter().map(|p| p.1.clone()).collect();
            let Some(sel) =
                self.multi_select(&t!("parts.prompt"), &items, &vec![false; items.len()])?
            else {
                return Ok(Step::Back);
            };
            if sel.is_empty() {
                self.warn(&t!("parts.choose_one"));
                continue;
            }
            return Ok(Step::Next(sel.iter().map(|&i| parts[i].0).collect()));
        }
    }

    fn save(&self, chosen: &Chosen, parts_mode: bool) -> Result<()> {
        let Step::Next(name) = self.new_image_name(chosen)? else {
            return Ok(());
        };
        let repo_disks = self.repo_disks(chosen);
        let mut disks: Vec<PathBuf> = Vec::new();
        loop {
            let prompt = if disks.is_empty() {
                t!("disks.prompt_save")
            } else {
                t!("disks.prompt_save_more")
            };
            match self.choose_disk(&prompt, Purpose::Save, &repo_disks, &disks)? {
                Step::Next(p) => disks.push(p),
                Step::Back => {
                    if disks.is_empty() {
                        return Ok(());
                    }
                    break;
                }
            }
            if parts_mode || self.confirm(&t!("disks.add_another"), false)? != Some(true) {
                break;
            }
        }
        let mut parts = Vec::new();
        if parts_mode {
            let list = self.partitions_of(&disks[0])?;
            match self.choose_parts(&list)? {
                Step::Next(p) => parts = p,
                Step::Back => return Ok(()),
            }
        }
        // Encryption (default no); the passphrase as `savedisk --encrypt` takes it.
        let Some(encrypt) = self.confirm(&t!("save.encrypt"), false)? else {
            return Ok(());
        };
        let passphrase = if encrypt {
            match self.new_passphrase()? {
                Some(p) => Some(p),
                None => return Ok(()),
            }
        } else {
            None
        };
        // Summary.
        println!();
        println!("{}", t!("summary.title"));
        for d in &disks {
            println!("  {}", t!("summary.read", disk = describe_path(d)));
        }
        if !parts.is_empty() {
            println!("  {}", t!("summary.parts", parts = join(&parts)));
        }
        if passphrase.is_some() {
            println!("  {}", t!("summary.encrypted"));
        }
        let free = chosen
            .local
            .as_deref()
            .and_then(super::mounts::space)
            .map(|(f, _)| human(f))
            .unwrap_or_else(|| "?".into());
        println!(
            "  {}",
            t!(
                "summary.write_image",
                image = name,
                repo = chosen.repo.location(),
                free = free
            )
        );
        if self.confirm(&t!("summary.start_save"), true)? != Some(true) {
            println!("{}", t!("summary.nothing_written"));
            return Ok(());
        }
        let op = if parts.is_empty() {
            "savedisk"
        } else {
            "saveparts"
        };
        let mut opts = SaveOptions::new(name.clone(), disks.clone());
        opts.parts = parts.clone();
        opts.encrypt = passphrase;
        let mut command = command_line(op, &chosen.spec, name.as_str(), &disks, &parts);
        if encrypt {
            command.push_str(" --encrypt");
        }
        let started = Instant::now();
        let outcome = Mutex::new(Outcome::default());
        let sink = |e: Event| record(self.ui, &outcome, e);
        let r = lifeboat_engine::save(&chosen.repo, &opts, &sink, self.cancel);
        self.ui.finish_progress();
        match r {
            Ok(m) => {
                let o = outcome.into_inner().unwrap_or_else(|p| p.into_inner());
                let image_bytes: u64 = m.files.iter().map(|f| f.size).sum();
                self.result(
                    &t!("result.saved", image = name, repo = chosen.repo.location()),
                    started,
                    o.bytes.max(m.totals.stored_bytes),
                    Some(image_bytes),
                    &command,
                );
                Ok(())
            }
            Err(EngineError::Cancelled(_)) => {
                eprintln!();
                eprintln!(
                    "{}",
                    t!(
                        "result.save_cancelled",
                        image = name,
                        repo = shell_quote(&chosen.spec)
                    )
                );
                Err(EngineError::Cancelled(Aftermath::Unstated).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The passphrase of a new encrypted image, as `savedisk --encrypt` gets it:
    /// `LIFEBOAT_PASSPHRASE` when set, else asked twice with hidden input (an empty one is
    /// refused and asked again). `None`: the operator chose to go back.
    fn new_passphrase(&self) -> Result<Option<lifeboat_engine::Passphrase>> {
        loop {
            self.check_cancel()?;
            match crate::secret::get(None, true) {
                Ok(p) => {
                    self.check_cancel()?;
                    return Ok(Some(p));
                }
                Err(e) => {
                    self.check_cancel()?;
                    self.warn(&e);
                    if std::env::var_os(crate::secret::ENV).is_some()
                        || self.confirm(&t!("save.passphrase_retry"), true)? != Some(true)
                    {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn restore(&self, chosen: &Chosen, parts_mode: bool) -> Result<()> {
        let kind = (!parts_mode).then_some(ImageKind::Disks);
        let Step::Next((name, manifest)) = self.choose_image(chosen, kind)? else {
            return Ok(());
        };
        let repo_disks = self.repo_disks(chosen);
        let mut targets: Vec<PathBuf> = Vec::new();
        for d in &manifest.disks {
            let prompt = t!(
                "disks.prompt_restore",
                index = d.index,
                source = d.source,
                size = human(d.size)
            );
            let min_size = if parts_mode { 0 } else { d.size };
            match self.choose_disk(
                &prompt,
                Purpose::Restore { min_size },
                &repo_disks,
                &targets,
            )? {
                Step::Next(p) => targets.push(p),
                Step::Back => return Ok(()),
            }
        }
        let mut parts = Vec::new();
        if parts_mode {
            let list: Vec<(u32, String)> = manifest
                .disks
                .first()
                .map(|d| {
                    d.table
                        .partitions
                        .iter()
                        .filter(|p| p.saved)
                        .map(|p| {
                            (
                                p.number,
                                t!(
                                    "parts.item",
                                    n = p.number,
                                    size = human(p.size),
                                    fs = p.filesystem,
                                    kind = p.type_name
                                )
                                .into(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            match self.choose_parts(&list)? {
                Step::Next(p) => parts = p,
                Step::Back => return Ok(()),
            }
        }
        let mut opts = RestoreOptions::new(name.clone(), targets.clone());
        opts.parts = parts.clone();
        opts.passphrase = self.passphrase.clone();
        // Every safety check runs here, before the questions; targets are held exclusively.
        let plan = lifeboat_engine::plan_restore(&chosen.repo, &opts)?;
        println!();
        println!("{}", t!("summary.title"));
        println!(
            "  {}",
            t!(
                "summary.image",
                image = name,
                created = manifest.created,
                host = manifest.host,
                disks = sources(&manifest)
            )
        );
        for t in plan.targets() {
            let what = if parts.is_empty() {
                t!("summary.whole_disk").to_string()
            } else {
                t!("summary.partitions", parts = join(&parts)).to_string()
            };
            println!(
                "  {}",
                t!(
                    "summary.overwrite",
                    disk = describe(t.disk.path(), t.disk.size(), &t.disk.identity()),
                    what = what,
                    index = t.source.index,
                    source = t.source.source
                )
            );
        }
        for t in plan.targets() {
            for l in crate::plan_text::lines(t.plan()) {
                println!("  {l}");
            }
        }
        println!("  {}", t!("summary.lost"));
        let yes = confirm::ask_restore(&plan, &t!("summary.confirm1"), &mut |q| {
            Ok(self.confirm(q, false)? == Some(true))
        })?;
        if !yes {
            println!("{}", t!("summary.nothing_written"));
            return Ok(());
        }
        let op = if parts.is_empty() {
            "restoredisk"
        } else {
            "restoreparts"
        };
        let started = Instant::now();
        let outcome = Mutex::new(Outcome::default());
        let sink = |e: Event| record(self.ui, &outcome, e);
        let r = plan.execute(&sink, self.cancel);
        self.ui.finish_progress();
        match r {
            Ok(rep) => {
                self.result(
                    &t!(
                        "result.restored",
                        image = name,
                        disks = join_paths(&targets)
                    ),
                    started,
                    rep.bytes_written,
                    None,
                    &command_line(op, &chosen.spec, name.as_str(), &targets, &parts),
                );
                Ok(())
            }
            Err(EngineError::Cancelled(_)) => {
                eprintln!();
                eprintln!(
                    "{}",
                    t!("result.restore_cancelled", disks = join_paths(&targets))
                );
                Err(EngineError::Cancelled(Aftermath::Unstated).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn check(&self, chosen: &Chosen) -> Result<()> {
        let Step::Next((name, _)) = self.choose_image(chosen, None)? else {
            return Ok(());
        };
        let started = Instant::now();
        let sink = |e| self.ui.event(e);
        let checked = if lifeboat_engine::is_clonezilla(&chosen.repo, name.as_str()) {
            lifeboat_engine::clonezilla_check(&chosen.repo, name.as_str(), &sink, self.cancel).map(
                |r| {
                    let text = t!(
                        "cmd.cz_check_ok",
                        image = name,
                        parts = r.parts,
                        blocks = r.blocks,
                        data = human(r.data_bytes),
                        files = r.files
                    );
                    (text.to_string(), r.data_bytes)
                },
            )
        } else {
            let opts = lifeboat_engine::CheckOptions {
                threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
                passphrase: self.passphrase.clone(),
                digest: None,
            };
            lifeboat_engine::check(&chosen.repo, &name, &opts, &sink, self.cancel).map(|r| {
                let text = t!(
                    "result.checked",
                    image = name,
                    chunks = r.chunks,
                    files = r.files
                );
                (text.to_string(), r.data_bytes)
            })
        };
        self.ui.finish_progress();
        let (text, data_bytes) = checked?;
        self.result(
            &text,
            started,
            data_bytes,
            None,
            &format!(
                "lifeboat check --repo {} --image {}",
                shell_quote(&chosen.spec),
                shell_quote(name.as_str())
            ),
        );
        Ok(())
    }

    /// Step 7: the result screen.
    fn result(
        &self,
        what: &str,
        started: Instant,
        bytes: u64,
        image_bytes: Option<u64>,
        command: &str,
    ) {
        let elapsed = started.elapsed().as_millis() as u64;
        println!();
        println!("{}", t!("result.title"));
        println!("  {what}");
        println!("  {}", t!("result.elapsed", time = human_duration(elapsed)));
        println!(
            "  {}",
            t!("result.bytes", bytes = human(bytes), exact = bytes)
        );
        if let Some(b) = image_bytes {
            println!("  {}", t!("result.image_bytes", bytes = human(b)));
        }
        println!("  {}", t!("result.command"));
        println!("    {command}");
    }
}

/// Forwards an event to the display and remembers the figures of the final `done`.
fn record(ui: &Ui, outcome: &Mutex<Outcome>, e: Event) {
    if let Event::Done {
        operation,
        bytes_done,
        image_bytes,
        ..
    } = &e
    {
        if operation != "verify" {
            let mut o = outcome.lock().unwrap_or_else(|p| p.into_inner());
            o.bytes = *bytes_done;
            o.image_bytes = *image_bytes;
        }
        tracing::debug!(op = %operation_name(operation), "done");
    }
    ui.event(e);
}

fn join(parts: &[u32]) -> String {
    parts
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_paths(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// "sdb (1.0 GiB), sdc (2.0 GiB)" of an image's source disks.
fn sources(m: &Manifest) -> String {
    m.disks
        .iter()
        .map(|d| format!("{} ({})", d.source, human(d.size)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A disk in words: path, size, model, serial.
fn describe(path: &Path, size: u64, id: &lifeboat_engine::DiskIdentity) -> String {
    t!(
        "summary.disk",
        path = path.display(),
        size = human(size),
        model = id.model.as_deref().unwrap_or("-"),
        serial = id.serial.as_deref().or(id.wwn.as_deref()).unwrap_or("-")
    )
    .into()
}

/// A source disk in words, opened as a save opens it; just the path when it cannot be.
fn describe_path(p: &Path) -> String {
    match lifeboat_engine::describe_source(p) {
        Ok(s) => describe(&s.path, s.size, &s.identity),
        Err(_) => p.display().to_string(),
    }
}

mod chosen {
    /// Now, in local time.
    pub fn now() -> chrono::DateTime<chrono::Local> {
        chrono::Local::now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_and_commands() {
        let t = chrono::Local
            .with_ymd_and_hms(2026, 11, 26, 3, 5, 0)
            .unwrap();
        assert_eq!(proposed_name(t, &[]), "2026-11-26-03-img");
        let taken = vec![
            "2026-11-26-03-img".to_string(),
            "2026-11-26-03-img-2".into(),
        ];
        assert_eq!(proposed_name(t, &taken), "2026-11-26-03-img-3");
        assert!(ImageName::new(&proposed_name(t, &taken)).is_ok());
        assert_eq!(shell_quote("/mnt/my disk"), "'/mnt/my disk'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(
            command_line(
                "restoreparts",
                "/mnt/usb",
                "a",
                &[PathBuf::from("/dev/sdc")],
                &[2, 3]
            ),
            "lifeboat restoreparts --repo /mnt/usb --image a --disk /dev/sdc --part 2 --part 3 --yes"
        );
    }
}

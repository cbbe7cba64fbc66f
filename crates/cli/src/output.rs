//! Everything the CLI prints: progress bars on a terminal (total and per partition), NDJSON
//! events with `--json` (see `docs/EVENTS.md`), results and errors, the `tracing` log
//! (`-v`, `-q`, `--log-file`) and the `lifeboat disks` listing.

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lifeboat_engine::{
    Aftermath, ContainerError, DiskInfo, DiskKind, EngineError, ErrorClass, Event, Mismatch,
    Multipath, Refusal, RepoError,
};
use rust_i18n::t;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Human-readable binary size.
pub fn human(n: u64) -> String {
    const U: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

/// Human-readable duration (`42.0 s`, `3 min 05 s`, `1 h 02 min`).
pub fn human_duration(ms: u64) -> String {
    let s = ms / 1000;
    if s < 60 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if s < 3600 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    }
}

/// The translated name of an engine operation (`savedisk`, `verify`, …).
pub fn operation_name(op: &str) -> String {
    match op {
        "savedisk" => t!("op.savedisk").into(),
        "saveparts" => t!("op.saveparts").into(),
        "restoredisk" => t!("op.restoredisk").into(),
        "restoreparts" => t!("op.restoreparts").into(),
        "verify" => t!("op.verify").into(),
        "check" => t!("op.check").into(),
        other => other.to_string(),
    }
}

/// Log target of records the operator has already seen on the terminal (warnings, errors,
/// results): they go to `--log-file` but not to stderr a second time.
pub const SHOWN: &str = "lifeboat::shown";

/// Text for a terminal. Image names, labels, disk models, host names and reasons come from
/// repositories and disks, which anyone who can write to them controls: their control
/// characters (escape sequences that move the cursor, rewrite lines or set the window title),
/// C1 controls and bidirectional overrides are shown escaped (`\u{1b}`); newlines and tabs of
/// lifeboat's own texts stay.
pub fn term_safe(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Progress bars of the operation running now.
struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    part: Option<ProgressBar>,
    /// Estimated `bytes_done` when the current partition started.
    part_base: u64,
    /// `bytes_done` of the last `progress` event.
    last_done: u64,
    /// Bytes of partitions finished since the last `progress` event (progress events are
    /// throttled, so the last one may lag behind a partition start).
    since_progress: u64,
}

/// Output mode and the current progress bars.
pub struct Ui {
    json: bool,
    quiet: bool,
    bars: Mutex<Option<Bars>>,
    tty: bool,
}

impl Ui {
    /// `json`: NDJSON events on stdout; `quiet`: no progress and no per-step lines.
    pub fn new(json: bool, quiet: bool) -> Self {
        Ui {
            json,
            quiet,
            bars: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }

    /// True with `--json`.
    pub fn json(&self) -> bool {
        self.json
    }

    pub fn print_json(&self, v: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    /// Prints a line above the bars (or on stderr when there are none).
    fn line(&self, bars: &Option<Bars>, msg: String) {
        let msg = term_safe(&msg).into_owned();
        match bars {
            Some(b) => {
                let _ = b.multi.println(msg);
            }
            None => eprintln!("{msg}"),
        }
    }

    /// Handles an engine event.
    pub fn event(&self, e: Event) {
        match &e {
            Event::Progress { .. } => tracing::trace!(event = ?e),
            Event::Warning { message } => tracing::warn!(target: SHOWN, "{message}"),
            _ => tracing::info!(event = ?e),
        }
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string(&e).expect("events serialise")
            );
            let _ = out.flush();
            return;
        }
        let mut bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Start {
                operation,
                image,
                bytes_total,
                ..
            } => {
                if let Some(b) = bars.take() {
                    b.total.finish_and_clear();
                    if let Some(p) = b.part {
                        p.finish_and_clear();
                    }
                }
                let verb = operation_name(&operation);
                if self.quiet {
                    return;
                }
                if self.tty {
                    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                    let total = multi.add(ProgressBar::new(bytes_total));
                    total.set_style(
                        ProgressStyle::with_template(
                            "{msg:28!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                        )
                        .expect("template is valid")
                        .progress_chars("=> "),
                    );
                    total.set_message(format!("{verb} {image}"));
                    *bars = Some(Bars {
                        multi,
                        total,
                        part: None,
                        part_base: 0,
                        last_done: 0,
                        since_progress: 0,
                    });
                } else {
                    eprintln!(
                        "{}",
                        t!(
                            "progress.start",
                            op = verb,
                            image = image,
                            size = human(bytes_total)
                        )
                    );
                }
            }
            Event::PartitionStart {
                disk,
                partition,
                filesystem,
                mode,
                bytes,
            } => {
                if self.quiet {
                    return;
                }
                let mode = if mode == "raw" {
                    t!("progress.mode_raw")
                } else {
                    t!("progress.mode_used")
                };
                let what = if partition == 0 {
                    t!("progress.whole_disk", disk = disk).to_string()
                } else {
                    t!("progress.partition", disk = disk, part = partition).to_string()
                };
                match bars.as_mut() {
                    Some(b) => {
                        if let Some(p) = b.part.take() {
                            p.finish_and_clear();
                        }
                        let p = b.multi.add(ProgressBar::new(bytes));
                        p.set_style(
                            ProgressStyle::with_template(
                                "  {msg:34!} [{bar:30}] {bytes}/{total_bytes}",
                            )
                            .expect("template is valid")
                            .progress_chars("=> "),
                        );
                        p.set_message(format!("{what} {filesystem} {mode}"));
                        b.part_base = b.last_done + b.since_progress;
                        b.part = Some(p);
                    }
                    None => eprintln!("{what}: {filesystem}, {mode}, {}", human(bytes)),
                }
            }
            Event::Progress {
                bytes_done,
                bytes_total,
                ..
            } => {
                if let Some(b) = bars.as_mut() {
                    b.total.set_length(bytes_total);
                    b.total.set_position(bytes_done);
                    b.last_done = bytes_done;
                    b.since_progress = 0;
                    if let Some(p) = &b.part {
                        let n = bytes_done.saturating_sub(b.part_base);
                        p.set_position(n.min(p.length().unwrap_or(0)));
                    }
                }
            }
            Event::PartitionDone { bytes, .. } => {
                if let Some(b) = bars.as_mut() {
                    b.since_progress += bytes;
                    if let Some(p) = b.part.take() {
                        p.set_length(bytes.max(1));
                        p.set_position(bytes);
                        p.finish_and_clear();
                    }
                }
            }
            Event::Warning { message } => {
                self.line(&bars, t!("progress.warning", message = message).into())
            }
            Event::Plan { dry_run, disks, .. } => {
                // A restore's own plan was shown with its confirmation.
                if dry_run {
                    let mut out = std::io::stdout().lock();
                    for d in &disks {
                        for l in crate::plan_text::lines(d) {
                            let _ = writeln!(out, "{}", term_safe(&l));
                        }
                    }
                    let _ = writeln!(out, "{}", t!("plan.dry_run_done"));
                }
            }
            Event::FsGrow {
                partition,
                tool,
                ok,
                ..
            } => {
                if !self.quiet {
                    let key = if ok { "plan.grew" } else { "plan.grow_failed" };
                    self.line(&bars, t!(key, n = partition, tool = tool).into())
                }
            }
            Event::ReadPlan {
                mode,
                read_bytes,
                image_bytes,
                spool_memory,
                spool_dir_free,
                ..
            } => {
                // Said only when a spool is in use (without a pre-check there is none; a local
                // repository has none unless asked for).
                if !self.quiet && spool_memory.saturating_add(spool_dir_free) > 0 {
                    let key = if mode == "once" {
                        "progress.read_once"
                    } else {
                        "progress.read_spooled"
                    };
                    self.line(
                        &bars,
                        t!(
                            key,
                            bytes = human(read_bytes),
                            again = human(read_bytes.saturating_sub(image_bytes))
                        )
                        .into(),
                    )
                }
            }
            Event::Error { message, .. } => {
                self.line(&bars, t!("error.prefix", message = message).into())
            }
            Event::Done {
                operation,
                bytes_done,
                elapsed_ms,
                ..
            } => {
                if let Some(b) = bars.take() {
                    if let Some(p) = b.part {
                        p.finish_and_clear();
                    }
                    b.total.finish_and_clear();
                }
                if self.quiet {
                    return;
                }
                let secs = elapsed_ms as f64 / 1000.0;
                let rate = if secs > 0.0 {
                    human((bytes_done as f64 / secs) as u64)
                } else {
                    "-".into()
                };
                eprintln!(
                    "{}",
                    t!(
                        "progress.done",
                        op = operation_name(&operation),
                        bytes = human(bytes_done),
                        time = human_duration(elapsed_ms),
                        rate = rate
                    )
                );
            }
        }
    }

    /// Removes progress bars left over.
    pub fn finish_progress(&self) {
        if let Some(b) = self.bars.lock().unwrap_or_else(|p| p.into_inner()).take() {
            if let Some(p) = b.part {
                p.finish_and_clear();
            }
            b.total.finish_and_clear();
        }
    }

    /// A result line.
    pub fn say(&self, msg: &str) {
        tracing::info!(target: SHOWN, "{msg}");
        if self.json {
            self.print_json(&serde_json::json!({"event": "result", "message": msg}));
        } else {
            println!("{msg}");
        }
    }

    /// An intermediate step worth telling (`note` event with `--json`).
    pub fn note(&self, msg: &str) {
        tracing::info!(target: SHOWN, "{msg}");
        if self.json {
            self.print_json(&serde_json::json!({"event": "note", "message": msg}));
        } else if !self.quiet {
            println!("{msg}");
        }
    }

    /// The final error, of class `class` (the `kind` of [`Event::Error`]).
    pub fn error(&self, e: &anyhow::Error, class: ErrorClass) {
        self.finish_progress();
        let kind = class.as_str();
        let msg = error_message(e);
        tracing::error!(target: SHOWN, kind, "{msg}");
        if self.json {
            self.event(Event::Error {
                kind: kind.to_string(),
                message: msg,
            });
        } else {
            eprintln!("{}", t!("error.prefix", message = msg));
        }
    }
}

/// The error and its causes joined with ": " (no error repeats its source in its own
/// message), then what the operator can do: the advice the chain carries, and the hint for a
/// repository error in the current language.
pub fn error_message(e: &anyhow::Error) -> String {
    match sealed_error(e) {
        Some(ContainerError::WrongPassphrase) => return t!("error.wrong_passphrase").into(),
        Some(ContainerError::Encrypted) => return t!("error.encrypted").into(),
        _ => {}
    }
    let mut msg = match e.downcast_ref::<EngineError>() {
        Some(EngineError::Cancelled(a)) => cancelled(*a),
        Some(EngineError::Refused(r)) => t!("error.refused", reason = refusal(r)).into(),
        Some(EngineError::Mismatch(m)) => mismatch(m),
        Some(EngineError::AfterWrite { targets, .. }) => {
            t!("error.after_write", targets = targets.join(", ")).into()
        }
        _ => repo_error(e)
            .and_then(repo_message)
            .unwrap_or_else(|| e.to_string()),
    };
    for cause in e.chain().skip(1) {
        msg.push_str(": ");
        msg.push_str(&cause.to_string());
    }
    let advice: Vec<String> = lifeboat_engine::chain_advice(e.as_ref())
        .iter()
        .map(advice)
        .collect();
    if !advice.is_empty() {
        msg.push_str("; ");
        msg.push_str(&advice.join("; "));
    }
    if let Some(hint) = repo_hint(e) {
        msg.push_str(&hint);
    }
    msg
}

/// The container error behind a failure to open an encrypted image, if that is what `e` is.
fn sealed_error(e: &anyhow::Error) -> Option<&ContainerError> {
    fn of_repo(r: &RepoError) -> Option<&ContainerError> {
        match r {
            RepoError::Container(c) => Some(c),
            _ => None,
        }
    }
    e.chain().find_map(|c| {
        if let Some(x) = c.downcast_ref::<ContainerError>() {
            Some(x)
        } else if let Some(r) = c.downcast_ref::<RepoError>() {
            of_repo(r)
        } else {
            match c.downcast_ref::<EngineError>() {
                Some(EngineError::Repo(r)) => of_repo(r),
                Some(EngineError::Image { source, .. }) => Some(source),
                _ => None,
            }
        }
    })
}

/// "cancelled" and what the cancellation left behind, in the current language.
fn cancelled(a: Aftermath) -> String {
    match a {
        Aftermath::Unstated => t!("error.cancelled"),
        Aftermath::NothingWritten => t!("error.cancelled_nothing_written"),
        Aftermath::TargetInconsistent => t!("error.cancelled_target_inconsistent"),
        Aftermath::ImageIncomplete => t!("error.cancelled_image_incomplete"),
        Aftermath::StreamCutOff => t!("error.cancelled_stream_cut_off"),
    }
    .into()
}

/// A safety check's refusal and what to do about it, in the current language.
fn refusal(r: &Refusal) -> String {
    match r {
        Refusal::SourceMounted { disk, uses } => t!(
            "error.refused_source_mounted",
            disk = disk.display(),
            uses = uses.join("; ")
        ),
        Refusal::TargetInUse { disk, uses } => t!(
            "error.refused_target_in_use",
            disk = disk.display(),
            uses = uses.join("; ")
        ),
        Refusal::MultipathPath { disk, map, wwid } => t!(
            "error.refused_multipath_path",
            disk = disk.display(),
            map = map.display(),
            wwid = wwid
        ),
        Refusal::HoldsRepository { disk, repo } => t!(
            "error.refused_holds_repository",
            disk = disk.display(),
            repo = repo
        ),
        Refusal::HoldsStream { disk, file } => t!(
            "error.refused_holds_stream",
            disk = disk.display(),
            file = file.display()
        ),
        Refusal::ImageFile { disk } => t!("error.refused_image_file", disk = disk.display()),
        Refusal::StreamFile { disk } => t!("error.refused_stream_file", disk = disk.display()),
        Refusal::GivenTwice { disk } => t!("error.refused_given_twice", disk = disk.display()),
        Refusal::SpoolOnTarget { disk, dir } => t!(
            "error.refused_spool_on_target",
            disk = disk.display(),
            dir = dir.display()
        ),
        Refusal::SpoolNotDir { dir } => t!("error.refused_spool_not_dir", dir = dir.display()),
        Refusal::SectorSize {
            disk,
            target,
            image,
        } => t!(
            "error.refused_sector_size",
            disk = disk.display(),
            target = target,
            image = image
        ),
        Refusal::TooSmall { disk, size, needed } => t!(
            "error.refused_too_small",
            disk = disk.display(),
            size = size,
            needed = needed
        ),
        Refusal::PartitionDoesNotFit {
            disk,
            part,
            end,
            usable,
            shortfall,
            lvm_pv,
            pv_end,
        } => {
            let base = t!(
                "error.refused_does_not_fit",
                disk = disk.display(),
                part = part,
                end = end,
                usable = usable,
                shortfall = shortfall,
                human = human(*shortfall)
            );
            match (lvm_pv, pv_end) {
                (true, Some(e)) => format!(
                    "{base}{}",
                    t!("error.refused_pv_shrink", part = part, pv_end = e)
                )
                .into(),
                (true, None) => {
                    format!("{base}{}", t!("error.refused_pv_unreadable", part = part)).into()
                }
                _ => base,
            }
        }
        Refusal::OverlappingPartitions { disk, a, b } => t!(
            "error.refused_overlapping",
            disk = disk.display(),
            a = a,
            b = b
        ),
        Refusal::UnreadableTable { disk, reason } => t!(
            "error.refused_unreadable_table",
            disk = disk.display(),
            reason = reason
        ),
        Refusal::NoTable { disk, part } => {
            t!("error.refused_no_table", disk = disk.display(), part = part)
        }
        Refusal::NoPartition { disk, part, needed } => t!(
            "error.refused_no_partition",
            disk = disk.display(),
            part = part,
            needed = needed
        ),
        Refusal::PartitionTooSmall {
            disk,
            part,
            size,
            needed,
        } => t!(
            "error.refused_partition_too_small",
            disk = disk.display(),
            part = part,
            size = size,
            needed = needed
        ),
        Refusal::NotInImage { disk, part } => {
            t!(
                "error.refused_not_in_image",
                disk = disk.display(),
                part = part
            )
        }
        Refusal::NotSaved { disk, part } => {
            t!(
                "error.refused_not_saved",
                disk = disk.display(),
                part = part
            )
        }
        Refusal::NoRandomness { reason } => t!("error.refused_no_randomness", reason = reason),
        other => return other.to_string(),
    }
    .into()
}

/// How the image does not fit the request and what to do about it, in the current language.
fn mismatch(m: &Mismatch) -> String {
    match m {
        Mismatch::PartsImage { image: Some(image) } => {
            t!("error.mismatch_parts_image", image = image)
        }
        Mismatch::PartsImage { image: None } => t!("error.mismatch_parts_image_stream"),
        Mismatch::TargetCount {
            image: Some(image),
            disks,
            targets,
        } => t!(
            "error.mismatch_target_count",
            image = image,
            disks = disks,
            targets = targets
        ),
        Mismatch::TargetCount {
            image: None,
            disks,
            targets,
        } => t!(
            "error.mismatch_target_count_stream",
            disks = disks,
            targets = targets
        ),
        Mismatch::StreamWithoutDiskList { targets } => {
            t!("error.mismatch_stream_without_disk_list", targets = targets)
        }
        Mismatch::NoSource => t!("error.mismatch_no_source"),
        Mismatch::NoIndexDigests { image } => t!("error.mismatch_no_index_digests", image = image),
        Mismatch::DigestUnprovable { why } => match why {
            lifeboat_engine::DigestUnprovable::NoPrecheck => t!("error.digest_needs_precheck"),
            lifeboat_engine::DigestUnprovable::Stream => t!("error.digest_stream"),
            lifeboat_engine::DigestUnprovable::Clonezilla => t!("error.digest_clonezilla"),
        },
        other => return other.to_string(),
    }
    .into()
}

/// The repository error an error is, directly or as the engine's.
fn repo_error(e: &anyhow::Error) -> Option<&lifeboat_repo::RepoError> {
    match e.downcast_ref::<EngineError>() {
        Some(EngineError::Repo(r)) => Some(r),
        _ => e.downcast_ref::<lifeboat_repo::RepoError>(),
    }
}

/// A repository error's own message in the operator's language (`None`: its English
/// `Display` is all there is, e.g. a file name before an I/O error).
fn repo_message(r: &lifeboat_repo::RepoError) -> Option<String> {
    use lifeboat_repo::{IncompleteReason, RepoError};
    Some(
        match r {
            RepoError::InvalidName { name, reason } => {
                t!(
                    "error.repo_invalid_name",
                    name = format!("{name:?}"),
                    reason = reason
                )
            }
            RepoError::Exists { name, repo } => {
                t!("error.repo_exists", name = format!("{name:?}"), repo = repo)
            }
            RepoError::NotFound { name, repo } => {
                t!(
                    "error.repo_not_found",
                    name = format!("{name:?}"),
                    repo = repo
                )
            }
            RepoError::Incomplete { name, repo, reason } => t!(
                "error.repo_incomplete",
                name = format!("{name:?}"),
                repo = repo,
                reason = match reason {
                    IncompleteReason::Unfinished => t!("error.repo_unfinished").into_owned(),
                    other => other.to_string(),
                }
            ),
            RepoError::Foreign { name, repo, file } => t!(
                "error.repo_foreign",
                name = format!("{name:?}"),
                repo = repo,
                file = format!("{file:?}")
            ),
            RepoError::Leased { name, repo, lease } => t!(
                "error.repo_leased",
                name = format!("{name:?}"),
                repo = repo,
                lease = lease.to_string()
            ),
            RepoError::Changed { name, repo, what } => t!(
                "error.repo_changed",
                name = format!("{name:?}"),
                repo = repo,
                what = what
            ),
            RepoError::SplitSize { bytes, min } => {
                t!("error.repo_split_size", bytes = bytes, min = min)
            }
            RepoError::NotBuiltIn {
                spec,
                scheme,
                feature,
            } => t!(
                "error.repo_not_built_in",
                spec = format!("{spec:?}"),
                scheme = scheme,
                feature = feature
            ),
            _ => return None,
        }
        .into_owned(),
    )
}

/// One piece of advice in the operator's language.
fn advice(a: &lifeboat_engine::Advice) -> String {
    use lifeboat_engine::Advice;
    match a {
        Advice::CheckPathExists => t!("advice.check_path_exists"),
        Advice::CheckExistsAndRoot => t!("advice.check_exists_and_root"),
        Advice::DriverUnsupported => t!("advice.driver_unsupported"),
        Advice::DeviceFailing => t!("advice.device_failing"),
        Advice::CheckWritable => t!("advice.check_writable"),
        Advice::NotFlushed => t!("advice.not_flushed"),
        Advice::PartitionInUse { disk } => {
            t!("advice.partition_in_use", disk = disk.display().to_string())
        }
        Advice::SysMissing => t!("advice.sys_missing"),
        Advice::RepositorySpace => t!("advice.repository_space"),
        Advice::StreamIncomplete => t!("advice.stream_incomplete"),
        Advice::DiskReadable => t!("advice.disk_readable"),
        Advice::TargetWritable => t!("advice.target_writable"),
        other => return other.to_string(),
    }
    .into_owned()
}

/// What the operator can do about a repository error, in their language.
fn repo_hint(e: &anyhow::Error) -> Option<String> {
    use lifeboat_repo::{IncompleteReason, RepoError};
    let r = repo_error(e)?;
    Some(match r {
        RepoError::Exists { .. } => t!("error.hint_exists").into_owned(),
        RepoError::NotFound { repo, .. } => t!("error.hint_not_found", repo = repo).into_owned(),
        RepoError::Incomplete {
            reason: IncompleteReason::Unfinished,
            ..
        } => t!("error.hint_unfinished").into_owned(),
        RepoError::Foreign { .. } => t!("error.hint_foreign").into_owned(),
        RepoError::Leased { .. } => t!("error.hint_leased").into_owned(),
        RepoError::Changed { .. } => t!("error.hint_changed").into_owned(),
        _ => return None,
    })
}

/// Sets up the `tracing` log: on stderr at `warn` (`-v` info, `-vv` debug, `-vvv` trace,
/// `-q` errors only) for lifeboat's own crates, the libraries below them only from `-vv` on;
/// with `--log-file` also into that file (appended, at least at `info`, with timestamps).
/// `RUST_LOG` replaces the stderr filter.
pub fn init_logging(verbose: u8, quiet: bool, log_file: Option<&Path>) -> Result<()> {
    use tracing_subscriber::filter::{EnvFilter, LevelFilter};
    use tracing_subscriber::prelude::*;
    let level = if quiet {
        LevelFilter::ERROR
    } else {
        match verbose {
            0 => LevelFilter::WARN,
            1 => LevelFilter::INFO,
            2 => LevelFilter::DEBUG,
            _ => LevelFilter::TRACE,
        }
    };
    // Our crates' targets all start with `lifeboat`. The libraries under them (SMB, SSH,
    // HTTP clients) log their own view of failures that lifeboat reports itself, better
    // worded: they are heard from `-vv` on (or through RUST_LOG), and never below debug: at
    // trace they dump packets (disk data, authentication exchanges).
    let ours_and_theirs = |ours: LevelFilter| {
        let others = if verbose >= 2 {
            LevelFilter::DEBUG
        } else {
            LevelFilter::OFF
        };
        EnvFilter::default()
            .add_directive(others.into())
            .add_directive(
                format!("lifeboat={ours}")
                    .parse()
                    .expect("a valid directive"),
            )
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::builder().parse_lossy(v),
        _ => ours_and_theirs(level),
    };
    let stderr_filter =
        filter.add_directive(format!("{SHOWN}=off").parse().expect("a valid directive"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_filter(stderr_filter);
    let file = match log_file {
        Some(p) => {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(p)
                .with_context(|| t!("log.cannot_open", path = p.display()).to_string())?;
            // The log names disks, partitions and repositories: the owner's only, also when
            // appending to a file that was readable by others.
            if let Ok(md) = f.metadata() {
                if md.is_file() && md.permissions().mode() & 0o077 != 0 {
                    f.set_permissions(std::fs::Permissions::from_mode(0o600))
                        .with_context(|| t!("log.cannot_open", path = p.display()).to_string())?;
                }
            }
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(Mutex::new(f))
                    .with_ansi(false)
                    .with_filter(ours_and_theirs(std::cmp::max(level, LevelFilter::INFO))),
            )
        }
        None => None,
    };
    // A second initialisation (tests) is harmless: the first one stays.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    Ok(())
}

/// What a device stacked on a disk is, from `/sys/block/<name>/dm/uuid` and `md/level`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Holder {
    /// Kernel name (`dm-0`, `md127`).
    pub name: String,
    /// `multipath`, `lvm`, `crypt`, `raid`, `dm` or `other`.
    pub kind: String,
    /// The device-mapper name (`mpatha`, `vg-root`) or the RAID level.
    pub detail: Option<String>,
}

fn sys_attr(path: PathBuf) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Describes a holder device.
pub fn holder(name: &str) -> Holder {
    let base = Path::new("/sys/block").join(name);
    if name.starts_with("dm-") {
        let uuid = sys_attr(base.join("dm/uuid")).unwrap_or_default();
        let kind = if uuid.starts_with("mpath-") {
            "multipath"
        } else if uuid.starts_with("LVM-") {
            "lvm"
        } else if uuid.starts_with("CRYPT-") {
            "crypt"
        } else {
            "dm"
        };
        Holder {
            name: name.to_string(),
            kind: kind.into(),
            detail: sys_attr(base.join("dm/name")),
        }
    } else if name.starts_with("md") {
        Holder {
            name: name.to_string(),
            kind: "raid".into(),
            detail: sys_attr(base.join("md/level")),
        }
    } else {
        Holder {
            name: name.to_string(),
            kind: "other".into(),
            detail: None,
        }
    }
}

/// Translated description of a holder (`multipath mpatha (dm-0)`).
pub fn holder_text(h: &Holder) -> String {
    let kind = match h.kind.as_str() {
        "multipath" => t!("disks.kind_multipath"),
        "lvm" => t!("disks.kind_lvm"),
        "crypt" => t!("disks.kind_crypt"),
        "raid" => t!("disks.kind_raid"),
        _ => t!("disks.kind_dm"),
    };
    match &h.detail {
        Some(d) => format!("{kind} {d} ({})", h.name),
        None => format!("{kind} {}", h.name),
    }
}

/// The role of a dm/md device itself (`multipath` for `/dev/dm-0` over two paths).
pub fn own_role(d: &DiskInfo) -> Option<Holder> {
    if let Some(Multipath::Map { name, .. }) = &d.multipath {
        return Some(Holder {
            name: d.name.clone(),
            kind: "multipath".into(),
            detail: name.clone(),
        });
    }
    match d.kind {
        DiskKind::Dm | DiskKind::Md => Some(holder(&d.name)),
        _ => None,
    }
}

/// The multipath map a disk is a path of, if any (from the listing's sysfs reading).
pub fn multipath_of(d: &DiskInfo) -> Option<Holder> {
    match &d.multipath {
        Some(Multipath::Path { map, name, .. }) => Some(Holder {
            name: map.clone(),
            kind: "multipath".into(),
            detail: name.clone(),
        }),
        _ => None,
    }
}

/// The `multipath` object of `disks --json`: a map with its WWID and paths, or a path with
/// its map.
pub fn multipath_json(d: &DiskInfo) -> serde_json::Value {
    match &d.multipath {
        None => serde_json::Value::Null,
        Some(Multipath::Map { name, wwid, paths }) => serde_json::json!({
            "role": "map", "name": name, "wwid": wwid,
            "paths": paths.iter().map(|p| format!("/dev/{p}")).collect::<Vec<_>>(),
        }),
        Some(m @ Multipath::Path { map, name, wwid }) => serde_json::json!({
            "role": "path", "name": name, "wwid": wwid, "map": format!("/dev/{map}"),
            "use": m.map_device(),
        }),
    }
}

/// The filesystem signature found in a partition, or `-`.
pub fn fs_of(path: &Path, start: u64, size: u64) -> String {
    lifeboat_engine::filesystem_at(path, start, size).unwrap_or_else(|| "-".into())
}

/// What keeps a disk busy, in words, or empty: mounts, swap, stacked devices.
pub fn usage_words(d: &DiskInfo) -> Vec<String> {
    let mut usage: Vec<String> = d
        .mountpoints
        .iter()
        .map(|m| t!("disks.mounted_on", path = m.display()).into())
        .collect();
    if d.swap {
        usage.push(t!("disks.swap").into());
    }
    let map = multipath_of(d);
    for h in &d.holders {
        match &map {
            Some(m) if &m.name == h => {
                usage.push(t!("disks.multipath_member", dev = holder_text(m)).into())
            }
            _ => usage.push(t!("disks.held_by", dev = holder_text(&holder(h))).into()),
        }
    }
    for p in &d.partitions {
        for m in &p.mountpoints {
            usage.push(t!("disks.part_mounted_on", part = p.number, path = m.display()).into());
        }
        if p.swap {
            usage.push(t!("disks.part_swap", part = p.number).into());
        }
        for h in &p.holders {
            usage.push(
                t!(
                    "disks.part_held_by",
                    part = p.number,
                    dev = holder_text(&holder(h))
                )
                .into(),
            );
        }
    }
    usage
}

/// The identification column: serial, else WWN.
pub fn serial_or_wwn(d: &DiskInfo) -> String {
    d.serial
        .clone()
        .or_else(|| d.wwn.clone())
        .unwrap_or_else(|| "-".into())
}

/// Prints the table of disks (also used by the console, with a reason column).
pub fn print_disk_table(disks: &[DiskInfo], reasons: Option<&[Option<String>]>) {
    println!(
        "{:<4}{:<12} {:>10} {:<22} {:<20} {:<8} {}",
        "",
        t!("disks.col_disk"),
        t!("disks.col_size"),
        t!("disks.col_model"),
        t!("disks.col_serial"),
        t!("disks.col_tran"),
        t!("disks.col_usage")
    );
    for (i, d) in disks.iter().enumerate() {
        let mut usage = usage_words(d);
        if let Some(r) = own_role(d) {
            let slaves = d.slaves.join(",");
            usage.insert(
                0,
                t!("disks.is_stacked", dev = holder_text(&r), over = slaves).into(),
            );
        }
        if let Some(Multipath::Map { wwid, .. }) = &d.multipath {
            usage.insert(1, t!("disks.multipath_wwid", wwid = wwid).into());
        }
        if let Some(b) = &d.loop_backing_file {
            usage.push(t!("disks.backing_file", path = b.display()).into());
        }
        let marker = match reasons {
            Some(r) => {
                if r.get(i).is_some_and(|x| x.is_some()) {
                    "  x ".to_string()
                } else {
                    format!("{:>3} ", i + 1)
                }
            }
            None => String::new(),
        };
        println!(
            "{:<4}{:<12} {:>10} {:<22} {:<20} {:<8} {}",
            marker,
            d.name,
            human(d.size),
            truncate(d.model.as_deref().unwrap_or("-"), 22),
            truncate(&serial_or_wwn(d), 20),
            d.transport.as_deref().unwrap_or(d.kind.as_str()),
            usage.join("; ")
        );
        for p in &d.partitions {
            let mut u: Vec<String> = p
                .mountpoints
                .iter()
                .map(|m| t!("disks.mounted_on", path = m.display()).into())
                .collect();
            if p.swap {
                u.push(t!("disks.swap").into());
            }
            for h in &p.holders {
                u.push(t!("disks.held_by", dev = holder_text(&holder(h))).into());
            }
            println!(
                "{:<4}  {:<10} {:>10} {:<22} {}",
                "",
                p.name,
                human(p.size),
                fs_of(&d.path, p.start, p.size),
                u.join("; ")
            );
        }
        if let Some(Some(why)) = reasons.and_then(|r| r.get(i)) {
            println!("{:<4}  -> {}", "", t!("disks.not_selectable", why = why));
        }
    }
}

/// Shortens to `n` characters with an ellipsis.
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n.saturating_sub(1)).collect::<String>() + "…"
    }
}

/// `lifeboat disks`.
pub fn disks(ui: &Ui) -> Result<()> {
    let disks = lifeboat_engine::list_disks()?;
    if ui.json() {
        let v: Vec<serde_json::Value> = disks
            .iter()
            .map(|d| {
                let holders: Vec<Holder> = d.holders.iter().map(|h| holder(h)).collect();
                let mp = multipath_of(d);
                serde_json::json!({
                    "name": d.name, "path": d.path, "size": d.size,
                    "logical_sector_size": d.logical_sector_size,
                    "physical_sector_size": d.physical_sector_size,
                    "model": d.model, "vendor": d.vendor, "serial": d.serial, "wwn": d.wwn,
                    "transport": d.transport, "removable": d.removable, "read_only": d.read_only,
                    "rotational": d.rotational, "kind": d.kind.as_str(),
                    "role": own_role(d).map(|r| r.kind),
                    "dm_name": own_role(d).and_then(|r| r.detail),
                    "loop_backing_file": d.loop_backing_file, "holders": d.holders,
                    "holder_devices": holders,
                    "multipath_member_of": mp.map(|h| format!("/dev/{}", h.name)),
                    "multipath": multipath_json(d),
                    "selectable_for_restore": d.multipath.as_ref().is_none_or(|m| m.map_device().is_none()),
                    "slaves": d.slaves, "mountpoints": d.mountpoints, "swap": d.swap,
                    "busy": d.is_busy(),
                    "partitions": d.partitions.iter().map(|p| serde_json::json!({
                        "name": p.name, "number": p.number, "start": p.start, "size": p.size,
                        "holders": p.holders, "mountpoints": p.mountpoints, "swap": p.swap,
                        "filesystem": fs_of(&d.path, p.start, p.size),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
        return Ok(());
    }
    print_disk_table(&disks, None);
    let members: Vec<String> = disks
        .iter()
        .filter_map(|d| multipath_of(d).map(|h| (d, h)))
        .map(|(d, h)| t!("disks.use_multipath", disk = d.name, dev = holder_text(&h)).into())
        .collect();
    for m in members {
        println!("{m}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_once_then_the_advice() {
        let _lang = crate::i18n::LANG_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        crate::i18n::set(crate::i18n::Lang::En);
        let e = anyhow::Error::new(EngineError::SourceRead {
            disk: "/dev/sdb".into(),
            partition: Some(2),
            offset: 4096,
            source: std::io::Error::other("Input/output error"),
        });
        assert_eq!(
            error_message(&e),
            "reading /dev/sdb at byte 4096 (partition 2) failed: Input/output error"
        );
        let Err(e) = lifeboat_engine::open_source(Path::new("/nonexistent/lifeboat-disk")) else {
            panic!("a missing disk opened");
        };
        assert_eq!(
            error_message(&anyhow::Error::new(e).context("opening the source")),
            "opening the source: cannot examine /nonexistent/lifeboat-disk: No such file or \
             directory (os error 2); check that the path exists"
        );
    }

    #[test]
    fn advice_and_repository_errors_in_japanese() {
        let _lang = crate::i18n::LANG_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        crate::i18n::set(crate::i18n::Lang::Ja);
        let Err(e) = lifeboat_engine::open_source(Path::new("/nonexistent/lifeboat-disk")) else {
            panic!("a missing disk opened");
        };
        let ja = error_message(&anyhow::Error::new(e));
        let nf = error_message(&anyhow::Error::new(lifeboat_repo::RepoError::NotFound {
            name: "web01".into(),
            repo: "/srv/r".into(),
        }));
        crate::i18n::set(crate::i18n::Lang::En);
        assert!(ja.ends_with("; パスが存在するか確認してください"), "{ja}");
        assert_eq!(
            nf,
            "/srv/r にイメージ \"web01\" はありません (lifeboat list --repo /srv/r で中身を確認できます)"
        );
    }

    #[test]
    fn refusals_of_a_multipath_path_and_of_a_pv_that_cannot_shrink_name_what_to_do() {
        let _lang = crate::i18n::LANG_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mp = anyhow::Error::new(EngineError::Refused(Refusal::MultipathPath {
            disk: "/dev/sdc".into(),
            map: "/dev/mapper/mpatha".into(),
            wwid: "3600a0980".into(),
        }));
        let pv = anyhow::Error::new(EngineError::Refused(Refusal::PartitionDoesNotFit {
            disk: "/dev/sdb".into(),
            part: 2,
            end: 1000,
            usable: 800,
            shortfall: 100,
            lvm_pv: true,
            pv_end: Some(900),
        }));
        crate::i18n::set(crate::i18n::Lang::En);
        let (mp_en, pv_en) = (error_message(&mp), error_message(&pv));
        crate::i18n::set(crate::i18n::Lang::Ja);
        let (mp_ja, pv_ja) = (error_message(&mp), error_message(&pv));
        crate::i18n::set(crate::i18n::Lang::En);
        assert!(
            mp_en.contains("/dev/sdc: it is one path of the multipath device /dev/mapper/mpatha")
                && mp_en.contains("WWID 3600a0980")
                && mp_en.contains("Restore onto /dev/mapper/mpatha instead"),
            "{mp_en}"
        );
        assert!(
            mp_ja.contains("マルチパスデバイス /dev/mapper/mpatha")
                && mp_ja.contains("代わりに /dev/mapper/mpatha に復元"),
            "{mp_ja}"
        );
        assert!(
            pv_en.contains("partition 2 does not fit")
                && pv_en.contains("100 bytes")
                && pv_en.contains("which end at byte 900"),
            "{pv_en}"
        );
        assert!(
            pv_ja.contains("LVM 物理ボリューム") && pv_ja.contains("900 バイト目"),
            "{pv_ja}"
        );
    }
}

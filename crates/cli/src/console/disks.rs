//! Step 5: which disk(s). The table of `lifeboat disks`, with the disks that cannot be used
//! shown and marked with the reason; only the others can be chosen. A disk image file or a
//! device not listed can be typed in.

use super::{Console, Step};
use crate::output::{human, multipath_of, print_disk_table, serial_or_wwn, usage_words};
use anyhow::Result;
use lifeboat_engine::{DiskInfo, DiskRef};
use rust_i18n::t;
use std::path::PathBuf;

/// What the chosen disk is for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Purpose {
    /// It will be read.
    Save,
    /// It will be overwritten; it must hold at least this many bytes (0: no minimum).
    Restore {
        /// Smallest usable size.
        min_size: u64,
    },
}

/// Why a listed disk cannot be chosen, or `None`.
pub(crate) fn reason(
    d: &DiskInfo,
    purpose: Purpose,
    repo_disks: &[DiskRef],
    already: &[PathBuf],
) -> Option<String> {
    if already.contains(&d.path) {
        return Some(t!("disks.reason_already").into());
    }
    if let Some(h) = multipath_of(d) {
        return Some(t!("disks.reason_multipath", dev = format!("/dev/{}", h.name)).into());
    }
    if repo_disks.iter().any(|r| r.dev == d.dev) {
        return Some(t!("disks.reason_repo").into());
    }
    match purpose {
        Purpose::Save => {
            let mounted =
                !d.mountpoints.is_empty() || d.partitions.iter().any(|p| !p.mountpoints.is_empty());
            if mounted {
                return Some(t!("disks.reason_mounted", what = usage_words(d).join("; ")).into());
            }
        }
        Purpose::Restore { min_size } => {
            if d.is_busy() {
                return Some(t!("disks.reason_busy", what = usage_words(d).join("; ")).into());
            }
            if d.read_only {
                return Some(t!("disks.reason_read_only").into());
            }
            if d.size < min_size {
                return Some(
                    t!(
                        "disks.reason_small",
                        size = human(d.size),
                        need = human(min_size)
                    )
                    .into(),
                );
            }
        }
    }
    None
}

impl Console<'_> {
    /// Shows the disk table and asks for one disk.
    pub(crate) fn choose_disk(
        &self,
        prompt: &str,
        purpose: Purpose,
        repo_disks: &[DiskRef],
        already: &[PathBuf],
    ) -> Result<Step<PathBuf>> {
        let disks = match lifeboat_engine::list_disks() {
            Ok(d) => d,
            Err(e) => {
                self.warn(&t!(
                    "disks.list_failed",
                    error = lifeboat_engine::chain_text(&e)
                ));
                Vec::new()
            }
        };
        let reasons: Vec<Option<String>> = disks
            .iter()
            .map(|d| reason(d, purpose, repo_disks, already))
            .collect();
        println!();
        println!("{}", t!("disks.title"));
        print_disk_table(&disks, Some(&reasons));
        let mut choices: Vec<&DiskInfo> = Vec::new();
        let mut items: Vec<String> = Vec::new();
        for (d, r) in disks.iter().zip(&reasons) {
            if r.is_none() {
                choices.push(d);
                items.push(format!(
                    "{}  {}  {}  {}",
                    d.path.display(),
                    human(d.size),
                    d.model.as_deref().unwrap_or("-"),
                    serial_or_wwn(d)
                ));
            }
        }
        items.push(t!("disks.type_path").into());
        let Some(i) = self.select(prompt, &items, 0)? else {
            return Ok(Step::Back);
        };
        if let Some(d) = choices.get(i) {
            return Ok(Step::Next(d.path.clone()));
        }
        let Some(p) = self.input(&t!("disks.prompt_path"), "", |s: &str| {
            let p = std::path::Path::new(s.trim());
            if s.trim().is_empty() {
                Err(t!("repo.empty_path").into())
            } else if !p.exists() {
                Err(t!("disks.no_such_path", path = p.display()).into())
            } else {
                Ok(())
            }
        })?
        else {
            return Ok(Step::Back);
        };
        let p = PathBuf::from(p.trim());
        if already.contains(&p) {
            self.warn(&t!("disks.reason_already"));
            return Ok(Step::Back);
        }
        Ok(Step::Next(p))
    }
}

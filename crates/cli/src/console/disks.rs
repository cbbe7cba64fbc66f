//! Step 5: which disk(s). The table of `lifeboat disks`, with the disks that cannot be used
//! shown and marked with the reason; only the others can be chosen. A disk image file or a
//! device not listed can be typed in.

use super::{Console, Step};
use crate::output::{human, print_disk_table, serial_or_wwn, usage_words};
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
    if let Some(map) = d.multipath.as_ref().and_then(|m| m.map_device()) {
        return Some(t!("disks.reason_multipath", dev = map.display()).into());
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

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_engine::{DiskKind, Multipath};

    fn disk(name: &str, multipath: Option<Multipath>, holders: &[&str]) -> DiskInfo {
        DiskInfo {
            name: name.into(),
            path: PathBuf::from(format!("/dev/{name}")),
            dev: (8, 32),
            size: 10 << 30,
            logical_sector_size: 512,
            physical_sector_size: 512,
            model: Some("LUN C-Mode".into()),
            vendor: None,
            serial: None,
            wwn: None,
            transport: Some("fc".into()),
            removable: false,
            read_only: false,
            rotational: false,
            kind: DiskKind::Disk,
            loop_backing_file: None,
            holders: holders.iter().map(|h| h.to_string()).collect(),
            slaves: Vec::new(),
            partitions: Vec::new(),
            mountpoints: Vec::new(),
            swap: false,
            multipath,
        }
    }

    #[test]
    fn a_multipath_path_cannot_be_chosen_and_its_map_can() {
        let _lang = crate::i18n::LANG_LOCK
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let path = disk(
            "sdc",
            Some(Multipath::Path {
                map: "dm-1".into(),
                name: Some("mpatha".into()),
                wwid: "3600a0980".into(),
            }),
            &["dm-1"],
        );
        let mut map = disk(
            "dm-1",
            Some(Multipath::Map {
                name: Some("mpatha".into()),
                wwid: "3600a0980".into(),
                paths: vec!["sdc".into(), "sdd".into()],
            }),
            &[],
        );
        map.kind = DiskKind::Dm;
        for (lang, word) in [
            (crate::i18n::Lang::En, "choose /dev/mapper/mpatha instead"),
            (crate::i18n::Lang::Ja, "/dev/mapper/mpatha を選んでください"),
        ] {
            crate::i18n::set(lang);
            for purpose in [Purpose::Save, Purpose::Restore { min_size: 0 }] {
                let why = reason(&path, purpose, &[], &[]).expect("a path is not selectable");
                assert!(why.contains(word), "{why}");
                assert_eq!(reason(&map, purpose, &[], &[]), None, "the map is");
            }
        }
        crate::i18n::set(crate::i18n::Lang::En);
        let words = usage_words(&path).join("; ");
        assert!(words.contains("path of multipath mpatha (dm-1)"), "{words}");
        let json = crate::output::multipath_json(&map);
        assert_eq!(json["role"], "map");
        assert_eq!(json["wwid"], "3600a0980");
        assert_eq!(json["paths"][1], "/dev/sdd");
        let json = crate::output::multipath_json(&path);
        assert_eq!(json["role"], "path");
        assert_eq!(json["use"], "/dev/mapper/mpatha");
    }
}

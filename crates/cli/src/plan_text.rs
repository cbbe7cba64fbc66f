//! The restore plan in words (English or Japanese): shown by `--dry-run` and before the
//! restore confirmations.

use crate::output::human;
use lifeboat_engine::{DiskPlan, IdentityPlan};
use rust_i18n::t;

fn id_line(key: &str, what: &str, id: &IdentityPlan) -> String {
    t!(
        key,
        what = what,
        model = id.model.as_deref().unwrap_or("?"),
        serial = id.serial.as_deref().unwrap_or("?"),
        wwn = id.wwn.as_deref().unwrap_or("?"),
        size = human(id.size),
        bytes = id.size
    )
    .into()
}

fn action(a: &str) -> String {
    match a {
        "keep" => t!("plan.action_keep"),
        "grow" => t!("plan.action_grow"),
        "move" => t!("plan.action_move"),
        "move_grow" => t!("plan.action_move_grow"),
        "shrink" => t!("plan.action_shrink"),
        "write" => t!("plan.action_write"),
        "skip" => t!("plan.action_skip"),
        other => other.to_string().into(),
    }
    .into()
}

/// The size and model differences of a target from its source, one line each.
pub fn differences(d: &DiskPlan) -> Vec<String> {
    let (s, t) = (&d.source_identity, &d.target_identity);
    d.differences
        .iter()
        .map(|k| match k.as_str() {
            "smaller" => t!(
                "plan.smaller",
                diff = human(s.size - t.size),
                bytes = s.size - t.size
            )
            .into(),
            "larger" => t!(
                "plan.larger",
                diff = human(t.size - s.size),
                bytes = t.size - s.size
            )
            .into(),
            "model" => t!(
                "plan.model",
                target = t.model.as_deref().unwrap_or("?"),
                source = s.model.as_deref().unwrap_or("?")
            )
            .into(),
            other => other.to_string(),
        })
        .collect()
}

/// Every line of one target's plan.
pub fn lines(d: &DiskPlan) -> Vec<String> {
    let mut out = vec![t!("plan.header", target = d.target, disk = d.disk).to_string()];
    out.push(id_line(
        "plan.identity",
        &t!("plan.target"),
        &d.target_identity,
    ));
    out.push(id_line(
        "plan.identity",
        &format!("{} {}", t!("plan.source"), d.source),
        &d.source_identity,
    ));
    out.extend(differences(d).into_iter().map(|l| format!("  {l}")));
    out.push(
        t!(
            "plan.table",
            table = d.table,
            ss = d.sector_size,
            rewritten = if d.table_rewritten {
                t!("plan.rewritten")
            } else {
                t!("plan.as_saved")
            }
        )
        .into(),
    );
    for p in &d.partitions {
        out.push(
            t!(
                "plan.partition",
                n = p.number,
                kind = p.kind,
                fs = p.filesystem,
                bytes = human(p.bytes),
                start_before = p.start_before,
                size_before = p.size_before,
                start = p.start,
                size = p.size,
                human_size = human(p.size),
                action = action(&p.action)
            )
            .into(),
        );
        if let Some(g) = &p.fs_grow {
            out.push(match (&g.tool, g.installed) {
                (Some(tool), true) if p.size < p.size_before => {
                    t!("plan.fs_shrink", tool = tool).into()
                }
                (Some(tool), true) => t!("plan.fs_grow", tool = tool).into(),
                (Some(tool), false) => t!("plan.fs_grow_missing", tool = tool).into(),
                (None, _) => t!("plan.fs_grow_none", fs = p.filesystem).into(),
            });
        }
    }
    if let Some(e) = &d.extended {
        out.push(t!("plan.extended", start = e.start, size = e.size).into());
    }
    for r in &d.boot_regions {
        out.push(
            t!(
                "plan.region",
                what = r.what,
                len = r.len,
                before = r.offset_before,
                offset = r.offset,
                action = action(&r.action)
            )
            .into(),
        );
    }
    if let Some(at) = d.gpt_backup_moved_to {
        out.push(t!("plan.gpt_backup", offset = at).into());
    }
    out.push(t!("plan.total", bytes = human(d.bytes_to_write)).into());
    out
}

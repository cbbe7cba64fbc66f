//! Prints how the volume managers lay out members: for each device or image file given, the
//! member kind, group, kept metadata, logical volumes and their areas.
//!
//! ```text
//! cargo run -p lifeboat-volume --example layout -- /dev/sda2 [/dev/sdb1 ...]
//! ```
//!
//! Members with the same group key (the PVs of one volume group) are laid out together.

use lifeboat_fs::{ReadAt, SharedVolume};
use lifeboat_volume::{detect, Content};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

fn open(path: &str) -> std::io::Result<SharedVolume> {
    let mut f = File::open(path)?;
    // Block devices report no length in their metadata: seek to the end.
    let len = f.seek(SeekFrom::End(0))?;
    Ok(Arc::new((f, len)))
}

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        eprintln!("usage: layout DEVICE-OR-IMAGE...");
        std::process::exit(2);
    }
    // group key -> (manager, [(path, volume)])
    type Members = Vec<(String, SharedVolume)>;
    let mut groups: BTreeMap<String, (&'static str, Members)> = BTreeMap::new();
    for p in &paths {
        let v = match open(p) {
            Ok(v) => v,
            Err(e) => {
                eprintln!("{p}: {e}");
                continue;
            }
        };
        let Some(m) = detect(v.as_ref()) else {
            println!("{p}: no volume manager member ({} bytes)", v.len());
            continue;
        };
        match m.group_key(v.as_ref()) {
            Ok(k) => groups
                .entry(k)
                .or_insert((m.name(), Vec::new()))
                .1
                .push((p.clone(), v)),
            Err(e) => println!("{p}: {} member, refused: {e}", m.name()),
        }
    }
    for (key, (name, members)) in groups {
        let m = lifeboat_volume::managers()
            .iter()
            .find(|m| m.name() == name)
            .expect("a registered manager");
        let volumes: Vec<SharedVolume> = members.iter().map(|(_, v)| v.clone()).collect();
        println!("group {key} ({name}, {} member(s))", members.len());
        for ((path, v), layout) in members.iter().zip(m.assemble(&volumes)) {
            let l = match layout {
                Ok(l) => l,
                Err(e) => {
                    println!("  {path}: copied whole: {e}");
                    continue;
                }
            };
            println!(
                "  {path}: {} label={} uuid={} ({} bytes, {} unallocated)",
                l.kind,
                l.label.as_deref().unwrap_or("-"),
                l.uuid.as_deref().unwrap_or("-"),
                v.len(),
                l.unallocated_bytes.map_or("?".into(), |u| u.to_string())
            );
            for e in &l.kept {
                println!("    kept     {:>14} +{}", e.offset, e.len);
            }
            for (i, lv) in l.volumes.iter().enumerate() {
                let how = match &lv.content {
                    Content::Mapped(_) => "scanned".to_string(),
                    Content::Raw(r) => format!("raw: {r}"),
                };
                println!(
                    "    volume   {} {} {} bytes ({how})",
                    lv.name, lv.layout, lv.size
                );
                for a in l.areas.iter().filter(|a| a.lv == i) {
                    println!(
                        "      area lv bytes {}..{} stripe {}/{} chunk {} at member byte {}",
                        a.lv_start,
                        a.lv_start + a.lv_len,
                        a.stripe,
                        a.stripes,
                        a.chunk,
                        a.member_offset
                    );
                }
            }
            for w in &l.warnings {
                println!("    warning: {w}");
            }
        }
    }
}

//! Growing the content of grown partitions with the filesystem's own tool (`resize2fs`,
//! `ntfsresize`, `xfs_growfs` on a temporary mount, `pvresize`, `fatresize`). The partition
//! is reached through a loop device over its byte range of the target (`losetup -o
//! --sizelimit`), for a disk image file and a block device alike. A missing tool is a
//! warning naming the command to run; the partition has grown anyway.

use crate::event::{Event, EventSink};
use crate::plan::{which, DiskPlan, PartPlan};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// One tool run: its command line, success, combined output.
struct Run {
    line: String,
    ok: bool,
    output: String,
}

fn run(tool: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let line = format!("{} {}", tool.display(), args.join(" "));
    let child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Run {
                line,
                ok: false,
                output: e.to_string(),
            }
        }
    };
    if let (Some(text), Some(mut i)) = (stdin, child.stdin.take()) {
        let _ = i.write_all(text.as_bytes());
    }
    match child.wait_with_output() {
        Ok(o) => {
            let mut output = String::from_utf8_lossy(&o.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&o.stderr));
            tracing::info!(command = %line, status = ?o.status.code(), "{output}");
            Run {
                line,
                ok: o.status.success(),
                output,
            }
        }
        Err(e) => Run {
            line,
            ok: false,
            output: e.to_string(),
        },
    }
}

/// A loop device over a byte range of `target`, detached on drop.
struct Loop {
    losetup: std::path::PathBuf,
    dev: String,
}

impl Loop {
    fn attach(target: &Path, start: u64, size: u64) -> Result<Loop, String> {
        let losetup = which("losetup").ok_or("losetup is not installed")?;
        let r = run(
            &losetup,
            &[
                "-f",
                "--show",
                "-o",
                &start.to_string(),
                "--sizelimit",
                &size.to_string(),
                &target.display().to_string(),
            ],
            None,
        );
        if !r.ok {
            return Err(format!("{}: {}", r.line, r.output.trim()));
        }
        Ok(Loop {
            losetup,
            dev: r.output.lines().next().unwrap_or("").trim().to_string(),
        })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run(&self.losetup, &["-d", &self.dev], None);
    }
}

/// Grows the content of every grown partition of `plan` on `target`.
pub(crate) fn grow_filesystems(target: &Path, plan: &DiskPlan, sink: &dyn EventSink) {
    for p in &plan.partitions {
        let Some(g) = &p.fs_grow else { continue };
        let warn = |why: String| {
            let message = if p.size < p.size_before {
                format!(
                    "{}: partition {} shrank to {} bytes, but its {} metadata was not updated: {why}",
                    target.display(),
                    p.number,
                    p.size,
                    p.filesystem
                )
            } else {
                format!(
                    "{}: partition {} grew to {} bytes, but its {} content was not grown: {why}",
                    target.display(),
                    p.number,
                    p.size,
                    p.filesystem
                )
            };
            sink.event(Event::Warning { message })
        };
        let Some(tool) = &g.tool else {
            warn("lifeboat has no tool to grow it".into());
            continue;
        };
        let Some(path) = which(tool) else {
            warn(format!(
                "{tool} is not installed; install it and run: {}",
                manual_command(
                    tool,
                    &format!("<partition {} of {}>", p.number, target.display())
                )
            ));
            continue;
        };
        let lo = match Loop::attach(target, p.start, p.size) {
            Ok(l) => l,
            Err(e) => {
                warn(format!(
                    "the partition could not be attached ({e}); run: {}",
                    manual_command(
                        tool,
                        &format!("<partition {} of {}>", p.number, target.display())
                    )
                ));
                continue;
            }
        };
        let runs = grow_one(tool, &path, &lo.dev);
        drop(lo);
        let ok = runs.iter().all(|r| r.ok);
        sink.event(Event::FsGrow {
            disk: plan.disk,
            partition: p.number,
            filesystem: p.filesystem.clone(),
            tool: tool.clone(),
            ok,
            commands: runs.iter().map(|r| r.line.clone()).collect(),
            output: runs
                .iter()
                .map(|r| r.output.trim())
                .collect::<Vec<_>>()
                .join("\n"),
        });
        if !ok {
            warn(format!(
                "{} failed; run it yourself: {}",
                tool,
                manual_command(
                    tool,
                    &format!("<partition {} of {}>", p.number, target.display())
                )
            ));
        }
    }
}

/// The command an operator runs by hand.
fn manual_command(tool: &str, dev: &str) -> String {
    match tool {
        "resize2fs" => format!("e2fsck -f {dev} && resize2fs {dev}"),
        "ntfsresize" => format!("ntfsresize {dev}"),
        "xfs_growfs" => format!("mount {dev} /mnt && xfs_growfs /mnt && umount /mnt"),
        "pvresize" => format!("pvresize {dev}"),
        "fatresize" => format!("fatresize -s max {dev}"),
        other => format!("{other} {dev}"),
    }
}

fn grow_one(tool: &str, path: &Path, dev: &str) -> Vec<Run> {
    match tool {
        "resize2fs" => {
            let mut runs = Vec::new();
            if let Some(fsck) = which("e2fsck") {
                let r = run(&fsck, &["-f", "-p", dev], None);
                // e2fsck: 0 clean, 1 errors corrected; anything else stops the resize.
                let bad = !r.ok && !r.output.is_empty() && !matches_exit_one(&fsck, dev);
                runs.push(Run { ok: !bad, ..r });
                if bad {
                    return runs;
                }
            }
            runs.push(run(path, &[dev], None));
            runs
        }
        "ntfsresize" => vec![run(path, &["-f", "-f", "-P", dev], Some("y\n"))],
        "pvresize" => vec![run(path, &["--devices", dev, dev], None)],
        "fatresize" => vec![run(path, &["-s", "max", dev], None)],
        "xfs_growfs" => {
            let Ok(dir) = tempfile::Builder::new().prefix("lifeboat-grow-").tempdir() else {
                return vec![Run {
                    line: "mktemp".into(),
                    ok: false,
                    output: "no temporary directory".into(),
                }];
            };
            let d = dir.path().display().to_string();
            let Some(mount) = which("mount") else {
                return vec![Run {
                    line: "mount".into(),
                    ok: false,
                    output: "mount is not installed".into(),
                }];
            };
            let m = run(&mount, &["-t", "xfs", "-o", "nouuid", dev, &d], None);
            if !m.ok {
                return vec![m];
            }
            let g = run(path, &[&d], None);
            let u = run(
                &which("umount").unwrap_or_else(|| "umount".into()),
                &[&d],
                None,
            );
            vec![m, g, u]
        }
        _ => Vec::new(),
    }
}

/// After a failed `e2fsck -f -p`: a second run that exits 0 means the first one corrected
/// errors (exit code 1), which is fine.
fn matches_exit_one(fsck: &Path, dev: &str) -> bool {
    run(fsck, &["-f", "-p", dev], None).ok
}

/// Whether anything of `parts` grows.
pub(crate) fn any_growth(parts: &[PartPlan]) -> bool {
    parts.iter().any(|p| p.fs_grow.is_some())
}

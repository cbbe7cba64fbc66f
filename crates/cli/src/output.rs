//! Everything the CLI prints: progress bars on a terminal, NDJSON events with `--json`,
//! results and errors.

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use lifeboat_engine::Event;
use std::io::{IsTerminal, Write};
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

/// Output mode and the current progress bar.
pub struct Ui {
    json: bool,
    bar: Mutex<Option<ProgressBar>>,
    tty: bool,
}

impl Ui {
    pub fn new(json: bool) -> Self {
        Ui {
            json,
            bar: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn json(&self) -> bool {
        self.json
    }

    fn print_json(&self, v: &serde_json::Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    /// Handles an engine event.
    pub fn event(&self, e: Event) {
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
        let mut bar = self.bar.lock().unwrap_or_else(|p| p.into_inner());
        match e {
            Event::Start {
                operation,
                image,
                bytes_total,
                ..
            } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let verb = match operation.as_str() {
                    "verify" => "verifying image before writing",
                    "check" => "checking",
                    other => other,
                };
                if self.tty {
                    let b = ProgressBar::new(bytes_total);
                    b.set_style(
                        ProgressStyle::with_template(
                            "{msg:32!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                        )
                        .expect("template is valid")
                        .progress_chars("=> "),
                    );
                    b.set_message(format!("{verb} {image}"));
                    *bar = Some(b);
                } else {
                    eprintln!("{verb} {image}: {}", human(bytes_total));
                }
            }
            Event::PartitionStart {
                disk,
                partition,
                filesystem,
                mode,
                bytes,
            } => {
                let msg = format!(
                    "disk {disk} partition {partition}: {filesystem}, {mode}, {}",
                    human(bytes)
                );
                match bar.as_ref() {
                    Some(b) => b.set_message(format!("d{disk} p{partition} {filesystem} {mode}")),
                    None => eprintln!("{msg}"),
                }
            }
            Event::Progress {
                bytes_done,
                bytes_total,
                ..
            } => {
                if let Some(b) = bar.as_ref() {
                    b.set_length(bytes_total);
                    b.set_position(bytes_done);
                }
            }
            Event::PartitionDone { .. } => {}
            Event::Warning { message } => match bar.as_ref() {
                Some(b) => b.println(format!("warning: {message}")),
                None => eprintln!("warning: {message}"),
            },
            Event::Done {
                operation,
                bytes_done,
                elapsed_ms,
                ..
            } => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                let secs = elapsed_ms as f64 / 1000.0;
                let rate = if secs > 0.0 {
                    human((bytes_done as f64 / secs) as u64)
                } else {
                    "-".into()
                };
                eprintln!(
                    "{operation}: {} in {secs:.1} s ({rate}/s)",
                    human(bytes_done)
                );
            }
        }
    }

    /// Removes a progress bar left over.
    pub fn finish_progress(&self) {
        if let Some(b) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            b.finish_and_clear();
        }
    }

    /// A result line.
    pub fn say(&self, msg: &str) {
        if self.json {
            self.print_json(&serde_json::json!({"event": "result", "message": msg}));
        } else {
            println!("{msg}");
        }
    }

    /// An intermediate step worth telling (`note` event with `--json`).
    pub fn note(&self, msg: &str) {
        if self.json {
            self.print_json(&serde_json::json!({"event": "note", "message": msg}));
        } else {
            println!("{msg}");
        }
    }

    /// The final error.
    pub fn error(&self, e: &anyhow::Error) {
        self.finish_progress();
        let msg = error_message(e);
        if self.json {
            self.print_json(&serde_json::json!({"event": "error", "message": msg}));
        } else {
            eprintln!("lifeboat: error: {msg}");
        }
    }
}

/// The error and its causes joined with ": ", leaving out a cause whose text the message
/// already holds (errors that print their source would otherwise say it twice).
pub fn error_message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}

/// `lifeboat disks`.
pub fn disks(ui: &Ui) -> Result<()> {
    let disks = lifeboat_blockdev::list_disks()?;
    let fs_of = |path: &std::path::Path, start: u64, size: u64| -> String {
        lifeboat_blockdev::Disk::open(path, lifeboat_blockdev::OpenMode::Read)
            .ok()
            .and_then(|d| {
                let s = lifeboat_fs::Slice::new(&d, start, size);
                lifeboat_fs::identify_signature(&s).map(|x| x.name().to_string())
            })
            .unwrap_or_else(|| "-".into())
    };
    if ui.json() {
        let v: Vec<serde_json::Value> = disks
            .iter()
            .map(|d| {
                serde_json::json!({
                    "name": d.name, "path": d.path, "size": d.size,
                    "logical_sector_size": d.logical_sector_size,
                    "physical_sector_size": d.physical_sector_size,
                    "model": d.model, "vendor": d.vendor, "serial": d.serial, "wwn": d.wwn,
                    "transport": d.transport, "removable": d.removable, "read_only": d.read_only,
                    "rotational": d.rotational, "kind": d.kind.as_str(),
                    "loop_backing_file": d.loop_backing_file, "holders": d.holders,
                    "slaves": d.slaves, "mountpoints": d.mountpoints, "swap": d.swap,
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
    println!(
        "{:<10} {:>10} {:<24} {:<20} {:<6} IN USE / PARTITIONS",
        "DISK", "SIZE", "MODEL", "SERIAL", "TRAN"
    );
    for d in &disks {
        let mut usage: Vec<String> = d
            .mountpoints
            .iter()
            .map(|m| format!("mounted on {}", m.display()))
            .collect();
        if !d.holders.is_empty() {
            usage.push(format!("held by {}", d.holders.join(",")));
        }
        if let Some(b) = &d.loop_backing_file {
            usage.push(format!("file {}", b.display()));
        }
        println!(
            "{:<10} {:>10} {:<24} {:<20} {:<6} {}",
            d.name,
            human(d.size),
            d.model.as_deref().unwrap_or("-"),
            d.serial.as_deref().unwrap_or("-"),
            d.transport.as_deref().unwrap_or(d.kind.as_str()),
            usage.join("; ")
        );
        for p in &d.partitions {
            let mut u: Vec<String> = p
                .mountpoints
                .iter()
                .map(|m| format!("mounted on {}", m.display()))
                .collect();
            if p.swap {
                u.push("swap".into());
            }
            if !p.holders.is_empty() {
                u.push(format!("held by {}", p.holders.join(",")));
            }
            println!(
                "  {:<8} {:>10} {:<24} {}",
                format!("{}", p.number),
                human(p.size),
                fs_of(&d.path, p.start, p.size),
                u.join("; ")
            );
        }
    }
    Ok(())
}

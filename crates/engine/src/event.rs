//! Progress events: the only way the engine reports what it is doing.

use serde::Serialize;

/// An event of a long operation. Serialised (by the CLI's `--json`) as one JSON object per
/// line with an `event` field naming the variant in snake_case; field names are stable (see
/// `docs/EVENTS.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The operation starts.
    Start {
        /// `savedisk`, `saveparts`, `restoredisk`, `restoreparts` or `check`.
        operation: String,
        /// Image name.
        image: String,
        /// Repository location.
        repo: String,
        /// Bytes the operation will move in all.
        bytes_total: u64,
        /// Disks involved.
        disks: Vec<String>,
    },
    /// A partition (or boot area) starts.
    PartitionStart {
        /// Disk index.
        disk: u32,
        /// Partition number (0: whole-disk filesystem).
        partition: u32,
        /// Detected filesystem.
        filesystem: String,
        /// `used-blocks` or `raw`.
        mode: String,
        /// Bytes to move for it.
        bytes: u64,
    },
    /// Bytes moved so far (emitted at most about five times a second, and at the end).
    Progress {
        /// Bytes done.
        bytes_done: u64,
        /// Bytes in all.
        bytes_total: u64,
        /// Current disk.
        disk: u32,
        /// Current partition, if inside one.
        partition: Option<u32>,
    },
    /// A partition is done.
    PartitionDone {
        /// Disk index.
        disk: u32,
        /// Partition number.
        partition: u32,
        /// Bytes moved for it.
        bytes: u64,
    },
    /// What a restore will do to each target (before any write; alone with `--dry-run`).
    Plan {
        /// Image name (`-` for a stream without one).
        image: String,
        /// True for `--dry-run`: nothing is written.
        dry_run: bool,
        /// One plan per target disk.
        disks: Vec<crate::plan::DiskPlan>,
    },
    /// A filesystem tool grew a grown partition's content (or failed to).
    FsGrow {
        /// Disk index in the image.
        disk: u32,
        /// Partition number.
        partition: u32,
        /// Its filesystem.
        filesystem: String,
        /// The tool (`resize2fs`, …).
        tool: String,
        /// Whether every command succeeded.
        ok: bool,
        /// The command lines run.
        commands: Vec<String>,
        /// Their output.
        output: String,
    },
    /// Something the operator should know; the operation goes on.
    Warning {
        /// The message.
        message: String,
    },
    /// The operation failed. The engine itself returns errors rather than emitting this;
    /// frontends (the CLI's `--json`) emit it as the last event of a failed operation.
    Error {
        /// Stable class: `refused` (a safety check or the operator said no; nothing written),
        /// `damaged` (the image is damaged or incomplete), `cancelled`, `usage` (bad
        /// arguments) or `failed` (anything else).
        kind: String,
        /// What failed and what to do next.
        message: String,
    },
    /// How a restore from a repository will read its image, before it reads it: whether
    /// what the verifying pass reads is kept for the write pass (the spool) and how many bytes
    /// will be read from the repository in all.
    ReadPlan {
        /// `once` (the image is read once: the spool holds all of it, or there is no
        /// verifying pass), `spooled` (the spool holds part of it; the rest is read twice) or
        /// `twice` (no spool: read to verify, then again to write).
        mode: String,
        /// Bytes of the image (all volume files).
        image_bytes: u64,
        /// Bytes the restore will read from the repository (verifying pass and write pass).
        read_bytes: u64,
        /// Bytes the spool may keep in memory.
        spool_memory: u64,
        /// The spool directory (`--spool`), if any.
        spool_dir: Option<String>,
        /// Free bytes in the spool directory's filesystem (0 without one).
        spool_dir_free: u64,
    },
    /// The operation finished successfully.
    Done {
        /// Operation name.
        operation: String,
        /// Data bytes moved.
        bytes_done: u64,
        /// Bytes of the image (compressed).
        image_bytes: u64,
        /// Wall-clock milliseconds.
        elapsed_ms: u64,
    },
}

/// Receives events; called from the engine's threads one at a time.
pub trait EventSink: Sync {
    /// Handles one event.
    fn event(&self, e: Event);
}

impl<F: Fn(Event) + Sync> EventSink for F {
    fn event(&self, e: Event) {
        self(e)
    }
}

/// Emits `Progress` at most every 200 ms, plus a final one.
pub(crate) struct Progress<'a> {
    sink: &'a dyn EventSink,
    pub total: u64,
    pub done: u64,
    last: std::time::Instant,
    pub disk: u32,
    pub partition: Option<u32>,
}

impl<'a> Progress<'a> {
    pub fn new(sink: &'a dyn EventSink, total: u64) -> Self {
        Progress {
            sink,
            total,
            done: 0,
            last: std::time::Instant::now(),
            disk: 0,
            partition: None,
        }
    }
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.last.elapsed().as_millis() >= 200 {
            self.emit();
        }
    }
    pub fn emit(&mut self) {
        self.last = std::time::Instant::now();
        self.sink.event(Event::Progress {
            bytes_done: self.done,
            bytes_total: self.total.max(self.done),
            disk: self.disk,
            partition: self.partition,
        });
    }
}

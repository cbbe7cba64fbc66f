//! `lifeboat mount`: an image as read-only files, through FUSE.
//!
//! The mount point shows one file per saved disk (`disk0`, `disk1`, …) holding the whole disk
//! as saved (bytes not stored read as zeros) and one per partition, named as Linux names them
//! (`disk0p1`, `disk0p2`, `disk0p5` for a logical partition). Every read goes through the
//! engine's `ImageReader` (only the chunks that hold the range are read and decompressed;
//! a bounded cache). The mount runs in the foreground; Ctrl-C or `umount DIR` ends it.

use crate::flags::{DigestArg, ImageArg, RepoArg};
use crate::output::{human, Ui};
use anyhow::{Context, Result};
use fuser::{
    Config, Errno, FileAttr, FileHandle, FileType, Filesystem, INodeNo, LockOwner, MountOption,
    OpenFlags, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, Request,
};
use lifeboat_engine::ImageReader;
use rust_i18n::t;
use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// How long the kernel may cache names and attributes (the image does not change).
const TTL: Duration = Duration::from_secs(3600);
/// The largest read served at once (the kernel asks for at most 128 KiB by default).
const MAX_READ: u32 = 1 << 20;

/// One file of the mount: a disk or a partition of it.
#[derive(Debug, Clone)]
struct Entry {
    name: String,
    disk: u32,
    start: u64,
    size: u64,
}

/// The files an image shows: each disk, then its partitions.
fn entries(reader: &ImageReader) -> Vec<Entry> {
    let mut out = Vec::new();
    for (i, d) in reader.disks().iter().enumerate() {
        out.push(Entry {
            name: format!("disk{i}"),
            disk: i as u32,
            start: 0,
            size: d.size,
        });
        for p in d.table.partitions.iter().filter(|p| p.number > 0) {
            out.push(Entry {
                name: format!("disk{i}p{}", p.number),
                disk: i as u32,
                start: p.start,
                size: p.size.min(d.size.saturating_sub(p.start)),
            });
        }
    }
    out
}

struct ImageFs {
    reader: Arc<ImageReader>,
    files: Vec<Entry>,
}

impl ImageFs {
    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let base = FileAttr {
            ino: INodeNo(ino),
            size: 0,
            blocks: 0,
            atime: UNIX_EPOCH,
            mtime: UNIX_EPOCH,
            ctime: UNIX_EPOCH,
            crtime: UNIX_EPOCH,
            kind: FileType::Directory,
            perm: 0o555,
            nlink: 2,
            uid: 0,
            gid: 0,
            rdev: 0,
            flags: 0,
            blksize: 4096,
        };
        if ino == 1 {
            return Some(base);
        }
        let e = self.files.get(usize::try_from(ino.checked_sub(2)?).ok()?)?;
        Some(FileAttr {
            size: e.size,
            blocks: e.size.div_ceil(512),
            kind: FileType::RegularFile,
            perm: 0o444,
            nlink: 1,
            ..base
        })
    }
}

impl Filesystem for ImageFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (u64::from(parent) == 1)
            .then(|| self.files.iter().position(|e| OsStr::new(&e.name) == name))
            .flatten();
        match found.and_then(|i| self.attr(i as u64 + 2)) {
            Some(a) => reply.entry(&TTL, &a, fuser::Generation(0)),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(u64::from(ino)) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(e) = u64::from(ino)
            .checked_sub(2)
            .and_then(|i| self.files.get(i as usize))
        else {
            reply.error(Errno::ENOENT);
            return;
        };
        let n = u64::from(size.min(MAX_READ)).min(e.size.saturating_sub(offset));
        let mut buf = vec![0u8; n as usize];
        match self.reader.read_at(e.disk, e.start + offset, &mut buf) {
            Ok(()) => reply.data(&buf),
            Err(err) => {
                tracing::error!(
                    "reading {} at byte {offset}: {}",
                    e.name,
                    crate::output::error_message(&err.into())
                );
                reply.error(Errno::EIO);
            }
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        if u64::from(ino) != 1 {
            reply.error(Errno::ENOTDIR);
            return;
        }
        let mut all = vec![
            (1u64, FileType::Directory, ".".to_string()),
            (1, FileType::Directory, "..".to_string()),
        ];
        all.extend(
            self.files
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u64 + 2, FileType::RegularFile, e.name.clone())),
        );
        for (i, (ino, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, &name) {
                break;
            }
        }
        reply.ok();
    }
}

/// Mounts image `image` of `repo` read-only at `dir` and serves it until Ctrl-C (`cancel`)
/// or until `dir` is unmounted.
pub fn mount(
    repo: &RepoArg,
    image: &ImageArg,
    dir: &Path,
    digest: &DigestArg,
    ui: &Ui,
    cancel: &AtomicBool,
) -> Result<()> {
    let digest = digest.validated();
    let repo = repo.open()?;
    let name = image.name()?;
    let reader = Arc::new(crate::commands::open_verified(
        &repo,
        &name,
        image,
        digest.as_deref(),
        ui,
    )?);
    let files = entries(&reader);
    let mut cfg = Config::default();
    cfg.mount_options.extend([
        MountOption::RO,
        MountOption::NoDev,
        MountOption::NoSuid,
        MountOption::FSName(format!("lifeboat:{name}")),
        MountOption::Subtype("lifeboat".into()),
    ]);
    cfg.n_threads = Some(2);
    let fs = ImageFs {
        reader,
        files: files.clone(),
    };
    let session = fuser::spawn_mount(fs, dir, &cfg)
        .with_context(|| t!("cmd.mount_failed", dir = dir.display()).into_owned())?;
    if ui.json() {
        ui.print_json(&serde_json::json!({
            "event": "ready",
            "mountpoint": dir.display().to_string(),
            "image": name.to_string(),
            "files": files.iter().map(|e| serde_json::json!({
                "name": e.name, "disk": e.disk, "offset": e.start, "size": e.size,
            })).collect::<Vec<_>>(),
        }));
    } else {
        ui.say(&t!(
            "cmd.mount_ready",
            image = name,
            dir = dir.display(),
            files = files
                .iter()
                .map(|e| format!("{} ({})", e.name, human(e.size)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    loop {
        if cancel.load(Ordering::SeqCst) {
            session
                .umount_and_join()
                .with_context(|| t!("cmd.mount_busy", dir = dir.display()).into_owned())?;
            break;
        }
        if session.guard.is_finished() {
            session.join()?;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    ui.say(&t!("cmd.mount_done", dir = dir.display()));
    Ok(())
}
